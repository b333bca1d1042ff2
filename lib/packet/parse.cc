// The DPDK-free core of the parser: bytes in, `parsed` out. See packet.h for the contract.
//
// Shape: one pass from L2 to L4, each layer a function that returns a drop_reason. Every header read is
// preceded by need(), which checks the read against two limits: the logical end of the enclosing layer
// (frame length at L2, the IP length at L3/L4), whose violation is the layer's own truncation reason,
// and the contiguous bytes actually present, whose violation (within the logical end) is
// mbuf_headers_segmented. Fields are loaded with explicit big-endian byte loads.
#include "packet/packet.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include "memory/zero.h"
#include "packet/parse_fast.h"
#include "packet/wire.h"

namespace portcullis::packet {
namespace {

using namespace wire;

struct frame_view {
	const uint8_t* p;
	uint32_t contiguous;  // bytes readable at p
	uint32_t length;      // logical frame length (>= contiguous)

	// May bytes [.., end) be read, given the enclosing layer ends at `limit` (<= length)?
	drop_reason need(uint64_t end, uint32_t limit, drop_reason truncated) const
	{
		if (end > limit)
			return truncated;
		if (end > contiguous)
			return drop_reason::mbuf_headers_segmented;
		return drop_reason::none;
	}
};

#define PORTCULLIS_TRY(expr)                      \
	do {                                      \
		const drop_reason r_ = (expr);    \
		if (r_ != drop_reason::none)      \
			return r_;                \
	} while (0)

bool icmp_is_echo(uint8_t family, uint8_t type)
{
	return family == 4 ? (type == 8 || type == 0) : (type == 128 || type == 129);
}

// The ICMP messages that quote the packet that caused them.
bool icmp_is_error(uint8_t family, uint8_t type)
{
	if (family == 4)
		return type == 3 || type == 11 || type == 12;  // dest unreachable, time exceeded, parameter problem
	return type >= 1 && type <= 4;  // dest unreachable, packet too big, time exceeded, parameter problem
}

bool ipv4_options_valid(const uint8_t* h, uint32_t ihl)
{
	uint32_t i = ipv4_min_header;
	while (i < ihl) {
		const uint8_t type = h[i];
		if (type == 0)  // end of option list: the rest is padding
			return true;
		if (type == 1) {  // no-op
			++i;
			continue;
		}
		if (i + 1 >= ihl)
			return false;
		const uint8_t len = h[i + 1];
		if (len < 2 || i + len > ihl)
			return false;
		i += len;
	}
	return true;
}

bool ipv4_checksum_valid(const uint8_t* h, uint32_t ihl)
{
	uint32_t sum = 0;
	for (uint32_t i = 0; i < ihl; i += 2)
		sum += load_be16(h + i);
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	return sum == 0xFFFF;
}

// The IPv6 extension-header chain from `off` (the header named by `next`) to the upper layer.
struct ext_chain {
	uint32_t l4;       // offset of what follows the chain (or of the fragment data)
	uint8_t proto;     // the header found there
	bool fragment;     // a fragment header was seen
	bool more;
	uint16_t frag_offset;
	uint32_t frag_id;
};

drop_reason walk_ipv6_ext(const frame_view& f, uint32_t off, uint32_t end, uint8_t next, ext_chain& out)
{
	out = ext_chain{};
	for (uint8_t count = 0;; ++count) {
		uint32_t len;
		switch (next) {
		case ipv6_hop_by_hop:
		case ipv6_routing:
		case ipv6_dest_opts:
		case ipv6_ah:
		case ipv6_fragment:
			break;
		default:  // upper layer, ESP (50) or no next header (59): the walk ends
			out.l4 = off;
			out.proto = next;
			return drop_reason::none;
		}
		if (count == max_ipv6_ext_headers)
			return drop_reason::ipv6_ext_chain_too_long;
		PORTCULLIS_TRY(f.need(uint64_t(off) + 2, end, drop_reason::ipv6_ext_truncated));
		if (next == ipv6_fragment) {
			PORTCULLIS_TRY(f.need(uint64_t(off) + 8, end, drop_reason::ipv6_ext_truncated));
			const uint16_t fo = load_be16(f.p + off + 2);
			out.fragment = true;
			out.frag_offset = uint16_t(fo & 0xFFF8);
			out.more = fo & 1;
			out.frag_id = load_be32(f.p + off + 4);
			len = 8;
		} else if (next == ipv6_ah) {
			len = (uint32_t(f.p[off + 1]) + 2) * 4;  // AH counts 4-byte units, minus 2
		} else {
			len = (uint32_t(f.p[off + 1]) + 1) * 8;  // 8-byte units, not counting the first 8
		}
		PORTCULLIS_TRY(f.need(uint64_t(off) + len, end, drop_reason::ipv6_ext_truncated));
		next = f.p[off];
		off += len;
		if (out.fragment && out.frag_offset != 0) {
			// A non-first fragment: what follows is fragment data, not headers.
			out.l4 = off;
			out.proto = next;
			return drop_reason::none;
		}
	}
}

// Sets sport/dport of a quoted L4 header at q (need() already checked by the caller).
void quoted_ports(const uint8_t* q, uint8_t family, uint8_t proto, inner_tuple& t)
{
	if (proto == proto_tcp || proto == proto_udp) {
		t.sport = load_be16(q);
		t.dport = load_be16(q + 2);
	} else if ((family == 4 && proto == proto_icmp) || (family == 6 && proto == proto_icmpv6)) {
		if (icmp_is_echo(family, q[0])) {
			t.sport = load_be16(q + 4);
			t.dport = 0;
		} else {
			t.sport = q[0];
			t.dport = q[1];
		}
	}
}

bool has_quoted_ports(uint8_t family, uint8_t proto)
{
	return proto == proto_tcp || proto == proto_udp || (family == 4 && proto == proto_icmp) ||
	       (family == 6 && proto == proto_icmpv6);
}

// The packet quoted by an ICMP error, from q to end. Any shortfall is a bad quote: the quote is all that
// conntrack has to relate the error to a flow, and a garbled one must not be allowed to match one.
drop_reason parse_quote(const frame_view& f, uint32_t q, uint32_t end, uint8_t family, inner_tuple& t)
{
	constexpr drop_reason bad = drop_reason::icmp_error_bad_quote;
	if (family == 4) {
		PORTCULLIS_TRY(f.need(uint64_t(q) + ipv4_min_header, end, bad));
		const uint8_t* h = f.p + q;
		const uint32_t ihl = uint32_t(h[0] & 0x0F) * 4;
		if ((h[0] >> 4) != 4 || ihl < ipv4_min_header)
			return bad;
		PORTCULLIS_TRY(f.need(uint64_t(q) + ihl, end, bad));
		t.proto = h[9];
		t.src.v4 = load_be32(h + 12);
		t.dst.v4 = load_be32(h + 16);
		const bool non_first = (load_be16(h + 6) & 0x1FFF) != 0;
		if (!non_first && has_quoted_ports(4, t.proto)) {
			PORTCULLIS_TRY(f.need(uint64_t(q) + ihl + quoted_l4_len, end, bad));
			quoted_ports(h + ihl, 4, t.proto, t);
		}
	} else {
		PORTCULLIS_TRY(f.need(uint64_t(q) + ipv6_header_len, end, bad));
		const uint8_t* h = f.p + q;
		if ((h[0] >> 4) != 6)
			return bad;
		t.src.v6 = load_be128(h + 8);
		t.dst.v6 = load_be128(h + 24);
		ext_chain chain;
		const drop_reason r = walk_ipv6_ext(f, q + ipv6_header_len, end, h[6], chain);
		if (r == drop_reason::mbuf_headers_segmented)
			return r;
		if (r != drop_reason::none)
			return bad;
		t.proto = chain.proto;
		if (chain.frag_offset == 0 && has_quoted_ports(6, t.proto)) {
			PORTCULLIS_TRY(f.need(uint64_t(chain.l4) + quoted_l4_len, end, bad));
			quoted_ports(f.p + chain.l4, 6, t.proto, t);
		}
	}
	t.family = family;
	return drop_reason::none;
}

// L4 from l4 to end (the end of the IP packet). `more_fragments`: this is a first fragment with more to
// come, so the L4 header must be whole here (else tiny fragment) and UDP's length covers more than this.
drop_reason parse_l4(const frame_view& f, parsed& out, uint32_t l4, uint32_t end, bool more_fragments)
{
	const uint8_t* h = f.p + l4;
	out.l4_offset = uint16_t(l4);
	out.payload_offset = uint16_t(l4);
	out.payload_length = uint16_t(end - l4);
	switch (out.proto) {
	case proto_tcp: {
		PORTCULLIS_TRY(f.need(uint64_t(l4) + tcp_min_header, end, drop_reason::tcp_truncated));
		const uint32_t data_offset = uint32_t(h[12] >> 4) * 4;
		if (data_offset < tcp_min_header)
			return drop_reason::tcp_bad_data_offset;
		PORTCULLIS_TRY(f.need(uint64_t(l4) + data_offset, end, drop_reason::tcp_header_truncated));
		out.sport = load_be16(h);
		out.dport = load_be16(h + 2);
		out.tcp_seq = load_be32(h + 4);
		out.tcp_ack = load_be32(h + 8);
		out.tcp_flags = h[13];
		out.tcp_window = load_be16(h + 14);
		out.payload_offset = uint16_t(l4 + data_offset);
		out.payload_length = uint16_t(end - (l4 + data_offset));
		return drop_reason::none;
	}
	case proto_udp: {
		PORTCULLIS_TRY(f.need(uint64_t(l4) + udp_header_len, end, drop_reason::udp_truncated));
		const uint32_t udp_len = load_be16(h + 4);
		// In a first fragment the UDP length covers the whole datagram, not just this piece.
		if (udp_len < udp_header_len || (!more_fragments && udp_len > end - l4))
			return drop_reason::udp_bad_length;
		out.sport = load_be16(h);
		out.dport = load_be16(h + 2);
		out.payload_offset = uint16_t(l4 + udp_header_len);
		out.payload_length = uint16_t((more_fragments ? end - l4 : udp_len) - udp_header_len);
		return drop_reason::none;
	}
	case proto_icmp:
	case proto_icmpv6: {
		if ((out.proto == proto_icmp) != (out.family == 4))
			return drop_reason::none;  // ICMP in IPv6 or ICMPv6 in IPv4: an opaque protocol
		PORTCULLIS_TRY(f.need(uint64_t(l4) + icmp_header_len, end, drop_reason::icmp_truncated));
		out.icmp_type = h[0];
		out.icmp_code = h[1];
		out.sport = h[0];
		out.dport = h[1];
		if (icmp_is_echo(out.family, h[0]))
			out.icmp_echo_id = load_be16(h + 4);
		out.payload_offset = uint16_t(l4 + icmp_header_len);
		out.payload_length = uint16_t(end - (l4 + icmp_header_len));
		if (icmp_is_error(out.family, h[0]))
			return parse_quote(f, l4 + icmp_header_len, end, out.family, out.inner);
		return drop_reason::none;
	}
	default:
		return drop_reason::none;
	}
}

bool is_l4_truncation(drop_reason r)
{
	return r == drop_reason::tcp_truncated || r == drop_reason::tcp_header_truncated ||
	       r == drop_reason::udp_truncated || r == drop_reason::icmp_truncated;
}

drop_reason parse_ipv4(const frame_view& f, parsed& out, const parse_options& opt)
{
	const uint32_t l3 = out.l3_offset;
	out.kind = packet_kind::ipv4;
	out.family = 4;
	PORTCULLIS_TRY(f.need(uint64_t(l3) + ipv4_min_header, f.length, drop_reason::ipv4_truncated));
	const uint8_t* h = f.p + l3;
	if ((h[0] >> 4) != 4)
		return drop_reason::ipv4_bad_version;
	const uint32_t ihl = uint32_t(h[0] & 0x0F) * 4;
	if (ihl < ipv4_min_header)
		return drop_reason::ipv4_bad_ihl;
	PORTCULLIS_TRY(f.need(uint64_t(l3) + ihl, f.length, drop_reason::ipv4_header_truncated));
	const uint32_t total = load_be16(h + 2);
	if (total < ihl)
		return drop_reason::ipv4_bad_total_length;
	if (uint64_t(l3) + total > f.length)
		return drop_reason::ipv4_total_length_exceeds_frame;
	out.l3_length = total;
	out.proto = h[9];
	out.src.v4 = load_be32(h + 12);
	out.dst.v4 = load_be32(h + 16);
	if (ihl > ipv4_min_header && !ipv4_options_valid(h, ihl))
		return drop_reason::ipv4_bad_options;
	if (opt.verify_ipv4_checksum && !ipv4_checksum_valid(h, ihl))
		return drop_reason::ipv4_bad_checksum;

	const uint16_t frag_field = load_be16(h + 6);
	const uint32_t frag_offset = uint32_t(frag_field & 0x1FFF) * 8;
	const bool more = frag_field & 0x2000;
	if (more || frag_offset != 0) {
		out.frag = uint8_t(frag_is_fragment | (more ? frag_more : 0) | (frag_offset ? frag_non_first : 0));
		out.frag_id = load_be16(h + 4);
		out.frag_offset = uint16_t(frag_offset);
		// The reassembled datagram (header + data before this piece + this piece) would exceed 64 KiB.
		if (frag_offset + total > max_ip_datagram)
			return drop_reason::ipv4_fragment_overflow;
		if (frag_offset == 8 && out.proto == proto_tcp)
			return drop_reason::ipv4_tcp_fragment_offset_one;
	}
	const uint32_t l4 = l3 + ihl;
	const uint32_t end = l3 + total;
	if (frag_offset != 0) {
		out.l4_offset = uint16_t(l4);
		out.payload_offset = uint16_t(l4);
		out.payload_length = uint16_t(end - l4);
		return drop_reason::none;
	}
	const drop_reason r = parse_l4(f, out, l4, end, more);
	if (more && is_l4_truncation(r))
		return drop_reason::ipv4_tiny_fragment;
	return r;
}

drop_reason parse_ipv6(const frame_view& f, parsed& out)
{
	const uint32_t l3 = out.l3_offset;
	out.kind = packet_kind::ipv6;
	out.family = 6;
	PORTCULLIS_TRY(f.need(uint64_t(l3) + ipv6_header_len, f.length, drop_reason::ipv6_truncated));
	const uint8_t* h = f.p + l3;
	if ((h[0] >> 4) != 6)
		return drop_reason::ipv6_bad_version;
	const uint32_t payload_len = load_be16(h + 4);
	if (uint64_t(l3) + ipv6_header_len + payload_len > f.length)
		return drop_reason::ipv6_payload_length_exceeds_frame;
	out.l3_length = ipv6_header_len + payload_len;
	out.src.v6 = load_be128(h + 8);
	out.dst.v6 = load_be128(h + 24);
	out.proto = h[6];
	const uint32_t end = l3 + ipv6_header_len + payload_len;

	ext_chain chain;
	PORTCULLIS_TRY(walk_ipv6_ext(f, l3 + ipv6_header_len, end, h[6], chain));
	out.proto = chain.proto;
	if (chain.fragment) {
		out.frag = uint8_t(frag_is_fragment | (chain.more ? frag_more : 0) |
		                   (chain.frag_offset ? frag_non_first : 0));
		out.frag_id = chain.frag_id;
		out.frag_offset = chain.frag_offset;
		if (uint32_t(chain.frag_offset) + (end - chain.l4) > max_ip_datagram)
			return drop_reason::ipv6_fragment_overflow;
		if (chain.frag_offset != 0) {
			out.l4_offset = uint16_t(chain.l4);
			out.payload_offset = uint16_t(chain.l4);
			out.payload_length = uint16_t(end - chain.l4);
			return drop_reason::none;
		}
	}
	const bool more = chain.fragment && chain.more;
	const drop_reason r = parse_l4(f, out, chain.l4, end, more);
	if (more && is_l4_truncation(r))
		return drop_reason::ipv6_tiny_fragment;
	return r;
}

drop_reason parse_frame(const frame_view& f, parsed& out, const parse_options& opt)
{
	PORTCULLIS_TRY(f.need(eth_header_len, f.length, drop_reason::eth_truncated));
	uint16_t ethertype = load_be16(f.p + 12);
	uint32_t off = eth_header_len;
	while (ethertype == ethertype_vlan || ethertype == ethertype_qinq || ethertype == ethertype_qinq_old) {
		if (out.vlan_count == max_vlan_tags)
			return drop_reason::vlan_too_many_tags;
		PORTCULLIS_TRY(f.need(uint64_t(off) + vlan_tag_len, f.length, drop_reason::vlan_truncated));
		out.vlan_id[out.vlan_count++] = load_be16(f.p + off) & 0x0FFF;
		ethertype = load_be16(f.p + off + 2);
		off += vlan_tag_len;
	}
	out.ethertype = ethertype;
	out.l3_offset = uint8_t(off);
	switch (ethertype) {
	case ethertype_ipv4:
		return parse_ipv4(f, out, opt);
	case ethertype_ipv6:
		return parse_ipv6(f, out);
	case ethertype_arp:
		out.kind = packet_kind::arp;
		return drop_reason::none;
	default:
		out.kind = packet_kind::other_l2;
		return drop_reason::none;
	}
}

constexpr std::array<std::string_view, drop_reason_count> reason_names = {
	"none",
	"eth_truncated",
	"vlan_truncated",
	"vlan_too_many_tags",
	"ipv4_truncated",
	"ipv4_bad_version",
	"ipv4_bad_ihl",
	"ipv4_header_truncated",
	"ipv4_bad_options",
	"ipv4_bad_total_length",
	"ipv4_total_length_exceeds_frame",
	"ipv4_bad_checksum",
	"ipv4_fragment_overflow",
	"ipv4_tiny_fragment",
	"ipv4_tcp_fragment_offset_one",
	"ipv6_truncated",
	"ipv6_bad_version",
	"ipv6_payload_length_exceeds_frame",
	"ipv6_ext_truncated",
	"ipv6_ext_chain_too_long",
	"ipv6_fragment_overflow",
	"ipv6_tiny_fragment",
	"tcp_truncated",
	"tcp_bad_data_offset",
	"tcp_header_truncated",
	"udp_truncated",
	"udp_bad_length",
	"icmp_truncated",
	"icmp_error_bad_quote",
	"mbuf_headers_segmented",
};
static_assert(reason_names.back() == "mbuf_headers_segmented", "one name per drop_reason, in order");

constexpr std::array<std::string_view, packet_kind_count> kind_names = {"other_l2", "arp", "ipv4", "ipv6"};

} // namespace

std::string_view to_string(drop_reason r)
{
	return size_t(r) < reason_names.size() ? reason_names[size_t(r)] : std::string_view("unknown");
}

std::string_view to_string(packet_kind k)
{
	return size_t(k) < kind_names.size() ? kind_names[size_t(k)] : std::string_view("unknown");
}

namespace {

inline void clear(parsed& out)
{
	static_assert(alignof(parsed) >= 16);
	memory::zero_aligned<sizeof(parsed)>(&out);
}

} // namespace

drop_reason parse_first_segment(const uint8_t* frame, uint32_t contiguous, uint32_t frame_len, parsed& out,
                                 const parse_options& opt)
{
	if (contiguous > frame_len)
		contiguous = frame_len;
	if (!opt.general_only && !opt.verify_ipv4_checksum && fast::parse_ipv4_tcp_udp(frame, contiguous, frame_len, out))
		return drop_reason::none;
	// Cleared whole rather than `parsed{}`: the unions must be zero in all 16 bytes, not just in `v4`.
	clear(out);
	const frame_view f{frame, contiguous, frame_len};
	out.reason = parse_frame(f, out, opt);
	return out.reason;
}

drop_reason parse(const uint8_t* frame, uint32_t len, parsed& out, const parse_options& opt)
{
	return parse_first_segment(frame, len, len, out, opt);
}

uint8_t syn_window_scale(const uint8_t* tcp, uint32_t header_len)
{
	if (!(tcp[13] & 0x02))
		return no_window_scale;
	for (uint32_t at = tcp_min_header; at < header_len;) {
		const uint8_t kind = tcp[at];
		if (kind == 0)  // end of options
			break;
		if (kind == 1) {  // no-op padding
			++at;
			continue;
		}
		if (at + 1 >= header_len || tcp[at + 1] < 2 || at + tcp[at + 1] > header_len)
			break;
		if (kind == 3 && tcp[at + 1] == 3)
			return std::min<uint8_t>(tcp[at + 2], 14);
		at += tcp[at + 1];
	}
	return no_window_scale;
}

tcp_options tcp_options_of(const uint8_t* tcp, uint32_t header_len)
{
	tcp_options o;
	auto be32 = [](const uint8_t* b) { return uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3]; };
	for (uint32_t at = tcp_min_header; at < header_len;) {
		const uint8_t kind = tcp[at];
		if (kind == 0)
			break;
		if (kind == 1) {
			++at;
			continue;
		}
		if (at + 1 >= header_len || tcp[at + 1] < 2 || at + tcp[at + 1] > header_len)
			break;
		const uint8_t len = tcp[at + 1];
		if (kind == 2 && len == 4)
			o.mss = uint16_t(tcp[at + 2] << 8 | tcp[at + 3]);
		else if (kind == 3 && len == 3)
			o.window_scale = std::min<uint8_t>(tcp[at + 2], 14);
		else if (kind == 4 && len == 2)
			o.sack_permitted = true;
		else if (kind == 5 && len >= 10 && (len - 2) % 8 == 0) {
			o.sack_at = uint8_t(at);
			o.sack_blocks = uint8_t((len - 2) / 8);
		} else if (kind == 8 && len == 10) {
			o.timestamp_at = uint8_t(at);
			o.ts_value = be32(tcp + at + 2);
			o.ts_echo = be32(tcp + at + 6);
		}
		at += len;
	}
	return o;
}

} // namespace portcullis::packet
