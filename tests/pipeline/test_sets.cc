// Rules over address sets from files: the data path looks a new flow's addresses up in lib/sets and
// the classifier tests the key bit (docs/rules.md, "Sets from files").
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "packet/packet.h"
#include "pipeline.h"

using namespace portcullis;
using namespace portcullis::test;
using dataplane::drop_reason;
namespace pt = portcullis::packet::test;

namespace {

constexpr uint32_t listed = 0xC6120105;    // 198.18.1.5, in the feed's 198.18.1.0/24
constexpr uint32_t listed2 = 0xC6130000;   // 198.19.0.0, in the feed's 198.19.0.0/16
constexpr uint32_t clean = 0xC6120205;     // 198.18.2.5, not listed
constexpr uint32_t web = 0xC612640A;       // 198.18.100.10, inside
constexpr uint8_t S = 0x02, A = 0x10, SA = 0x12;

struct feed_file {
	std::string path = "/tmp/portcullis-test-sets-" + std::to_string(getpid()) + ".netset";
	explicit feed_file(const std::string& text) { std::ofstream(path) << text; }
	~feed_file() { std::filesystem::remove(path); }
};

} // namespace

TEST_CASE("a file set blocks its sources and lets every other source through")
{
	feed_file feed("# firehol-style\n198.18.1.0/24\n198.19.0.0/16\n2001:2:0:66::/64\n");
	pipeline pl("set blocklist = file \"" + feed.path + "\"\n"
	            "default in drop\n"
	            "drop in from $blocklist\n"
	            "allow in tcp to any port https\n"
	            "allow out to !$blocklist\n");
	CHECK(pl.send(outside, tcp4(listed, 40000, web, 443, S, 1)).to_inside.empty());
	CHECK(pl.send(outside, tcp4(listed2, 40000, web, 443, S, 1)).to_inside.empty());
	CHECK(pl.drops(drop_reason::rule_drop) == 2);
	CHECK(pl.policy().total(0).packets == 2);
	CHECK(pl.send(outside, tcp4(clean, 40000, web, 443, S, 1)).to_inside.size() == 1);
	CHECK(pl.policy().total(1).packets == 1);
	// The reply of the allowed flow is a known flow: no set lookup decides it.
	CHECK(pl.send(inside, tcp4(web, 443, clean, 40000, SA, 7, 2)).to_outside.size() == 1);
	// Outbound: `allow out to !$blocklist` decides for a clean destination; a listed one fails it and
	// falls to the default (allow out), so only the rule's counter tells the two apart.
	CHECK(pl.send(inside, tcp4(web, 50000, clean, 80, S, 1)).to_outside.size() == 1);
	CHECK(pl.policy().total(2).packets == 1);
	CHECK(pl.send(inside, tcp4(web, 50001, listed, 80, S, 1)).to_outside.size() == 1);
	CHECK(pl.policy().total(2).packets == 1);  // not by rule 3: the destination is listed
}

TEST_CASE("set-tested new flows among a burst's known flows are each judged by the set")
{
	// The worker's loop for plain packets of known flows goes on past a miss when the rule set tests
	// sets (the miss's set records fetched as it is found); the misses are classified after it.
	feed_file feed("198.18.1.0/24\n198.19.0.0/16\n");
	pipeline pl("set blocklist = file \"" + feed.path + "\"\n"
	            "drop in from $blocklist\n"
	            "allow in udp to any port 80\n");
	constexpr uint32_t clean2 = 0xC6120206;  // 198.18.2.6, not listed
	REQUIRE(pl.send(outside, udp4(clean, 5000, web, 80)).to_inside.size() == 1);
	pl.inject(outside, udp4(clean, 5000, web, 80));
	pl.inject(outside, udp4(listed, 5001, web, 80));  // new, listed: dropped
	pl.inject(outside, udp4(clean, 5000, web, 80));
	pl.inject(outside, udp4(clean2, 5002, web, 80));  // new, not listed: opens
	pl.inject(outside, udp4(clean, 5000, web, 80));
	pl.inject(outside, udp4(listed2, 5003, web, 80));  // new, listed: dropped
	pl.run();
	CHECK(pl.sent(inside).size() == 4);
	CHECK(pl.drops(drop_reason::rule_drop) == 2);
	CHECK(pl.policy().total(0).packets == 2);
	CHECK(pl.policy().total(1).packets == 5);
	CHECK(pl.worker().flows().size() == 2);
}

