"""What the e2e scripts that write raw packets share (forged_rst.py, send_fragments.py): the Internet
checksum and the TCP checksum over its IPv4 pseudo-header. Standard library only."""
import socket
import struct


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def with_tcp_checksum(src, dst, tcp):
    """tcp (header and payload, checksum field zero) with its checksum filled in."""
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    return tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
