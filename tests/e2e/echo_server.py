# A threaded TCP server for the namespace tests: on ADDR:PORT it sends BANNER (if given) to each client
# on accept, then echoes everything back until the client closes.
import socket
import sys
import threading

addr, port = sys.argv[1], int(sys.argv[2])
banner = sys.argv[3].encode() + b"\n" if len(sys.argv) > 3 else b""
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(128)


def serve(c):
    with c:
        try:
            if banner:
                c.sendall(banner)
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
        except OSError:
            pass


while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
