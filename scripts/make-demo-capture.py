#!/usr/bin/env python3
"""Writes the bundled demo capture: traffic across a gateway running rules/gateway.rules, both directions
in one file in time order (portcullisd's replay mode splits it by ports.inside-networks).

Inside: 198.18.1.0/24 and 2001:2:0:1::/64 (server .10 / ::10, a workstation .20).
Outside: 198.18.0.0/24 and 2001:2::/64. Only RFC 2544/5180 benchmarking addresses are used.

Usage: make-demo-capture.py OUT.pcap
"""
import ipaddress
import struct
import sys

OUT_MAC = bytes.fromhex("020000000001")   # the outside router
IN_MAC = bytes.fromhex("020000000101")    # inside hosts share one MAC here; only IP matters to the rules


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip4(src, dst, proto, payload, ihl=5, ttl=64, total=None):
    hdr = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, 0, total if total is not None else 20 + len(payload),
                      0x1234, 0x4000, ttl, proto, 0,
                      ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return 0x0800, hdr + payload


def ip6(src, dst, nh, payload):
    hdr = struct.pack("!IHBB16s16s", 6 << 28, len(payload), nh, 64,
                      ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed)
    return 0x86DD, hdr + payload


def pseudo(src, dst, proto, length):
    a = ipaddress.ip_address(src)
    if a.version == 4:
        return a.packed + ipaddress.ip_address(dst).packed + struct.pack("!BBH", 0, proto, length)
    return a.packed + ipaddress.ip_address(dst).packed + struct.pack("!IBBBB", length, 0, 0, 0, proto)


def l3(src, dst, proto, l4):
    if ipaddress.ip_address(src).version == 4:
        return ip4(src, dst, proto, l4)
    return ip6(src, dst, proto, l4)


def tcp(src, sport, dst, dport, flags, seq=0, ack=0, data=b""):
    f = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}
    bits = sum(f[c] for c in flags)
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, bits, 65535, 0, 0) + data
    c = csum(pseudo(src, dst, 6, len(seg)) + seg)
    seg = seg[:16] + struct.pack("!H", c) + seg[18:]
    return l3(src, dst, 6, seg)


def udp(src, sport, dst, dport, data):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    c = csum(pseudo(src, dst, 17, len(seg)) + seg) or 0xFFFF
    seg = seg[:6] + struct.pack("!H", c) + seg[8:]
    return l3(src, dst, 17, seg)


def icmp_echo(src, dst, reply, ident, seq):
    v6 = ipaddress.ip_address(src).version == 6
    typ = (129 if reply else 128) if v6 else (0 if reply else 8)
    msg = struct.pack("!BBHHH", typ, 0, 0, ident, seq) + b"portcullis-demo!"
    c = csum((pseudo(src, dst, 58, len(msg)) if v6 else b"") + msg)
    msg = msg[:2] + struct.pack("!H", c) + msg[4:]
    return l3(src, dst, 58 if v6 else 1, msg)


def frame(from_inside, l3pkt):
    ethertype, payload = l3pkt
    dst, src = (OUT_MAC, IN_MAC) if from_inside else (IN_MAC, OUT_MAC)
    f = dst + src + struct.pack("!H", ethertype) + payload
    return f + b"\0" * max(0, 60 - len(f))


def arp_request(sender, target):
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, OUT_MAC, ipaddress.IPv4Address(sender).packed,
                       b"\0" * 6, ipaddress.IPv4Address(target).packed)
    return b"\xff" * 6 + OUT_MAC + struct.pack("!H", 0x0806) + body + b"\0" * 18


