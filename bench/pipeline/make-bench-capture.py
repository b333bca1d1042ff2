#!/usr/bin/env python3
"""Writes a benchmark capture for bench-pipeline: many established TCP flows across a gateway running
rules/gateway.rules, both directions in one file (replay mode splits them by 198.18.1.0/24), plus a little
traffic the rules deny.

Layout, in file order:
  1. handshakes, in rounds of 32 flows: their SYNs, then SYN-ACKs, then ACKs (minimum-size frames);
  2. --rounds rounds of data: each flow sends one segment per round, opener and responder taking turns,
     flows in a fresh random order each round; data frames are --size bytes on the wire (FCS included,
     so 64 means a 60-byte frame in the file);
  3. spread through the data, one denied packet every --deny-every packets: a SYN to the backdoor port
     (rule drop), to RDP on a workstation (default drop), to telnet (reject: answered with a RST), an
     unsolicited UDP datagram (default drop), and an ACK of no known connection (tcp_no_flow).

Half the flows are inbound (outside clients in 198.19.0.0/16 to the server 198.18.1.10 on ports 22, 80
and 443), half outbound (workstations 198.18.1.20-219 to outside servers on 443). Only RFC 2544
benchmarking addresses (198.18.0.0/15) are used. Checksums are valid.

Usage: make-bench-capture.py OUT.pcap [--size 64] [--flows 10000] [--rounds 24] [--deny-every 32] [--seed 1]
"""
import argparse
import ipaddress
import random
import struct

OUT_MAC = bytes.fromhex("020000000001")
IN_MAC = bytes.fromhex("020000000101")
SERVER = "198.18.1.10"