TEST_CASE("a file set of IPv6 prefixes")
{
	feed_file feed("2001:2:0:66::/64 ; SBL1\n");
	pipeline pl("set blocklist = file \"" + feed.path + "\"\n"
	            "drop in from $blocklist\n"
	            "allow in tcp to any port https\n");
	const u128 bad = pt::v6addr(0x2001000200000066ull, 5), good = pt::v6addr(0x2001000200000067ull, 5);
	const u128 s6 = pt::v6addr(0x2001000200000001ull, 0x10);
	CHECK(pl.send(outside, tcp6(bad, 40000, s6, 443, S, 10)).to_inside.empty());
	CHECK(pl.send(outside, tcp6(good, 40000, s6, 443, S, 10)).to_inside.size() == 1);
	CHECK(pl.drops(drop_reason::rule_drop) == 1);
}

TEST_CASE("a pushed rule set with a changed feed re-judges open flows from newly listed sources")
{
	feed_file feed("198.18.1.0/24\n");
	const std::string text = "set blocklist = file \"" + feed.path + "\"\n"
	                         "drop in from $blocklist\n"
	                         "allow in tcp to any port https\n";
	pipeline pl(text);
	REQUIRE(pl.send(outside, tcp4(clean, 40000, web, 443, S, 1)).to_inside.size() == 1);
	std::ofstream(feed.path) << "198.18.1.0/24\n198.18.2.0/24\n";
	pl.swap_rules(text);
	CHECK(pl.send(inside, tcp4(web, 443, clean, 40000, SA, 7, 2)).to_outside.empty());
	CHECK(pl.drops(drop_reason::revalidated) == 1);
}

namespace {

// A DNS answer from port 53 for `name`: A records (address, TTL), owners compressed to the question.
bytes dns_answer(const std::string& name, std::vector<std::pair<uint32_t, uint32_t>> records)
{
	bytes b = {0x12, 0x34, 0x81, 0x80, 0, 1, 0, uint8_t(records.size()), 0, 0, 0, 0};
	for (size_t start = 0; start <= name.size();) {
		const size_t dot = std::min(name.find('.', start), name.size());
		b.push_back(uint8_t(dot - start));
		b.insert(b.end(), name.begin() + long(start), name.begin() + long(dot));
		start = dot + 1;
	}
	b.insert(b.end(), {0, 0, 1, 0, 1});
	for (const auto& [addr, ttl] : records)
		b.insert(b.end(), {0xC0, 0x0C, 0, 1, 0, 1, uint8_t(ttl >> 24), uint8_t(ttl >> 16), uint8_t(ttl >> 8), uint8_t(ttl),
		                   0, 4, uint8_t(addr >> 24), uint8_t(addr >> 16), uint8_t(addr >> 8), uint8_t(addr)});
	return b;
}

} // namespace

