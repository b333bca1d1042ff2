// The packet parser: raw frame bytes in, one compact `parsed` record out, or a named drop reason.
//
// It is the first organ of the data path and depends on nothing else in Portcullis. The core, parse(),
// works on a plain byte array so that it can be unit tested and fuzzed without DPDK; parse_burst() is a
// thin wrapper over rte_mbuf arrays that prefetches ahead and counts outcomes per reason.
//
// What it understands: Ethernet II with up to two VLAN tags (802.1Q, 802.1ad/QinQ), ARP and other
// ethertypes (classified, not dropped: a transparent bridge must pass ARP; the dataplane decides),
// IPv4 with options and fragments, IPv6 with its extension-header chain and fragments, TCP, UDP, ICMP
// and ICMPv6, including the packet quoted inside ICMP errors.
//
// Invariants:
//   - Every read is bounds-checked against the bytes given; nothing is read past the frame, nothing is
//     written but `out`. No allocation, no exceptions, no locks: any thread may call any function here.
//   - Multi-byte fields are loaded byte by byte or by memcpy (never through casts to packed structs), so
//     unaligned frames are fine and the parser is UBSan clean.
//   - `out` is fully overwritten. When `reason != none`, the fields parsed before the fault are filled
//     and the rest are zero; only `reason` is meant to be acted upon.
//   - Lengths come from the headers, not from the frame: Ethernet pads short frames to 60 bytes, so an
//     IP packet may be shorter than the frame holding it; the padding is ignored (not an error).
//   - The IPv4 header checksum is not verified by default: NICs verify it in hardware and report it in
//     the mbuf (parse_burst drops what the NIC marks bad), and virtual devices (virtio, tap, af_packet)
//     often hand over packets whose checksums were never filled in because they never touched a wire.
//     parse_options::verify_ipv4_checksum turns on the software check. L4 checksums are not checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

struct rte_mbuf;

namespace portcullis {

// Same type as in rules/match.h (a repeated typedef is allowed); packet must not include rules.
__extension__ typedef unsigned __int128 u128;

} // namespace portcullis