def conversation(client, cport, server, sport, from_inside, request, response):
    """A whole TCP connection: handshake, one request, one response, close."""
    c_isn, s_isn = 1000, 50000
    out = [
        frame(from_inside, tcp(client, cport, server, sport, "S", c_isn)),
        frame(not from_inside, tcp(server, sport, client, cport, "SA", s_isn, c_isn + 1)),
        frame(from_inside, tcp(client, cport, server, sport, "A", c_isn + 1, s_isn + 1)),
        frame(from_inside, tcp(client, cport, server, sport, "PA", c_isn + 1, s_isn + 1, request)),
        frame(not from_inside, tcp(server, sport, client, cport, "PA", s_isn + 1, c_isn + 1 + len(request), response)),
        frame(from_inside, tcp(client, cport, server, sport, "FA", c_isn + 1 + len(request), s_isn + 1 + len(response))),
        frame(not from_inside, tcp(server, sport, client, cport, "FA", s_isn + 1 + len(response), c_isn + 2 + len(request))),
        frame(from_inside, tcp(client, cport, server, sport, "A", c_isn + 2 + len(request), s_isn + 2 + len(response))),
    ]
    return out


def build():
    server, ws = "198.18.1.10", "198.18.1.20"
    server6, client6 = "2001:2:0:1::10", "2001:2::5"
    frames = []
    frames.append(arp_request("198.18.0.1", server))                                             # ARP passes
    frames += conversation("198.18.0.5", 40001, server, 22, False, b"SSH-2.0-demo\r\n", b"SSH-2.0-server\r\n")
    frames += conversation("198.18.0.6", 40002, server, 80, False, b"GET / HTTP/1.1\r\nHost: demo\r\n\r\n",
                           b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    frames += conversation("198.18.0.7", 40003, server, 443, False, b"\x16\x03\x01hello", b"\x16\x03\x03hello")
    frames.append(frame(False, tcp("198.18.0.66", 40666, server, 31337, "S", 7)))                # backdoor: drop
    frames.append(frame(False, tcp("198.18.0.66", 40667, ws, 23, "S", 9)))                       # telnet: reject
    frames.append(frame(False, tcp("198.18.0.66", 40668, ws, 3389, "S", 11)))                    # rdp: default drop
    frames.append(frame(False, udp("198.18.0.66", 5000, ws, 5000, b"unsolicited")))             # default drop
    frames.append(frame(False, tcp("198.18.0.67", 40669, server, 80, "A", 100, 200)))            # no flow: drop
    # Outbound: DNS and NTP queries whose replies come back through the flow table.
    frames.append(frame(True, udp(ws, 50001, "198.18.0.53", 53, b"\x12\x34\x01\x00\x00\x01demo-query")))
    frames.append(frame(False, udp("198.18.0.53", 53, ws, 50001, b"\x12\x34\x81\x80\x00\x01demo-answer")))
    frames.append(frame(True, udp(ws, 50002, "198.18.0.123", 123, b"\x23" + b"\0" * 47)))
    frames.append(frame(False, udp("198.18.0.123", 123, ws, 50002, b"\x24" + b"\0" * 47)))
    frames += conversation(ws, 50003, "198.18.0.80", 443, True, b"\x16\x03\x01out", b"\x16\x03\x03back")
    # Ping in (allowed) and out, each with its reply.
    frames.append(frame(False, icmp_echo("198.18.0.5", server, False, 77, 1)))
    frames.append(frame(True, icmp_echo(server, "198.18.0.5", True, 77, 1)))
    frames.append(frame(True, icmp_echo(ws, "198.18.0.1", False, 78, 1)))
    frames.append(frame(False, icmp_echo("198.18.0.1", ws, True, 78, 1)))
    # IPv6: ssh to the server, and a blocked port.
    frames += conversation(client6, 40010, server6, 22, False, b"SSH-2.0-demo6\r\n", b"SSH-2.0-server6\r\n")
    frames.append(frame(False, tcp(client6, 40011, server6, 25, "S", 1)))                        # default drop
    # Malformed: IPv4 header length 4 (< 5), and a TCP segment cut short.
    et, body = ip4("198.18.0.99", server, 6, b"\0" * 20, ihl=4)
    frames.append(frame(False, (et, body)))
    et, body = tcp("198.18.0.99", 1, server, 22, "S", 1)
    frames.append(frame(False, ip4("198.18.0.99", server, 6, body[20:30])))
    return frames


def write_pcap(path, frames):
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, f in enumerate(frames):
            out.write(struct.pack("<IIII", 1_700_000_000 + i // 1000, (i % 1000) * 1000, len(f), len(f)))
            out.write(f)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    write_pcap(sys.argv[1], build())