TEST_CASE("a dns set takes the addresses of answers for its names, and only from a flow's replies")
{
	constexpr uint32_t resolver = 0xC6120035, cdn_edge = 0xC6120063, other = 0xC6120064;  // 198.18.0.53/.99/.100
	pipeline pl("set cdn = dns \"*.cdn.example\"\n"
	            "default in drop\ndefault out drop\n"
	            "allow out udp to any port dns\n"
	            "allow out tcp to $cdn port https\n");
	// Nothing in the set yet: the connection is refused.
	CHECK(pl.send(inside, tcp4(web, 40000, cdn_edge, 443, S, 1)).to_outside.empty());
	// The query goes out; its answer for a followed name queues the address (TTL 30: kept a minute).
	CHECK(pl.send(inside, udp4(web, 5353, resolver, 53, bytes(20, 0))).to_outside.size() == 1);
	CHECK(pl.send(outside, udp4(resolver, 53, web, 5353, dns_answer("www.CDN.example", {{cdn_edge, 30}}))).to_inside.size() == 1);
	// An answer for another name, with another address, queues nothing: it speaks for its own name only.
	CHECK(pl.send(outside, udp4(resolver, 53, web, 5353, dns_answer("www.bank.example", {{other, 300}}))).to_inside.size() == 1);
	// A packet to port 53 (the queries' direction) is not looked at, whatever it holds.
	CHECK(pl.send(inside, udp4(web, 5354, resolver, 53, dns_answer("x.cdn.example", {{other, 300}}))).to_outside.size() == 1);
	CHECK(pl.worker().counters().set_adds == 1);
	std::vector<dataplane::set_add_record> queued;
	pl.worker().set_adds().drain([&](const dataplane::set_add_record& r) { queued.push_back(r); }, 100);
	REQUIRE(queued.size() == 1);
	CHECK(queued[0].addr == cdn_edge);
	CHECK(queued[0].v6 == 0);
	CHECK(queued[0].set == 0);
	CHECK(queued[0].timeout_s == 60);
	CHECK(queued[0].generation == pl.policy().generation);
	// What the control thread does with it; then the connection to the CDN passes, the other not.
	auto old = pl.policy().sets[0]->add_batch({{false, cdn_edge, cdn_edge, 0, 0}});
	CHECK(pl.send(inside, tcp4(web, 40001, cdn_edge, 443, S, 1)).to_outside.size() == 1);
	CHECK(pl.send(inside, tcp4(web, 40002, other, 443, S, 1)).to_outside.empty());
}

TEST_CASE("an add-to rule queues the scanner's address for its set, once per deciding packet")
{
	pipeline pl("set scanners = dynamic size 100\n"
	            "drop in tcp to any port { telnet, 3389, 31337 } add-to $scanners timeout 1h\n"
	            "drop in from $scanners\n"
	            "allow in tcp to any port ssh\n");
	CHECK(pl.send(outside, tcp4(listed, 40000, web, 23, S, 1)).to_inside.empty());
	CHECK(pl.send(outside, tcp4(listed, 40001, web, 3389, S, 1)).to_inside.empty());
	CHECK(pl.send(outside, tcp4(clean, 40000, web, 22, S, 1)).to_inside.size() == 1);  // decided by a rule without add-to
	CHECK(pl.worker().counters().set_adds == 2);
	std::vector<dataplane::set_add_record> queued;
	pl.worker().set_adds().drain([&](const dataplane::set_add_record& r) { queued.push_back(r); }, 100);
	REQUIRE(queued.size() == 2);
	CHECK(queued[0].addr == listed);
	CHECK(queued[0].v6 == 0);
	CHECK(queued[0].set == 0);
	CHECK(queued[0].timeout_s == 3600);
	CHECK(queued[0].generation == pl.policy().generation);
	// What the control thread does with them (control/runtime_sets.cc); then the scanner's ssh is refused.
	sets::live_set& scanners = *pl.policy().sets[0];
	auto old = scanners.add_batch({{false, listed, listed, 0, 0}});
	CHECK(pl.send(outside, tcp4(listed, 40002, web, 22, S, 1)).to_inside.empty());
	CHECK(pl.send(outside, tcp4(clean, 40001, web, 22, S, 1)).to_inside.size() == 1);
	CHECK(pl.policy().total(1).packets == 1);
	// A scanner already in the set is not queued again, and a stray ACK queues nothing.
	CHECK(pl.send(outside, tcp4(listed, 40003, web, 23, S, 1)).to_inside.empty());
	CHECK(pl.send(outside, tcp4(clean, 40004, web, 23, A, 1, 1)).to_inside.empty());
	CHECK(pl.worker().counters().set_adds == 2);
}