namespace portcullis::packet {

// Why a frame is not fit to go further. `none` means parsed. Names (to_string) are Prometheus label
// values: snake_case, stable once released; add new reasons before `count_`.
enum class drop_reason : uint8_t {
	none = 0,
	eth_truncated,              // fewer than 14 bytes (includes the empty frame)
	vlan_truncated,             // a VLAN tag cut short
	vlan_too_many_tags,         // a third tag: we parse at most two (QinQ)
	ipv4_truncated,             // fewer than 20 bytes after L2
	ipv4_bad_version,           // ethertype says IPv4, version nibble says otherwise
	ipv4_bad_ihl,               // IHL < 5
	ipv4_header_truncated,      // IHL*4 runs past the bytes available
	ipv4_bad_options,           // an option's length runs past the header or is < 2
	ipv4_bad_total_length,      // total length < IHL*4
	ipv4_total_length_exceeds_frame,
	ipv4_bad_checksum,          // only when verification is on, or when the NIC marked it bad
	ipv4_fragment_overflow,     // fragment offset + total length > 65535 (ping of death)
	ipv4_tiny_fragment,         // first fragment too short to hold its whole L4 header (RFC 1858)
	ipv4_tcp_fragment_offset_one,  // TCP fragment at offset 8: rewrites the first one's flags (RFC 1858)
	ipv6_truncated,             // fewer than 40 bytes after L2
	ipv6_bad_version,
	ipv6_payload_length_exceeds_frame,
	ipv6_ext_truncated,         // an extension header runs past the payload
	ipv6_ext_chain_too_long,    // more than max_ipv6_ext_headers extension headers
	ipv6_fragment_overflow,     // fragment offset + fragment data > 65535
	ipv6_tiny_fragment,         // first fragment without its whole L4 header (RFC 7112)
	tcp_truncated,              // fewer than 20 bytes of TCP
	tcp_bad_data_offset,        // data offset < 5
	tcp_header_truncated,       // data offset * 4 runs past the IP payload
	udp_truncated,              // fewer than 8 bytes of UDP
	udp_bad_length,             // length field < 8 or > IP payload (unfragmented datagrams)
	icmp_truncated,             // ICMP or ICMPv6 message shorter than its 8-byte header
	icmp_error_bad_quote,       // ICMP error whose quoted packet is not a plausible IP header + 8 bytes
	mbuf_headers_segmented,     // headers continue past the first mbuf segment (parse_burst only)
	count_
};

inline constexpr size_t drop_reason_count = size_t(drop_reason::count_);

// "none", "ipv4_bad_ihl", ...; "unknown" for values outside the enum.
std::string_view to_string(drop_reason r);

// What the frame carries at L3. Set as soon as the ethertype is known, so it is meaningful on drops
// after L2 (an ipv4 frame dropped with ipv4_bad_ihl has kind ipv4).
enum class packet_kind : uint8_t {
	other_l2 = 0,  // any ethertype we do not parse (and frames dropped before the ethertype)
	arp,           // 0x0806
	ipv4,
	ipv6,
};
inline constexpr size_t packet_kind_count = 4;
std::string_view to_string(packet_kind k);

inline constexpr uint8_t max_vlan_tags = 2;
inline constexpr uint8_t max_ipv6_ext_headers = 8;

// IP addresses as host-order numbers, the form the classifier keys take (198.18.0.1 is 0xC6120001;
// an IPv6 address is its 16 bytes read as one big-endian 128-bit number). Read `v4` when family == 4
// and `v6` when family == 6; for IPv4 the upper 96 bits are zero, so `v6` compares equal too.
union ip_address {
	uint32_t v4;
	u128 v6;
};
static_assert(sizeof(ip_address) == 16);

// The 5-tuple of the packet quoted in an ICMP error, as it was sent (src is the original sender).
// Ports follow the flow-key convention (flow_sport/flow_dport below): for a quoted ICMP echo, sport is
// the echo identifier and dport 0; for other quoted ICMP, sport = type and dport = code; for protocols
// without ports, and for a quoted non-first fragment, both are 0.
struct inner_tuple {
	ip_address src;
	ip_address dst;
	uint16_t sport;
	uint16_t dport;
	uint8_t proto;
	uint8_t family;  // 4 or 6; 0 when the packet is not an ICMP error
};

// Bits of parsed::frag.
inline constexpr uint8_t frag_is_fragment = 0x01;  // a fragment (IPv4 MF or offset, or an IPv6 fragment header)
inline constexpr uint8_t frag_more = 0x02;         // MF / M flag
inline constexpr uint8_t frag_non_first = 0x04;    // offset > 0: no L4 header, ports are 0

// The parse result. Two cache lines: the first holds everything the classifier key, the flow key and TCP
// tracking read for every packet; the second holds the rarer details (fragments, VLANs, ICMP errors).
// Offsets are from the start of the frame.
struct alignas(64) parsed {
	// --- line 0
	ip_address src;
	ip_address dst;
	// Host order. TCP/UDP: the ports. ICMP/ICMPv6: type and code (the classifier convention, see
	// rules/match.h). Non-first fragments and other protocols: 0.
	uint16_t sport;
	uint16_t dport;
	uint8_t proto;           // IPv4 protocol; IPv6: the header after the extension chain (50 for ESP, 59 for none)
	uint8_t tcp_flags;       // FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 URG 0x20 ECE 0x40 CWR 0x80
	uint8_t family;          // 4, 6, or 0 for non-IP
	packet_kind kind;
	drop_reason reason;
	uint8_t frag;            // frag_* bits
	uint8_t vlan_count;      // 0..2
	uint8_t l3_offset;       // 14, 18 or 22
	uint16_t l4_offset;      // after IPv4 options / the IPv6 extension chain
	uint16_t payload_offset; // after the L4 header (TCP options included); = l4_offset when no L4 is parsed
	uint16_t payload_length; // from the IP (and UDP) lengths, never including Ethernet padding
	uint16_t tcp_window;     // raw, unscaled
	uint32_t tcp_seq;
	uint32_t tcp_ack;
	uint8_t icmp_type;
	uint8_t icmp_code;
	uint16_t icmp_echo_id;   // echo request/reply only, else 0

	// --- line 1
	uint32_t frag_id;        // IPv4: 16-bit id; IPv6: 32-bit fragment header id
	uint16_t frag_offset;    // in bytes
	uint16_t ethertype;      // after the VLAN tags
	uint16_t vlan_id[max_vlan_tags];  // outer first; 12-bit VID
	uint32_t l3_length;      // IP header + payload per the IP header (v4 total length, v6 40 + payload length)
	inner_tuple inner;       // ICMP errors only

