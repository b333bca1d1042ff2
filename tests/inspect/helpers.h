// Shared by the inspection tests: a rule set compiled into a database, one worker's scratch and flow
// table, and builders for TCP/UDP frames and the payloads the name extractors read.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "inspect/inspect.h"
#include "frames.h"

namespace portcullis::inspect::test {

using packet::test::bytes;

inline bytes to_bytes(std::string_view s) { return bytes(s.begin(), s.end()); }

constexpr uint32_t client = 0xC6120005;  // 198.18.0.5
constexpr uint32_t server = 0xC613000A;  // 198.19.0.10

// A TCP segment between client:40000 and server:port; from_client picks the direction.
inline bytes tcp_frame(bool from_client, uint32_t seq, std::string_view payload, uint8_t flags = 0x18,
                       uint16_t port = 80)
{
	using namespace packet::test;
	ipv4_spec ip;
	ip.src = from_client ? client : server;
	ip.dst = from_client ? server : client;
	ip.proto = 6;
	tcp_spec t;
	t.sport = from_client ? 40000 : port;
	t.dport = from_client ? port : 40000;
	t.seq = seq;
	t.flags = flags;
	return eth(et_ipv4, ipv4(ip, tcp(t, to_bytes(payload))));
}

inline bytes udp_frame(bool from_client, std::string_view payload, uint16_t port = 53)
{
	using namespace packet::test;
	ipv4_spec ip;
	ip.src = from_client ? client : server;
	ip.dst = from_client ? server : client;
	ip.proto = 17;
	return eth(et_ipv4, ipv4(ip, udp(from_client ? 40000 : port, from_client ? port : 40000, to_bytes(payload))));
}

struct harness {
	rules::ruleset rs;
	std::unique_ptr<database> db;
	std::unique_ptr<scratch> proto, s;
	flow_streams fs{16};

	explicit harness(const std::string& text, scan_config cfg = {})
	{
		rules::parse_options o;
		o.services_file = "";
		o.apps_dir = std::string(PORTCULLIS_SOURCE_ROOT) + "/rules/apps";
		auto r = rules::parse_string(text, "t.rules", o);
		for (const auto& d : r.errors)
			UNSCOPED_INFO(rules::format(d));
		REQUIRE(r.errors.empty());
		rs = std::move(*r.rules);
		auto b = database::build(rs);
		INFO(b.error);
		REQUIRE(b.db);
		db = std::move(b.db);
		auto p = scratch::create(*db, cfg);
		INFO(p.error);
		REQUIRE(p.s);
		proto = std::move(p.s);
		auto c = proto->clone();  // what each worker gets
		REQUIRE(c.s);
		s = std::move(c.s);
	}

	// What the worker does on a new flow: the two classifiers' answers (here the reference), begin(),
	// then the opening packet goes through scan() like every other.
	result open(uint32_t flow, const bytes& frame, rules::direction d = rules::direction::out)
	{
		const packet::parsed p = packet::test::parse_bytes(frame);
		REQUIRE(p.ok());
		const candidates c = candidates_for(rs, d, tuple_of(p));
		const uint32_t first_any = c.rules.empty() ? c.payload_free : c.rules.front();
		fs.begin(*s, flow, plan_for(first_any, c.payload_free), p, d);
		return fs.scan(*s, flow, p, frame.data(), true);
	}
	result packet(uint32_t flow, const bytes& frame, bool from_opener = true)
	{
		const packet::parsed p = packet::test::parse_bytes(frame);
		REQUIRE(p.ok());
		return fs.scan(*s, flow, p, frame.data(), from_opener);
	}
	const counters& stats() const { return fs.stats(); }
};

} // namespace portcullis::inspect::test
