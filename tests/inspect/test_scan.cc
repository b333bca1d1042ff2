// The scan path on crafted flows: which rule decides, when, and what stops inspection.
#include <random>

#include "helpers.h"

using namespace portcullis;
using namespace portcullis::inspect;
using namespace portcullis::inspect::test;

namespace {

constexpr uint32_t isn_c = 1000, isn_s = 5000;
constexpr uint8_t syn = 0x02, syn_ack = 0x12, psh_ack = 0x18, fin_ack = 0x11;

// SYN and SYN-ACK: the flow is open and both sequence numbers known.
result handshake(harness& h, uint32_t flow, uint16_t port = 80)
{
	const result r = h.open(flow, tcp_frame(true, isn_c, "", syn, port));
	h.packet(flow, tcp_frame(false, isn_s, "", syn_ack, port), false);
	return r;
}

const char* const evil_rules = "drop out tcp to any port 80 content \"evil\"\nallow out tcp\n";

} // namespace

TEST_CASE("a pattern inside one packet decides the flow on that packet", "[inspect]")
{
	harness h(evil_rules);
	REQUIRE(handshake(h, 1).st == state::inspecting);
	auto r = h.packet(1, tcp_frame(true, isn_c + 1, "GET /?q=nothing HTTP/1.1\r\n"));
	CHECK(r.st == state::inspecting);
	r = h.packet(1, tcp_frame(true, isn_c + 27, "xx evil xx"));
	CHECK(r.st == state::matched);
	CHECK(r.rule == 0);
	CHECK(r.decided_now);
	r = h.packet(1, tcp_frame(true, isn_c + 37, "more"));
	CHECK(r.st == state::matched);
	CHECK_FALSE(r.decided_now);
	CHECK(h.stats().decided == 1);
	CHECK(h.s->free_streams() == h.s->config().max_streams);  // released on decision
}

TEST_CASE("a pattern split across TCP segments (stream mode)", "[inspect]")
{
	harness h(evil_rules);
	SECTION("two segments")
	{
		handshake(h, 1);
		CHECK(h.packet(1, tcp_frame(true, isn_c + 1, "....ev")).st == state::inspecting);
		CHECK(h.packet(1, tcp_frame(true, isn_c + 7, "il....")).st == state::matched);
	}
	SECTION("three segments")
	{
		handshake(h, 1);
		CHECK(h.packet(1, tcp_frame(true, isn_c + 1, "e")).st == state::inspecting);
		CHECK(h.packet(1, tcp_frame(true, isn_c + 2, "vi")).st == state::inspecting);
		CHECK(h.packet(1, tcp_frame(true, isn_c + 4, "l")).st == state::matched);
	}
	SECTION("the pattern's halves in different directions do not make a match")
	{
		handshake(h, 1);
		CHECK(h.packet(1, tcp_frame(true, isn_c + 1, "ev")).st == state::inspecting);
		CHECK(h.packet(1, tcp_frame(false, isn_s + 1, "il"), false).st == state::inspecting);
	}
	SECTION("the responder's bytes are inspected too")
	{
		handshake(h, 1);
		CHECK(h.packet(1, tcp_frame(false, isn_s + 1, "an evil reply"), false).st == state::matched);
	}
}

TEST_CASE("bytes beyond the budget are not inspected", "[inspect]")
{
	scan_config cfg;
	cfg.budget = 64;
	harness h(evil_rules, cfg);
	handshake(h, 1);
	CHECK(h.packet(1, tcp_frame(true, isn_c + 1, std::string(60, '.') + "evil")).st == state::matched);  // ends at 64

	handshake(h, 2);
	CHECK(h.packet(2, tcp_frame(true, isn_c + 1, std::string(61, '.') + "evil")).st == state::inspecting);
	CHECK(h.stats().budget_spent == 2);  // flow 1's match used its budget exactly too
	CHECK(h.packet(2, tcp_frame(true, isn_c + 66, "evil")).st == state::inspecting);  // direction stopped
	// The other direction still has its budget; once it is spent too, the payload-free verdict stands.
	CHECK(h.packet(2, tcp_frame(false, isn_s + 1, std::string(64, '.')), false).st == state::finished);
	CHECK(h.s->free_streams() == cfg.max_streams);
}