	bool ok() const { return reason == drop_reason::none; }
	bool is_fragment() const { return frag & frag_is_fragment; }
	bool is_non_first_fragment() const { return frag & frag_non_first; }
	bool is_icmp() const { return (family == 4 && proto == 1) || (family == 6 && proto == 58); }
	bool is_icmp_echo() const
	{
		return !is_non_first_fragment() &&
		       ((family == 4 && proto == 1 && (icmp_type == 8 || icmp_type == 0)) ||
		        (family == 6 && proto == 58 && (icmp_type == 128 || icmp_type == 129)));
	}
	bool is_icmp_error() const { return inner.family != 0; }
};
static_assert(sizeof(parsed) == 128);
static_assert(offsetof(parsed, icmp_echo_id) + sizeof(uint16_t) == 64, "per-packet fields fill line 0");

// Ports for a flow (connection-tracking) key: as sport/dport, except that an ICMP echo is keyed by its
// identifier (sport = echo id, dport = 0), so that request and reply (different types) meet in one flow.
inline uint16_t flow_sport(const parsed& p) { return p.is_icmp_echo() ? p.icmp_echo_id : p.sport; }
inline uint16_t flow_dport(const parsed& p) { return p.is_icmp_echo() ? uint16_t(0) : p.dport; }

struct parse_options {
	bool verify_ipv4_checksum = false;
	// Skip the straight-line path for untagged IPv4 TCP/UDP without options or fragments and always
	// take the general one. Both give the same record to the byte; tests and the fuzz target compare them.
	bool general_only = false;
};

// Parses one frame of `len` bytes. Returns out.reason.
drop_reason parse(const uint8_t* frame, uint32_t len, parsed& out, const parse_options& opt = {});

// As parse(), for a frame of `frame_len` bytes of which only the first `contiguous` are at `frame`
// (a multi-segment mbuf): lengths are checked against frame_len, and a header that would need bytes
// past `contiguous` (but within frame_len) is mbuf_headers_segmented rather than a truncation.
drop_reason parse_first_segment(const uint8_t* frame, uint32_t contiguous, uint32_t frame_len, parsed& out,
                                 const parse_options& opt = {});

// What syn_window_scale says of a segment that is not a SYN, or a SYN without the window scale option.
inline constexpr uint8_t no_window_scale = 0xff;

// The window scale option (RFC 7323, 0..14: a larger shift counts as 14) of a SYN whose TCP header, of
// header_len bytes with its options, is at tcp; no_window_scale if it is not a SYN or has none. The
// parser does not look for it: only a flow's SYNs need it (flow/conntrack.h).
uint8_t syn_window_scale(const uint8_t* tcp, uint32_t header_len);

// The TCP options the SYN proxy reads and rewrites (dataplane/synproxy.cc), from a TCP header of
// header_len bytes with its options at tcp. Offsets are from the start of the TCP header, 0 when the
// option is absent; a malformed option list ends the walk (what was found before it stands).
struct tcp_options {
	uint16_t mss = 0;                         // 0: none
	uint8_t window_scale = no_window_scale;   // 0..14, as syn_window_scale
	bool sack_permitted = false;
	uint8_t timestamp_at = 0;                 // the TS option's kind byte (RFC 7323: 10 bytes)
	uint8_t sack_at = 0;                      // the SACK option's kind byte
	uint8_t sack_blocks = 0;                  // its blocks, 8 bytes each (at most 4)
	uint32_t ts_value = 0, ts_echo = 0;
};
tcp_options tcp_options_of(const uint8_t* tcp, uint32_t header_len);

// Per-core outcome counters (one per lcore, summed by the reader; never shared for writing).
struct alignas(64) parse_counters {
	uint64_t packets;
	uint64_t by_reason[drop_reason_count];  // by_reason[none] counts the packets that parsed
	uint64_t by_kind[packet_kind_count];    // every packet, dropped or not
};

// Parses pkts[0..n) into out[0..n) (first segment of each mbuf only, see parse_first_segment) and counts
// the outcomes. An IPv4 packet that the NIC flagged with a bad IP checksum (RTE_MBUF_F_RX_IP_CKSUM_BAD)
// is dropped as ipv4_bad_checksum. Neither pkts nor the mbufs are modified. fast_mask, when given, gets
// bit i (i < 64) set for each packet the straight-line path parsed (parse_fast.h): untagged IPv4, TCP or
// UDP, no fragment, no drop reason, so that a caller need not test those fields again.
void parse_burst(rte_mbuf* const* pkts, uint16_t n, parsed* out, parse_counters& c, const parse_options& opt = {},
                 uint64_t* fast_mask = nullptr);

} // namespace portcullis::packet
