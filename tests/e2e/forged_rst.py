#!/usr/bin/env python3
"""An outside server whose connection an off-path attacker tries to reset (tests/e2e/e2e.sh).

Runs in the outside namespace: serves one connection on ADDRESS:PORT, answering each "ping" with
"pong", and watches its own interface IFACE to learn both initial sequence numbers. After three
exchanges it forges a RST from itself to the client with a sequence number a quarter of the space
away (what a blind attacker guesses), then after three more a RST with the exact next sequence number
(what an on-path attacker sees). Standard library only: a raw socket with its own IP and TCP headers.

Usage: forged_rst.py IFACE ADDRESS PORT. Prints "wrong-rst sent" and "right-rst sent".
"""
import socket
import struct
import sys
import time

from rawpacket import with_tcp_checksum

ETH_P_ALL = 3


def rst(src, sport, dst, dport, seq, ack):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, 0x14, 0, 0, 0)
    tcp = with_tcp_checksum(src, dst, tcp)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return ip + tcp


def main():
    iface, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sniff.bind((iface, 0))
    sniff.setblocking(False)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(1)
    listener.settimeout(10)
    conn, (peer, peer_port) = listener.accept()
    conn.settimeout(5)

    # The handshake's SYN (the client's ISN) and SYN-ACK (ours), from the frames on the interface.
    isn_client = isn_server = None
    while True:
        try:
            frame = sniff.recv(2048)
        except BlockingIOError:
            break
        if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
            continue
        ihl = (frame[14] & 0x0F) * 4
        sport, dport, seq = struct.unpack("!HHI", frame[14 + ihl:14 + ihl + 8])
        flags = frame[14 + ihl + 13]
        if sport == peer_port and dport == port and flags & 0x12 == 0x02:
            isn_client = seq
        if sport == port and dport == peer_port and flags & 0x12 == 0x12:
            isn_server = seq
    if isn_client is None or isn_server is None:
        print("handshake not seen on", iface)
        return 1

    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sent = received = 0

    def echo():
        nonlocal sent, received
        data = conn.recv(100)
        if not data:
            raise EOFError
        received += len(data)
        conn.sendall(b"pong\n")
        sent += 5

    for _ in range(3):
        echo()
    time.sleep(0.1)
    raw.sendto(rst(address, port, peer, peer_port, isn_server + 1 + sent + 0x40000000, isn_client + 1 + received),
               (peer, 0))
    print("wrong-rst sent", flush=True)
    for _ in range(3):
        echo()
    time.sleep(0.1)
    raw.sendto(rst(address, port, peer, peer_port, isn_server + 1 + sent, isn_client + 1 + received), (peer, 0))
    print("right-rst sent", flush=True)
    time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