TEST_CASE("an out-of-order segment ends inspection of its direction", "[inspect]")
{
	harness h(evil_rules);
	handshake(h, 1);
	CHECK(h.packet(1, tcp_frame(true, isn_c + 5, "il")).st == state::inspecting);  // a gap: ev is missing
	CHECK(h.stats().out_of_order == 1);
	CHECK(h.packet(1, tcp_frame(true, isn_c + 1, "evil")).st == state::inspecting);  // stopped: not scanned
	CHECK(h.stats().packets_scanned == 0);

	SECTION("a partial overlap counts the same")
	{
		handshake(h, 2);
		h.packet(2, tcp_frame(true, isn_c + 1, "abcd"));
		CHECK(h.packet(2, tcp_frame(true, isn_c + 3, "cdevil")).st == state::inspecting);
		CHECK(h.stats().out_of_order == 2);
	}
	SECTION("an exact retransmission is skipped, not an error")
	{
		handshake(h, 3);
		h.packet(3, tcp_frame(true, isn_c + 1, "abcdev"));
		CHECK(h.packet(3, tcp_frame(true, isn_c + 1, "abcdev")).st == state::inspecting);
		CHECK(h.stats().retransmits == 1);
		CHECK(h.packet(3, tcp_frame(true, isn_c + 7, "il")).st == state::matched);
	}
}

TEST_CASE("FIN ends a direction and reports end-anchored matches", "[inspect]")
{
	harness h("drop tcp regex \"/bye$/\"\nallow tcp\n");
	handshake(h, 1);
	CHECK(h.packet(1, tcp_frame(true, isn_c + 1, "say bye")).st == state::inspecting);
	CHECK(h.packet(1, tcp_frame(true, isn_c + 8, "", fin_ack)).st == state::matched);
	CHECK(h.stats().stream_ended == 1);
}

TEST_CASE("candidates: lowest index wins, the payload-free rule bounds them, tuples must match", "[inspect]")
{
	harness h("drop tcp to any port 81 content \"evil\"\n"   // 0: other port, never a candidate here
	          "reject tcp content \"ev\"\n"                  // 1
	          "drop tcp content \"evil\"\n"                  // 2
	          "allow tcp to any port 80\n"                   // 3: the payload-free verdict
	          "drop tcp content \"xyz\"\n");                 // 4: after it, never a candidate
	handshake(h, 1);
	CHECK(h.fs.slot(1).first == 1);
	CHECK(h.fs.slot(1).limit == 3);
	auto r = h.packet(1, tcp_frame(true, isn_c + 1, "xyz evil"));
	CHECK(r.st == state::matched);
	CHECK(r.rule == 1);  // 1 and 2 complete in the same packet

	// A flow with no payload rule before its payload-free match is not inspected at all.
	harness h2("allow tcp to any port 80\ndrop tcp content \"evil\"\n");
	CHECK(h2.open(1, tcp_frame(true, isn_c, "", syn)).st == state::idle);
	CHECK(h2.stats().flows_inspected == 0);
}

TEST_CASE("several conditions on a rule must all hold, possibly in different packets", "[inspect]")
{
	harness h("drop tcp content \"USER\" content \"PASS\"\nallow tcp\n");
	handshake(h, 1);
	CHECK(h.packet(1, tcp_frame(true, isn_c + 1, "USER bob\r\n")).st == state::inspecting);
	CHECK(h.fs.slot(1).partial_bits[0] == 1);
	CHECK(h.packet(1, tcp_frame(true, isn_c + 11, "PASS x\r\n")).st == state::matched);
}

TEST_CASE("nocase, offset and depth", "[inspect]")
{
	harness h("drop tcp content \"EVIL\" nocase\nreject tcp content \"HEAD\" offset 2 depth 6\nallow tcp\n");
	handshake(h, 1);
	CHECK(h.packet(1, tcp_frame(true, isn_c + 1, "an eViL one")).rule == 0);
	handshake(h, 2);
	CHECK(h.packet(2, tcp_frame(true, isn_c + 1, "..HEAD")).rule == 1);  // starts at offset 2
	handshake(h, 3);
	CHECK(h.packet(3, tcp_frame(true, isn_c + 1, ".HEAD...")).st == state::inspecting);  // starts before 2
	handshake(h, 4);
	CHECK(h.packet(4, tcp_frame(true, isn_c + 1, "....HEAD")).rule == 1);  // ends at offset + depth = 8
	handshake(h, 5);
	CHECK(h.packet(5, tcp_frame(true, isn_c + 1, ".....HEAD")).st == state::inspecting);  // ends after 8
	harness c("drop tcp content \"EVIL\"\nallow tcp\n");
	handshake(c, 1);
	CHECK(c.packet(1, tcp_frame(true, isn_c + 1, "an evil one")).st == state::inspecting);
}

