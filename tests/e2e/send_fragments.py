#!/usr/bin/env python3
"""Hand-made IPv4 fragments of a TCP SYN, for tests/e2e/fragments.sh.

A Linux TCP stack never fragments (it sets DF and follows the path MTU), so these are built here and
sent through a raw socket, each fragment a whole IP packet of its own. Standard library only.

Usage: send_fragments.py SRC DST PORT ID KIND
  whole       a SYN carrying 2980 bytes, in 1480-byte fragments (what the issue's reproducer sent)
  tiny        only 8 bytes of the TCP header in the first fragment (RFC 1858)
  offset-one  a first fragment, then one at offset 8 that would rewrite the TCP flags (RFC 1858)
  orphan      the second fragment of a datagram whose first never comes
  overlap     a first fragment, then one over its last 480 bytes, then the true rest
"""
import socket
import struct
import sys

from rawpacket import with_tcp_checksum


def syn(src, dst, port, data_len):
    data = bytes((i * 7) & 0xFF for i in range(data_len))
    tcp = struct.pack("!HHIIBBHHH", 40000, port, 1000, 0, 5 << 4, 0x02, 64240, 0, 0) + data
    return with_tcp_checksum(src, dst, tcp)


def fragment(src, dst, ident, offset, data, more):
    flags = (0x2000 if more else 0) | (offset // 8)
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(data), ident, flags, 64, 6, 0,
                       socket.inet_aton(src), socket.inet_aton(dst)) + data


def main():
    src, dst, port, ident, kind = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    segment = syn(src, dst, port, 2980)
    pieces = {
        "whole": [(0, 1480), (1480, 2960), (2960, len(segment))],
        "tiny": [(0, 8), (8, 1480), (1480, len(segment))],
        "offset-one": [(0, 24), (8, 1480)],
        "orphan": [(1480, 2960)],
        "overlap": [(0, 1480), (1000, 2000), (1480, 2960), (2960, len(segment))],
    }[kind]
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for start, end in pieces:
        raw.sendto(fragment(src, dst, ident, start, segment[start:end], end < len(segment)), (dst, 0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