def fold(s):
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def sum16(data):
    if len(data) % 2:
        data += b"\0"
    return sum(struct.unpack("!%dH" % (len(data) // 2), data))


def ip4_header(src, dst, proto, payload_len):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, 0, 0x4000, 64, proto, 0, src, dst)
    return hdr[:10] + struct.pack("!H", (~fold(sum16(hdr))) & 0xFFFF) + hdr[12:]


class payloads:
    """Payload bytes of each length, with their 16-bit sums precomputed: the capture has hundreds of
    thousands of segments and the payload dominates the checksum work. The payload follows a 20-byte TCP
    header, so it starts on an even offset and its padded sum is exact for odd lengths too."""

    def __init__(self):
        self.cache = {}

    def get(self, n):
        if n not in self.cache:
            data = bytes((i * 7 + 3) & 0xFF for i in range(n))
            self.cache[n] = (data, sum16(data))
        return self.cache[n]


PAYLOADS = payloads()


def tcp_frame(from_inside, src, sport, dst, dport, flags, seq, ack, payload_len=0):
    data, data_sum = PAYLOADS.get(payload_len)
    seg_len = 20 + payload_len
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, seg_len)
    c = (~fold(sum16(pseudo) + sum16(hdr) + data_sum)) & 0xFFFF
    hdr = hdr[:16] + struct.pack("!H", c) + hdr[18:]
    return eth(from_inside, ip4_header(src, dst, 6, seg_len) + hdr + data)


def udp_frame(from_inside, src, sport, dst, dport, data):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    c = (~fold(sum16(src + dst + struct.pack("!BBH", 0, 17, len(seg))) + sum16(seg))) & 0xFFFF or 0xFFFF
    seg = seg[:6] + struct.pack("!H", c) + seg[8:]
    return eth(from_inside, ip4_header(src, dst, 17, len(seg)) + seg)


def eth(from_inside, l3):
    dst, src = (OUT_MAC, IN_MAC) if from_inside else (IN_MAC, OUT_MAC)
    f = dst + src + b"\x08\x00" + l3
    return f + b"\0" * max(0, 60 - len(f))


SYN, ACK, PSH, RST = 0x02, 0x10, 0x08, 0x04


class flow:
    def __init__(self, i, rng):
        a = lambda s: ipaddress.IPv4Address(s).packed
        if i % 2 == 0:  # inbound: an outside client to the server
            self.client = a("198.19.%d.%d" % ((i >> 8) & 0xFF, (i & 0xFF) | 1))
            self.server = a(SERVER)
            self.sport = 1024 + rng.randrange(60000)
            self.dport = (22, 80, 443)[i % 3]
            self.client_inside = False
        else:  # outbound: a workstation to an outside server
            self.client = a("198.18.1.%d" % (20 + i % 200))
            self.server = a("198.19.%d.%d" % (128 + (i >> 8) % 100, (i & 0xFF) | 1))
            self.sport = 1024 + (i * 7919 + rng.randrange(1000)) % 60000
            self.dport = 443
            self.client_inside = True
        self.cseq = rng.randrange(1 << 32)
        self.sseq = rng.randrange(1 << 32)

    def syn(self):
        return tcp_frame(self.client_inside, self.client, self.sport, self.server, self.dport, SYN, self.cseq, 0)

    def syn_ack(self):
        return tcp_frame(not self.client_inside, self.server, self.dport, self.client, self.sport, SYN | ACK,
                         self.sseq, self.cseq + 1)

    def ack(self):
        self.cseq += 1
        self.sseq += 1
        return tcp_frame(self.client_inside, self.client, self.sport, self.server, self.dport, ACK, self.cseq,
                         self.sseq)

    def data(self, from_client, payload_len):
        if from_client:
            f = tcp_frame(self.client_inside, self.client, self.sport, self.server, self.dport, PSH | ACK, self.cseq,
                          self.sseq, payload_len)
            self.cseq += payload_len
        else:
            f = tcp_frame(not self.client_inside, self.server, self.dport, self.client, self.sport, PSH | ACK,
                          self.sseq, self.cseq, payload_len)
            self.sseq += payload_len
        return f


def denied(k, rng):
    a = lambda s: ipaddress.IPv4Address(s).packed
    src = a("198.19.250.%d" % (1 + k % 250))
    sport = 1024 + rng.randrange(60000)
    kind = k % 5
    if kind == 0:
        return tcp_frame(False, src, sport, a(SERVER), 31337, SYN, rng.randrange(1 << 32), 0)  # rule drop
    if kind == 1:
        return tcp_frame(False, src, sport, a("198.18.1.20"), 3389, SYN, rng.randrange(1 << 32), 0)  # default drop
    if kind == 2:
        return tcp_frame(False, src, sport, a("198.18.1.20"), 23, SYN, rng.randrange(1 << 32), 0)  # reject
    if kind == 3:
        return udp_frame(False, src, sport, a("198.18.1.20"), 5000, b"unsolicited")  # default drop
    return tcp_frame(False, src, sport, a(SERVER), 443, ACK, rng.randrange(1 << 32), 1)  # tcp_no_flow


def build(args):
    rng = random.Random(args.seed)
    flows = [flow(i, rng) for i in range(args.flows)]
    frames = []
    for base in range(0, len(flows), 32):
        chunk = flows[base:base + 32]
        frames += [f.syn() for f in chunk]
        frames += [f.syn_ack() for f in chunk]
        frames += [f.ack() for f in chunk]
    payload_len = args.size - 4 - 54  # FCS not in the file; Ethernet + IPv4 + TCP headers are 54 bytes
    if payload_len < 0:
        raise SystemExit("--size must be at least 58")
    k = 0
    order = list(range(len(flows)))
    for r in range(args.rounds):
        rng.shuffle(order)
        for i in order:
            frames.append(flows[i].data(r % 2 == 0, payload_len))
            if args.deny_every and len(frames) % args.deny_every == 0:
                frames.append(denied(k, rng))
                k += 1
    return frames


def write_pcap(path, frames):
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, f in enumerate(frames):
            out.write(struct.pack("<IIII", 1_700_000_000 + i // 1_000_000, i % 1_000_000, len(f), len(f)))
            out.write(f)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--size", type=int, default=64, help="data frame size on the wire, FCS included")
    p.add_argument("--flows", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=24, help="data segments per flow")
    p.add_argument("--deny-every", type=int, default=32, help="one denied packet every N packets (0: none)")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    write_pcap(a.out, build(a))