TEST_CASE("UDP datagrams: block mode, offsets per datagram", "[inspect]")
{
	harness h("drop udp content \"\\x01\\x02\" depth 2\nallow udp\n");
	CHECK(h.open(1, udp_frame(true, "\x05\x01\x02")).st == state::inspecting);
	CHECK(h.packet(1, udp_frame(true, "\x01\x02 later")).st == state::matched);
}

TEST_CASE("an app rule", "[inspect]")
{
	harness h("drop tcp app bittorrent\nallow tcp app ssh\nallow tcp\n");
	handshake(h, 1, 6881);
	auto r = h.packet(1, tcp_frame(true, isn_c + 1, std::string("\x13" "BitTorrent protocol\0\0\0\0\0\0\0\0", 28), psh_ack, 6881));
	CHECK(r.rule == 0);
	handshake(h, 2, 22);
	CHECK(h.packet(2, tcp_frame(false, isn_s + 1, "SSH-2.0-OpenSSH_9.2p1\r\n", psh_ack, 22), false).rule == 1);
	harness u("drop udp app bittorrent\nallow udp\n");
	CHECK(u.open(1, udp_frame(true, "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe", 6881)).rule == 0);
}

TEST_CASE("the stream pool bounds the flows inspected at once", "[inspect]")
{
	scan_config cfg;
	cfg.max_streams = 1;
	harness h(evil_rules, cfg);
	handshake(h, 1);
	handshake(h, 2);
	h.packet(1, tcp_frame(true, isn_c + 1, "abc"));
	CHECK(h.packet(2, tcp_frame(true, isn_c + 1, "evil")).st == state::inspecting);
	CHECK(h.stats().no_stream == 1);
	h.fs.end(*h.s, 1);
	CHECK(h.s->free_streams() == 1);
	handshake(h, 3);  // a new flow in a slot whose previous flow never called end() gets its stream back
	h.packet(3, tcp_frame(true, isn_c + 1, "abc"));
	handshake(h, 3);
	CHECK(h.s->free_streams() == 1);
}

TEST_CASE("a flow begun under another database stops inspecting", "[inspect]")
{
	harness a(evil_rules), b(evil_rules);
	handshake(a, 1);
	a.packet(1, tcp_frame(true, isn_c + 1, "ev"));
	// The worker swapped to b's database but the flow's slot still holds a's streams.
	const packet::parsed p = packet::test::parse_bytes(tcp_frame(true, isn_c + 3, "il"));
	const auto frame = tcp_frame(true, isn_c + 3, "il");
	CHECK(a.fs.scan(*b.s, 1, p, frame.data(), true).st == state::finished);
	CHECK(a.fs.stats().ruleset_changed == 1);
}

TEST_CASE("the Hyperscan path agrees with a byte-by-byte matcher", "[inspect][reference]")
{
	std::mt19937 rng(7);
	const std::string alphabet = "abcd";
	auto word = [&](size_t n) {
		std::string s;
		for (size_t i = 0; i < n; ++i)
			s += alphabet[rng() % alphabet.size()];
		return s;
	};
	for (int round = 0; round < 40; ++round) {
		std::vector<std::string> pats;
		std::string text;
		for (int i = 0; i < 6; ++i) {
			pats.push_back(word(3 + rng() % 4));
			text += "drop tcp content \"" + pats.back() + "\"\n";
		}
		text += "allow tcp\n";
		scan_config cfg;
		cfg.budget = 200;
		harness h(text, cfg);
		for (uint32_t flow = 1; flow <= 8; ++flow) {
			const std::string payload = word(10 + rng() % 300);
			// Reference: the earliest segment end at which some pattern is complete within the budget
			// decides, and the lowest such rule wins.
			std::vector<size_t> cuts{0};
			while (cuts.back() < payload.size())
				cuts.push_back(std::min(payload.size(), cuts.back() + 1 + rng() % 40));
			uint32_t expect = no_rule;
			for (size_t k = 1; k < cuts.size() && expect == no_rule; ++k) {
				const std::string seen = payload.substr(0, std::min<size_t>(cuts[k], cfg.budget));
				for (uint32_t i = 0; i < pats.size() && expect == no_rule; ++i)
					if (seen.find(pats[i]) != std::string::npos)
						expect = i;
			}
			handshake(h, flow);
			result r;
			for (size_t k = 1; k < cuts.size(); ++k) {
				r = h.packet(flow, tcp_frame(true, isn_c + 1 + uint32_t(cuts[k - 1]),
				                             payload.substr(cuts[k - 1], cuts[k] - cuts[k - 1])));
				if (r.st != state::inspecting)
					break;
			}
			INFO("payload " << payload);
			CHECK(r.rule == expect);
		}
	}
}
