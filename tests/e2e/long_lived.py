# Long-lived connections for the namespace tests: N connections to ADDR:PORT (an echo server), each
# sending a line every 100 ms and awaiting its echo (TIMEOUT seconds at most), until the file STOP
# appears. Connection i creates STOP.up<i> once it is open. Prints one line per connection: lines sent,
# echoes received intact, slowest echo in seconds; errors go to stderr.
import os
import socket
import sys
import threading
import time

addr, port, n, stop, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
results = [None] * n


def run(i):
    sent = ok = 0
    worst = 0.0
    try:
        c = socket.create_connection((addr, port), timeout=timeout)
        f = c.makefile("rb")
        open("%s.up%d" % (stop, i), "w").close()
        while not os.path.exists(stop):
            line = b"conn %d line %d\n" % (i, sent)
            t = time.time()
            c.sendall(line)
            sent += 1
            if f.readline() != line:
                break
            ok += 1
            worst = max(worst, time.time() - t)
            time.sleep(0.1)
    except OSError as e:
        print("conn %d: error %s" % (i, e), file=sys.stderr)
    results[i] = "%d %d %.3f" % (sent, ok, worst)


threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("\n".join(results))
