// worker::process: one burst through parse, flow lookup, conntrack, classification of new flows,
// payload inspection and the verdicts (the stages of stage_clock.h); the worker's construction and the
// revalidation of flows after a rule swap.
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <algorithm>
#include <cstring>

#include "dataplane/dataplane.h"
#include "dataplane/judge.h"
#include "flow/conntrack.h"
#include "inspect/inspect.h"
#include "inspect/names.h"
#include "memory/prefetch.h"
#include "memory/zero.h"

namespace portcullis::dataplane {
namespace {

// An allowed packet leaves by its direction's port (rx_queue_map::tx_port); a reject's answer, as the SYN
// proxy's below, goes back out the port its packet came in on.
constexpr uint8_t v_allow = uint8_t(verdict::allow), v_drop = uint8_t(verdict::drop), v_reject = uint8_t(verdict::reject);
// The SYN proxy's own answers (a cookie SYN-ACK, the ACK to a server): sent back out the port the packet
// came in on, and counted with the allowed packets (their rules allowed them).
constexpr uint8_t v_answer = 3;
// A client's segment the SYN proxy keeps until its server answers (worker::hold): neither sent nor freed
// now, and counted when it goes or is dropped (worker::count_held).
constexpr uint8_t v_held = 4;

// Where a miss's classifier key sits: list = direction * 2 + (IPv6 ? 1 : 0).
struct miss_ref {
	uint8_t list;
	uint8_t pos;
};

// What conntrack reads of a packet. Only a SYN's options are looked at (for its window scale); the
// parser keeps its TCP header, options included, in the first segment.
flow::segment segment_of(const packet::parsed& p, const rte_mbuf* m)
{
	if (p.proto != 6)
		return {p.proto, 0, 0, 0};
	const uint8_t scale = (p.tcp_flags & flow::tcp_flag::syn)
	                          ? packet::syn_window_scale(rte_pktmbuf_mtod(m, const uint8_t*) + p.l4_offset,
	                                                     uint32_t(p.payload_offset - p.l4_offset))
	                          : packet::no_window_scale;
	return {p.proto, p.tcp_flags, p.tcp_seq, p.tcp_ack, p.payload_length, p.tcp_window, scale, p.is_fragment()};
}

// The flow key of a packet that is not an ICMP error, written into k; returns its hash_key. IPv4 without
// 128-bit compares and hashed from registers: the common case.
inline uint64_t key_of(const packet::parsed& p, flow::flow_key& k, bool& reversed)
{
	const uint16_t sport = p.is_icmp() ? (p.is_icmp_echo() ? p.icmp_echo_id : uint16_t(0)) : p.sport;
	const uint16_t dport = p.is_icmp() ? sport : p.dport;
	if (p.family == 4)
		return flow::make_key4(k, p.proto, p.src.v4, p.dst.v4, sport, dport, reversed);
	k = flow::make_key(p.family, p.proto, p.src.v6, p.dst.v6, sport, dport, reversed);
	return flow::hash_key(k);
}

// The addresses of a DNS answer (UDP from port 53 on a known flow) for names that a `dns` set follows,
// queued for the control thread like add-to's, with the record's TTL as their timeout (at least a
// minute, so that a client connecting just after a short TTL ran out is not refused; at most a day).
// Only the question's name decides which sets: an answer cannot put addresses in a set for another name.
uint32_t snoop_dns(const compiled_policy& pol, const packet::parsed& p, const rte_mbuf* mb,
                   spsc_ring<set_add_record>& adds, uint64_t& lost)
{
	if (p.payload_offset >= mb->data_len)
		return 0;
	const uint8_t* payload = rte_pktmbuf_mtod(mb, const uint8_t*) + p.payload_offset;
	const size_t length = std::min<size_t>(p.payload_length, mb->data_len - p.payload_offset);
	char qname[inspect::max_name_bytes];
	inspect::dns_address found[16];
	size_t count = 0;
	const size_t qlen = inspect::dns_response(payload, length, qname, sizeof qname, found, 16, &count);
	if (qlen == 0 || count == 0)
		return 0;
	const std::string_view name(qname, qlen);
	uint32_t queued = 0;
	for (const auto& watch : pol.dns_sets) {
		if (std::none_of(watch.patterns.begin(), watch.patterns.end(),
		                 [&](const std::string& pattern) { return rules::name_matches(pattern, name); }))
			continue;
		for (size_t k = 0; k < count; ++k) {
			const inspect::dns_address& a = found[k];
			u128 addr = 0;
			for (size_t b = 0; b < (a.family == 4 ? 4u : 16u); ++b)
				addr = addr << 8 | a.addr[b];
			const uint32_t timeout = std::clamp<uint32_t>(a.ttl, 60, 86400);
			if (adds.push({pol.generation, addr, watch.set, timeout, uint8_t(a.family == 6)}))
				++queued;
			else
				++lost;
		}
	}
	return queued;
}

// A source address no host can have: this network (0/8), loopback (127/8), multicast and reserved
// (224/4, 240/4, the broadcast address among them); IPv6 unspecified, loopback and multicast. A DHCP
// client's request (0.0.0.0:68 to port 67) is the one packet 0.0.0.0 may send: a bridge must pass it.
// (`ipv4`: the caller knows the packet is IPv4, and the family is not tested.)
template <bool ipv4>
inline bool martian_source(const packet::parsed& p)
{
	if (ipv4 || p.family == 4) {
		const uint32_t top = p.src.v4 >> 24;
		if (p.src.v4 == 0 && p.proto == 17 && p.sport == 68 && p.dport == 67)
			return false;
		return top == 0 || top == 127 || top >= 224;
	}
	return p.src.v6 <= 1 || uint32_t(p.src.v6 >> 120) == 0xff;
}

// A group (multicast or broadcast) source MAC: no interface sends from one. The frame's first line is
// in the cache: the parser just read it.
inline bool group_source_mac(const rte_mbuf* m)
{
	return rte_pktmbuf_mtod(m, const uint8_t*)[6] & 1;
}

// Anti-spoofing, before any rule, both directions: a source no host can have, and the land attack.
template <bool ipv4>
inline bool spoofed(const packet::parsed& p, bool drop_martians, bool drop_land, drop_reason& why)
{
	if (drop_martians && martian_source<ipv4>(p)) [[unlikely]] {
		why = drop_reason::martian_source;
		return true;
	}
	if (drop_land && (ipv4 || p.family == 4 ? p.src.v4 == p.dst.v4 : p.src.v6 == p.dst.v6)) [[unlikely]] {
		why = drop_reason::land;
		return true;
	}
	return false;
}

// Does a packet of this known flow fit its rule's `limit ... packets`? (True when the rule has none.)
bool admit_packet(compiled_policy& pol, const flow::flow_entry& e, uint64_t now)
{
	const uint32_t slot = e.rule_id < pol.limiter_of.size() ? pol.limiter_of[e.rule_id] : compiled_policy::no_limit;
	if (slot == compiled_policy::no_limit || !pol.limiters[slot].packets)
		return true;
	rule_limiter& lim = pol.limiters[slot];
	return lim.admit(now, lim.source_hash(e.key.family == 6, e.opener_is_b ? e.key.b() : e.key.a()));
}

classify::key_v4 key4_of(const packet::parsed& p)
{
	classify::key_v4 k{};
	k.src = p.src.v4;
	k.dst = p.dst.v4;
	k.sport = p.sport;
	k.dport = p.dport;
	k.proto = p.proto;
	k.tcp_flags = p.tcp_flags;
	return k;
}

classify::key_v6 key6_of(const packet::parsed& p)
{
	classify::key_v6 k{};
	k.src = p.src.v6;
	k.dst = p.dst.v6;
	k.sport = p.sport;
	k.dport = p.dport;
	k.proto = p.proto;
	k.tcp_flags = p.tcp_flags;
	return k;
}

} // namespace

worker::worker(const worker_config& config, const std::atomic<compiled_policy*>& policy, rte_rcu_qsbr* rcu)
	: config_(config), policy_(policy), rcu_(rcu), table_(config.flows),
	  fragments_(config.fragment_entries, uint64_t(config.fragment_seconds) * config.flows.tsc_hz),
	  streams_(table_.capacity()),
	  log_(1024, config.log_rate, config.flows.tsc_hz), set_adds_(4096),
	  installs_(config.sync_installs ? 8192 : 1)
{
	if (config_.burst == 0 || config_.burst > max_burst)
		config_.burst = max_burst;
	inside4_.count = uint32_t(config_.inside4.size());
	if (inside4_.count <= inside_ranges4::max)
		for (uint32_t k = 0; k < inside4_.count; ++k) {
			inside4_.lo[k] = config_.inside4[k].lo;
			inside4_.span[k] = config_.inside4[k].hi - config_.inside4[k].lo;
		}
	if (config_.conns)
		table_.on_remove(&conn_counts::flow_removed, config_.conns);
	if (config_.syncookies.mode != syncookie_mode::never) {
		proxy_.resize(size_t(table_.capacity()) + 1);
		cookie_key_ = flow::cookie_secret::random();
		cookies_on_ = config_.syncookies.mode == syncookie_mode::always;
		counters_.syncookies_active = cookies_on_;
	}
}

worker::~worker()
{
	for (held_packet& h : held_)
		if (h.m)
			rte_pktmbuf_free(h.m);
	for (deferred_packet& d : deferred_)
		if (d.m)
			rte_pktmbuf_free(d.m);
}

void worker::drop_standby(rte_mbuf** pkts, uint16_t n, const rx_queue_map& q)
{
	uint64_t bytes = 0;
	for (uint16_t i = 0; i < n; ++i)
		bytes += pkts[i]->pkt_len;
	counters_.rx_packets[q.port % max_ports] += n;
	counters_.rx_bytes[q.port % max_ports] += bytes;
	counters_.drops[size_t(drop_reason::standby)] += n;
	rte_pktmbuf_free_bulk(pkts, n);
}

void worker::install_synced(uint64_t now)
{
	installs_.drain(
	    [&](const flow::flow_record& r) {
		    const flow::install_result result = flow::install(table_, r, now);
		    switch (result) {
		    case flow::install_result::inserted: counters_.sync_installed++; break;
		    case flow::install_result::updated: counters_.sync_updated++; break;
		    case flow::install_result::unchanged: break;
		    case flow::install_result::refused: counters_.sync_refused++; break;
		    }
		    if (deferred_count_ && result != flow::install_result::refused) {
			    const uint64_t h = flow::hash_key(r.key);
			    for (deferred_packet& d : deferred_)
				    d.resolved = d.resolved || (d.m && d.key_hash == h);
		    }
	    },
	    256);
	if (deferred_count_)
		redeliver(now);
}

bool worker::defer(rte_mbuf* m, uint64_t key_hash, const rx_queue_map& q, uint64_t now)
{
	if (redelivering_)
		return false;
	if (deferred_count_ == deferred_slots) {
		counters_.sync_defer_full++;
		return false;
	}
	// One segment a flow: the one its handshake waits on. More of the same flow would only take the
	// slots of others' (64 ACKs after one SYN).
	for (const deferred_packet& d : deferred_)
		if (d.m && d.key_hash == key_hash)
			return false;
	for (deferred_packet& d : deferred_)
		if (!d.m) {
			d = {m, key_hash, now + uint64_t(config_.sync_defer_ms) * (config_.flows.tsc_hz / 1000), &q,
			     deferred_arrivals_++, false};
			++deferred_count_;
			counters_.sync_deferred++;
			return true;
		}
	return false;
}

void worker::redeliver(uint64_t now)
{
	// In the order they came: a flow's segments must not pass one another.
	uint8_t due[deferred_slots];
	uint32_t ndue = 0;
	for (uint32_t k = 0; k < deferred_slots; ++k)
		if (deferred_[k].m && (deferred_[k].resolved || now >= deferred_[k].deadline))
			due[ndue++] = uint8_t(k);
	std::sort(due, due + ndue, [&](uint8_t a, uint8_t b) { return deferred_[a].order < deferred_[b].order; });
	redelivering_ = true;
	for (uint32_t x = 0; x < ndue; ++x) {
		deferred_packet& d = deferred_[due[x]];
		rte_mbuf* m = d.m;
		const rx_queue_map& q = *d.q;
		(d.resolved ? counters_.sync_deferred_resolved : counters_.sync_deferred_expired)++;
		d.m = nullptr;
		--deferred_count_;
		process(&m, 1, q);
	}
	redelivering_ = false;
}

bool worker::hold(const flow::flow_entry& e, rte_mbuf* m, uint64_t now)
{
	const uint32_t index = table_.index_of(&e);
	const uint64_t key_hash = flow::hash_key(e.key);
	held_packet* free_slot = nullptr;
	for (held_packet& h : held_) {
		if (h.m && h.index == index && h.generation == e.generation && h.key_hash == key_hash)
			return false;  // one segment a flow: the first; the client resends the rest
		if (!h.m && !free_slot)
			free_slot = &h;
	}
	if (!free_slot)
		return false;
	*free_slot = {m, key_hash, index, e.generation, uint8_t(e.opener_direction), now};
	++held_count_;
	counters_.synproxy_held++;
	return true;
}

// A held segment is counted when it goes (allowed) or is dropped, not when it is held.
void worker::count_held(const held_packet& h, uint8_t verdict)
{
	counters_.packets[h.direction][verdict]++;
	counters_.bytes[h.direction][verdict] += h.m->pkt_len;
	if (verdict == v_drop)
		counters_.drops[size_t(drop_reason::synproxy_pending)]++;
}

worker::held_packet worker::take_held(const flow::flow_entry& e)
{
	if (held_count_ == 0)
		return {};
	const uint32_t index = table_.index_of(&e);
	const uint64_t key_hash = flow::hash_key(e.key);
	for (held_packet& h : held_)
		if (h.m && h.index == index && h.generation == e.generation && h.key_hash == key_hash) {
			const held_packet taken = h;
			h.m = nullptr;
			--held_count_;
			return taken;
		}
	return {};
}

// Segments whose server never answered (or whose flow went away) are dropped after three seconds.
void worker::expire_held(uint64_t now)
{
	for (held_packet& h : held_)
		if (h.m && now - h.since > 3 * config_.flows.tsc_hz) {
			count_held(h, v_drop);
			rte_pktmbuf_free(h.m);
			h.m = nullptr;
			--held_count_;
		}
}

void worker::update_syncookies(uint64_t now)
{
	const uint64_t tick = config_.flows.tsc_hz / 10;
	const syncookie_config& c = config_.syncookies;
	// Pressure: inbound SYNs past the rate in the last tick, half-open flows past their share of the table
	// at the last expiry sweep, or half-open flows evicted to make room since the last tick.
	const uint64_t evicted = table_.counters().evicted_embryonic.load(std::memory_order_relaxed);
	const bool pressed = uint64_t(tick_syns_) * 10 > c.rate ||
	                     double(table_.half_open()) > c.half_open * double(table_.capacity()) ||
	                     evicted != evicted_at_tick_;
	evicted_at_tick_ = evicted;
	if (pressed) {
		cookies_on_ = true;
		cookies_hold_until_ = now + config_.flows.tsc_hz;
	} else if (now >= cookies_hold_until_) {
		cookies_on_ = false;
	}
	counters_.syncookies_active = cookies_on_;
	tick_syns_ = 0;
	cookie_tick_end_ = now + tick;
}

int worker::direction_of(const rx_queue_map& q, const packet::parsed& p) const
{
	if (q.direction >= 0)
		return q.direction;
	if (p.family == 4)
		return contains(config_.inside4, p.src.v4) ? 1 : 0;
	if (p.family == 6)
		return contains(config_.inside6, p.src.v6) ? 1 : 0;
	return 0;
}

bool worker::revalidate(const compiled_policy& pol, flow::flow_entry& e, uint32_t stamp, uint32_t now_stamp)
{
	const uint32_t rule = judge_flow(pol, e);
	if (verdict_of(pol, e, rule) != rules::action::allow) {
		// Let the control thread reap it at its next scan; until then every packet re-checks and drops.
		// From now, not from the flow's own stamp: its next packets mark it again, and must not push the
		// stamp round past the point where it looks fresh.
		__atomic_store_n(&e.last_seen, flow::flow_table::stale_stamp(now_stamp), __ATOMIC_RELAXED);
		return false;
	}
	e.rule_id = rule;
	e.ruleset_generation = stamp;
	return true;
}

// A packet of a proxied flow whose server has not answered the replayed SYN (synproxy.h): the client's
// first data waits; the server's SYN-ACK is answered, and releases that data into `released`.
void worker::proxied_handshake(flow::flow_entry& e, rte_mbuf* m, const packet::parsed& p, bool from_client,
                               uint64_t now, uint32_t now_stamp, uint8_t& verdict,
                               rte_mbuf** released, uint16_t& nreleased)
{
	// Not a flow whose payload rules still scan: its data must reach the scanner in order, as it comes;
	// it is dropped and comes again.
	if (from_client && p.payload_length && !p.is_fragment() && !e.payload_watched && hold(e, m, now)) {
		verdict = v_held;
		return;
	}
	proxy_state& ps = proxy_[table_.index_of(&e)];
	const proxy_step step = server_handshake(e, ps, m, p, segment_of(p, m), from_client, config_.syncookies,
	                                         config_.tcp_window);
	if (step == proxy_step::drop) {
		counters_.drops[size_t(from_client ? drop_reason::synproxy_pending : drop_reason::conntrack_invalid)]++;
		return;
	}
	__atomic_store_n(&e.last_seen, now_stamp, __ATOMIC_RELAXED);
	if (step != proxy_step::answered) {
		verdict = v_allow;
		return;
	}
	counters_.synproxy_handshakes++;
	verdict = v_answer;
	// The client's segment that waited for this goes to the server right behind the ACK, in the server's
	// numbers, through conntrack as if it came now.
	if (const held_packet h = take_held(e); h.m) {
		rte_mbuf* held = h.m;
		packet::parsed hp;
		packet::parse_first_segment(rte_pktmbuf_mtod(held, const uint8_t*), held->data_len, held->pkt_len, hp);
		flow::segment hs = segment_of(hp, held);
		to_server_numbers(hs, ps, true);
		if (hp.ok() && flow::track(e, hs, true, config_.tcp_window) == flow::ct_result::pass) {
			translate(held, hp, ps, true);
			released[nreleased++] = held;
			e.traffic[0].add(held->pkt_len);
			count_held(h, v_allow);
		} else {
			count_held(h, v_drop);
			rte_pktmbuf_free(held);
		}
	}
}

// A segment of an established proxied flow as conntrack must see it: in the server's numbers.
flow::segment worker::proxied_segment(const flow::flow_entry& e, const packet::parsed& p, const rte_mbuf* m,
                                      bool from_client) const
{
	flow::segment seg = segment_of(p, m);
	to_server_numbers(seg, proxy_[table_.index_of(&e)], from_client);
	return seg;
}

void worker::process(rte_mbuf** pkts, uint16_t n, const rx_queue_map& q)
{
	if (n > max_burst)
		n = max_burst;
	if (config_.forwarding && !config_.forwarding->load(std::memory_order_relaxed)) [[unlikely]] {
		drop_standby(pkts, n, q);
		return;
	}
	stage_clock clock(counters_.stage_tsc);
	const uint64_t now = rte_rdtsc();
	const uint32_t now_stamp = table_.stamp(now);
	compiled_policy* pol = policy_.load(std::memory_order_acquire);
	// The stamp flows judged in this burst carry, read before any rule's schedule is: a schedule edge
	// after this read leaves them with the older stamp, so they are judged again on their next packet.
	const uint32_t stamp = pol ? pol->judge_stamp.load(std::memory_order_acquire) : 0;
	if (config_.syncookies.mode == syncookie_mode::adaptive && now >= cookie_tick_end_) [[unlikely]]
		update_syncookies(now);
	if (held_count_) [[unlikely]]
		expire_held(now);
	const bool check_cookies = now < cookies_checked_until_;
	// Read once a burst: stores through uint8_t (verdicts, entry fields) may alias anything, and the
	// compiler would otherwise load these again for every packet.
	const bool drop_martians = config_.drop_martians, drop_land = config_.drop_land;
	const flow::window_mode tcp_window = config_.tcp_window;
	const bool inspects = pol && pol->inspects, limits_packets = pol && pol->limits_packets;
	const bool snoops_dns = pol && !pol->dns_sets.empty();
	rule_counter* const rule_row = pol ? &pol->counter(config_.index, 0) : nullptr;
	const inside_ranges4 inside4 = inside4_;
	const int port_direction = q.direction;

	packet::parsed parsed[max_burst];
	uint64_t fast_parsed = 0;  // bit i: parsed[i] is an IPv4 TCP/UDP packet the straight-line parser took
	packet::parse_burst(pkts, n, parsed, counters_.parse, {}, &fast_parsed);
	if (pol == nullptr) [[unlikely]]
		fast_parsed = 0;  // no rule set yet: the general way drops them
	clock.lap(stage::parse);

	uint8_t v[max_burst];
	std::memset(v, v_drop, sizeof v);  // whatever is not let through below
	uint8_t dir[max_burst];
	flow::flow_key keys[max_burst];
	uint64_t hashes[max_burst];
	bool reversed[max_burst];
	uint8_t which[max_burst];
	uint32_t m = 0;
	uint8_t later_fragments[max_burst];  // non-first fragments whose first had not passed when they were seen
	uint32_t nlater = 0;
	bool fragments_seen = false;  // a first fragment in this burst: remember() it once it is judged

	for (uint16_t i = 0; i < n; ++i) {
		const packet::parsed& p = parsed[i];
		dir[i] = direction_fast(port_direction, q, p, inside4);
		// The common case first, in one straight line: an IPv4 TCP or UDP packet that parsed, not a
		// fragment (so neither an ICMP error), as parse_burst's mask says without a look at the record,
		// with a rule set in place; the same checks as the general way below, less those that cannot apply.
		if ((fast_parsed >> i) & 1) [[likely]] {
			if (drop_martians && group_source_mac(pkts[i])) [[unlikely]] {
				counters_.drops[size_t(drop_reason::martian_mac)]++;
				continue;
			}
			if (drop_reason r; spoofed<true>(p, drop_martians, drop_land, r)) [[unlikely]] {
				counters_.drops[size_t(r)]++;
				continue;
			}
			if (p.proto == 6 && !flow::valid_tcp_flags(p.tcp_flags)) [[unlikely]] {
				counters_.drops[size_t(drop_reason::tcp_invalid_flags)]++;
				continue;
			}
			hashes[m] = flow::make_key4(keys[m], p.proto, p.src.v4, p.dst.v4, p.sport, p.dport, reversed[m]);
			table_.prefetch(hashes[m]);
			which[m] = uint8_t(i);
			++m;
			continue;
		}
		if (!p.ok()) {
			counters_.drops[size_t(drop_reason::malformed)]++;
			continue;
		}
		if (drop_martians && group_source_mac(pkts[i])) [[unlikely]] {
			counters_.drops[size_t(drop_reason::martian_mac)]++;
			continue;
		}
		if (p.kind == packet::packet_kind::arp) {
			v[i] = v_allow;
			continue;
		}
		if (p.kind == packet::packet_kind::other_l2) {
			if (config_.pass_other_l2)
				v[i] = v_allow;
			else
				counters_.drops[size_t(drop_reason::l2_other)]++;
			continue;
		}
		if (pol == nullptr) {
			counters_.drops[size_t(drop_reason::default_drop)]++;
			continue;
		}
		if (drop_reason r; spoofed<false>(p, drop_martians, drop_land, r)) [[unlikely]] {
			counters_.drops[size_t(r)]++;
			continue;
		}
		if (p.is_fragment()) [[unlikely]] {
			if (p.is_non_first_fragment()) {
				const auto verdict = fragments_.check(p, now);
				if (verdict == fragment_verdicts::verdict::allowed)
					v[i] = v_allow;
				else if (verdict == fragment_verdicts::verdict::no_first)
					later_fragments[nlater++] = uint8_t(i);  // its first may be in this burst: decided below
				else
					counters_.drops[size_t(drop_reason::fragment_overlap)]++;
				continue;
			}
			if (fragments_.first_overlaps(p, now)) {  // a first fragment sent again
				counters_.drops[size_t(drop_reason::fragment_overlap)]++;
				continue;
			}
			fragments_seen = true;
		}
		// Flag combinations no TCP stack sends (SYN+FIN, a NULL or Xmas scan), known flow or not.
		if (p.proto == 6 && !p.is_icmp_error() && !flow::valid_tcp_flags(p.tcp_flags)) [[unlikely]] {
			counters_.drops[size_t(drop_reason::tcp_invalid_flags)]++;
			continue;
		}
		// ICMP flows are keyed by the echo identifier on both sides (see flow_key.h) so that request and
		// reply meet; the parser gives (id, 0) for an echo, quoted or not.
		if (p.is_icmp_error()) {
			const packet::inner_tuple& t = p.inner;
			const bool icmp = t.proto == 1 || t.proto == 58;
			keys[m] = flow::make_key(t.family, t.proto, t.src.v6, t.dst.v6, t.sport, icmp ? t.sport : t.dport,
			                         reversed[m]);
			hashes[m] = flow::hash_key(keys[m]);
		} else {
			hashes[m] = key_of(p, keys[m], reversed[m]);
		}
		table_.prefetch(hashes[m]);
		which[m] = uint8_t(i);
		++m;
	}

	// The lookups' first half here: signatures compared, the first fetch_ahead entries' lines asked for.
	// Each key's entry is read in the known-flows loop below, which asks for the entry fetch_ahead keys
	// on as it comes to a key: the work on one known flow then overlaps the fetches of the next ones, and
	// no more lines are in flight at once than the core can track. Asking for all 64 lines of a 32-packet
	// burst at once stalled on the prefetches themselves (the fill buffers full) and then waited on the
	// entries with nothing to do. Alternating 20 ms windows in one process (paired medians of worker
	// cycles per packet, Xeon VM): established_64b (100K flows) 0.93-0.94 of the all-at-once cost with
	// 8-16 ahead, 1.02 with 4; imix_1m 0.97 with 12; replay_64b (10K flows, cached) and new_flows_64b
	// (all misses) unchanged.
	const flow::flow_entry* hints[max_burst];
	constexpr uint32_t fetch_ahead = 12;
	table_.start_lookups(hashes, m, hints, fetch_ahead);
	rte_mbuf* released[max_burst];  // held client segments their server's SYN-ACK lets go (to q.port)
	uint16_t nreleased = 0;
	clock.lap(stage::lookup);

	// Payload inspection of a known flow: scan while the flow is inspected; once a payload rule has
	// decided, its action holds for every later packet. False: drop this packet (rejects answered).
	auto payload_allows = [&](const compiled_policy& pl, flow::flow_entry& e, const packet::parsed& p, rte_mbuf* mb,
	                          bool from_opener, uint16_t i) {
		const uint32_t index = table_.index_of(&e);
		inspect::result r = streams_.status(index);
		if (r.st == inspect::state::inspecting)
			r = streams_.scan(*pl.inspect_scratch[config_.index], index, p, rte_pktmbuf_mtod(mb, const uint8_t*),
			                  from_opener);
		if (r.st != inspect::state::matched || r.rule >= pl.briefs.size())
			return true;
		if (r.decided_now) {
			e.rule_id = r.rule;
			counters_.payload_decided++;
		}
		const rules::action act = pl.briefs[r.rule].act;
		if (act == rules::action::allow)
			return true;
		counters_.drops[size_t(act == rules::action::drop ? drop_reason::rule_drop : drop_reason::rule_reject)]++;
		if (act == rules::action::reject && r.decided_now && config_.send_rejects && make_reject(mb, p)) {
			v[i] = v_reject;
		}
		return false;
	};

	// What every passed packet of a known flow records: its time, its side's traffic, its rule's hits.
	auto count_passed = [&](flow::flow_entry& e, uint16_t i, bool from_opener) __attribute__((always_inline)) {
		__atomic_store_n(&e.last_seen, now_stamp, __ATOMIC_RELAXED);
		const uint32_t side = from_opener ? 0 : 1;
		const uint32_t len = pkts[i]->pkt_len;
		e.traffic[side].add(len);
		counters_.reply_packets += side;
		if (e.rule_id != classify::no_match) {
			rule_counter& rc = rule_row[e.rule_id];
			rc.packets++;
			rc.bytes += len;
			rc.last_hit_tsc = now;
		}
		v[i] = v_allow;
	};

	// Passes (or not) a packet of a known flow; `j` indexes keys/reversed, the packet is which[j].
	// Inlined by force: GCC 12 kept it a function of its own, called once a known packet, whose every
	// capture was then a load through the closure (established_64b and replay_64b: 0.949-0.966 of the
	// worker cycles inlined, alternating 20 ms windows in one process, two runs each).
	auto pass_known = [&](uint32_t j, flow::flow_entry& e) __attribute__((always_inline)) {
		const uint16_t i = which[j];
		const packet::parsed& p = parsed[i];
		if (p.is_icmp_error()) {
			counters_.related_icmp++;
			v[i] = v_allow;
			// About a segment the server sent: the quote holds it in the client's numbers (translated).
			if (e.syn_proxied && e.state != flow::flow_state::tcp_syn_sent && reversed[j] != bool(e.opener_is_b)) [[unlikely]]
				translate_quoted(pkts[i], p, proxy_[table_.index_of(&e)]);
			return;
		}
		if (e.ruleset_generation != stamp && !revalidate(*pol, e, stamp, now_stamp)) {
			counters_.drops[size_t(drop_reason::revalidated)]++;
			return;
		}
		// A `limit ... packets` rule polices every packet of its flows, metered by the flow's opener.
		if (limits_packets && e.rule_id != classify::no_match && !admit_packet(*pol, e, now)) {
			rule_row[e.rule_id].over_limit++;
			counters_.drops[size_t(drop_reason::rate_limited)]++;
			return;
		}
		const bool from_opener = reversed[j] == bool(e.opener_is_b);
		const flow::flow_state before = e.state;
		const bool proxied = e.syn_proxied;
		if (proxied && e.state == flow::flow_state::tcp_syn_sent) [[unlikely]] {
			proxied_handshake(e, pkts[i], p, from_opener, now, now_stamp, v[i], released, nreleased);
			return;
		}
		const flow::ct_result ct = flow::track(
		    e, proxied ? proxied_segment(e, p, pkts[i], from_opener) : segment_of(p, pkts[i]), from_opener, tcp_window);
		if (ct != flow::ct_result::pass) [[unlikely]] {
			// Two actives: the state this segment needs may have been reached on the peer (its SYN-ACK
			// crossed there); in the handshake, wait for the peer's record of it.
			if (config_.sync_defer_ms &&
			    (before == flow::flow_state::tcp_syn_sent || before == flow::flow_state::tcp_syn_received) &&
			    defer(pkts[i], hashes[j], q, now)) {
				v[i] = v_held;
				return;
			}
			counters_.drops[size_t(ct == flow::ct_result::invalid ? drop_reason::conntrack_invalid
			                                                      : drop_reason::tcp_out_of_window)]++;
			return;
		}
		// Only flows that had payload candidates read their scan state: idle payload rules cost one byte
		// test per packet (bench-pipeline's payload_rules_idle case).
		if (inspects && e.payload_watched && !payload_allows(*pol, e, p, pkts[i], from_opener, i))
			return;
		if (flow::is_embryonic(e.state) && !flow::is_embryonic(before)) {
			table_.note_embryonic(&e);  // re-opened on the same tuple: a new connection, whose age starts now
			e.created = table_.created_stamp(now);
		}
		count_passed(e, i, from_opener);
		if (proxied) [[unlikely]] {
			const proxy_state& ps = proxy_[table_.index_of(&e)];
			// The server sent its SYN-ACK again (the proxy's ACK was lost): the proxy answers it again; the
			// client, established long since, is not asked.
			if (!from_opener && (p.tcp_flags & flow::tcp_flag::syn) && answer_synack_again(pkts[i], p, ps)) {
				v[i] = v_answer;
			} else {
				translate(pkts[i], p, ps, from_opener);
			}
		}
		if (snoops_dns && !from_opener && p.proto == 17 && p.sport == 53)
			counters_.set_adds += snoop_dns(*pol, p, pkts[i], set_adds_, counters_.set_adds_lost);
	};

	// pass_known's common case, on a way with no call: an IPv4 TCP segment of an established connection
	// under strict tracking, or a UDP datagram, of a flow judged by the current rules, not proxied, not
	// limited per packet, not inspected, not a DNS answer to snoop. Any other packet: false, and nothing
	// changed. (The calls on pass_known's rare ways made the compiler keep the loop's values on the
	// stack: a store and a load again for each of them on every packet.)
	auto pass_plain = [&](uint32_t j, flow::flow_entry& e) __attribute__((always_inline)) {
		const uint16_t i = which[j];
		const packet::parsed& p = parsed[i];
		if (!((fast_parsed >> i) & 1) || e.ruleset_generation != stamp || e.syn_proxied ||
		    (limits_packets && e.rule_id != classify::no_match) || (inspects && e.payload_watched))
			return false;
		const bool from_opener = reversed[j] == bool(e.opener_is_b);
		if (p.proto == 6) {
			if (!flow::is_plain_established(e, p.tcp_flags, tcp_window))
				return false;
			if (flow::track_plain(e, p.tcp_seq, p.tcp_ack, p.payload_length, p.tcp_window, p.tcp_flags,
			                      from_opener ? 0 : 1) != flow::ct_result::pass) [[unlikely]] {
				counters_.drops[size_t(drop_reason::tcp_out_of_window)]++;
				return true;
			}
		} else {
			if (uint8_t(e.state) < uint8_t(flow::flow_state::udp_new) || (snoops_dns && !from_opener && p.sport == 53))
				return false;
			flow::track_datagram(e, from_opener);
		}
		count_passed(e, i, from_opener);
		return true;
	};

	flow::flow_entry* found[max_burst];
	// The second half of key j's lookup, its entry read, as the entry fetch_ahead keys on is asked for.
	auto finish_lookup = [&](uint32_t j) {
		if (j + fetch_ahead < m)
			table_.fetch(hints[j + fetch_ahead]);
		found[j] = table_.finish_lookup(keys[j], hashes[j], hints[j]);
	};
	// Proxied flows read their translation state: fetch it for the whole burst before the first needs it
	// (every lookup finished here, before the known flows' work).
	const bool finished_early = !proxy_.empty();
	if (finished_early) [[unlikely]]
		for (uint32_t j = 0; j < m; ++j) {
			finish_lookup(j);
			if (found[j] && found[j]->syn_proxied)
				memory::prefetch(&proxy_[table_.index_of(found[j])]);
		}
	// sync.defer-ms: a SYN-ACK of no flow here (its SYN crossed the peer) waits for the peer's record,
	// unless a SYN earlier in this burst may open its flow. Only SYN-ACKs: stray ACKs and backscatter
	// must not take the few slots, nor delay SYN-cookie ACKs.
	auto defer_miss = [&](uint32_t j) {
		const packet::parsed& p = parsed[which[j]];
		if (p.proto != 6 || p.is_icmp_error() ||
		    (p.tcp_flags & (flow::tcp_flag::syn | flow::tcp_flag::ack | flow::tcp_flag::rst | flow::tcp_flag::fin)) !=
		        (flow::tcp_flag::syn | flow::tcp_flag::ack))
			return false;
		for (uint32_t k = 0; k < j; ++k)
			if (hashes[k] == hashes[j] && (parsed[which[k]].tcp_flags & flow::tcp_flag::syn))
				return false;
		return defer(pkts[which[j]], hashes[j], q, now);
	};
	// A miss that may open a flow will have its addresses looked up in the rule set's large sets: start
	// those fetches as the miss is found, before the rest of the known flows' work, which they then
	// overlap. Not as the burst is parsed: that cost every packet of an established flow about 10 cycles
	// (bench-sets add_to_scan's stage timings). Not for TCP segments other than a SYN, which open nothing.
	const bool tests_sets = pol->tests_sets();
	auto prefetch_sets = [&](uint32_t j) {
		const packet::parsed& p = parsed[which[j]];
		if (p.family == 4 &&
		    (p.proto != 6 || (p.tcp_flags & (flow::tcp_flag::syn | flow::tcp_flag::ack)) == flow::tcp_flag::syn))
			pol->prefetch_set_bits(p.src.v4, p.dst.v4);
	};
	// Known flows first; the rest are misses, classified per direction and family in one call each.
	uint32_t nmiss = 0;
	uint8_t miss_j[max_burst];
	// The common cases while they last, in a loop without a call (pass_plain); from the first packet it
	// cannot take on, every case below, so that a flow's packets are still taken in their order.
	uint32_t j = 0;
	for (; j < m; ++j) {
		bool settled = true;
		flow::flow_entry* e;
		if (finished_early) [[unlikely]] {
			e = found[j];
		} else {
			if (j + fetch_ahead < m)
				table_.fetch(hints[j + fetch_ahead]);
			e = table_.settle_lookup(keys[j], hints[j], settled);
		}
		if (!settled)
			break;
		if (e == nullptr) {
			if (config_.sync_defer_ms)  // its work on a miss calls
				break;
			// Inline, no call: a scan's SYNs no longer send the rest of their burst the general way
			// (bench-sets add_to_scan, nine interleaved pairs: scan over no-scan worker cycles 1.075 ->
			// 1.065 at the medians, ratio 0.902 -> 0.914).
			if (tests_sets)
				prefetch_sets(j);
			miss_j[nmiss++] = uint8_t(j);
			continue;
		}
		if (!pass_plain(j, *e))
			break;
	}
	for (; j < m; ++j) {
		if (!finished_early) [[likely]]
			finish_lookup(j);
		if (found[j]) {
			pass_known(j, *found[j]);
			continue;
		}
		if (tests_sets)
			prefetch_sets(j);
		if (config_.sync_defer_ms && defer_miss(j)) [[unlikely]]
			v[which[j]] = v_held;
		else
			miss_j[nmiss++] = uint8_t(j);
	}
	clock.lap(stage::track);

	classify::key_v4 k4[2][max_burst];
	classify::key_v6 k6[2][max_burst];
	uint32_t results[4][max_burst];
	uint8_t list_size[4] = {};
	miss_ref miss[max_burst];
	// The client MSS of an ACK that returns a good SYN cookie (0: none): it opens its flow, judged by the
	// rules as its SYN was (the classifier sees SYN for its flags).
	uint16_t cookie_mss[max_burst];
	// The cookie counter and the timestamp clock of this burst, for the ACKs it checks and the SYNs it answers.
	// (Adaptive cookies may come on in the middle of the burst: whenever they are enabled at all.)
	const bool cookies_used = config_.syncookies.mode != syncookie_mode::never;
	const uint32_t cookie_now = cookies_used ? flow::cookie_count(now, config_.flows.tsc_hz) : 0;
	const uint32_t ts_clock = cookies_used ? uint32_t(now / (config_.flows.tsc_hz / 1000)) : 0;
	for (uint32_t x = 0; x < nmiss; ++x) {
		const uint16_t i = which[miss_j[x]];
		const packet::parsed& p = parsed[i];
		const uint8_t list = uint8_t(dir[i] * 2 + (p.family == 6 ? 1 : 0));
		const uint8_t pos = list_size[list]++;
		cookie_mss[x] = 0;
		if (check_cookies && p.proto == 6 && !p.is_icmp_error() && !p.is_fragment() &&
		    (p.tcp_flags & (flow::tcp_flag::syn | flow::tcp_flag::rst | flow::tcp_flag::fin | flow::tcp_flag::ack)) ==
		        flow::tcp_flag::ack) [[unlikely]] {
			cookie_mss[x] = cookie_of_ack(p, cookie_key_, cookie_now);
			counters_.syncookies_failed += cookie_mss[x] == 0;
		}
		if (p.family == 6) {
			k6[dir[i]][pos] = key6_of(p);
			if (cookie_mss[x])
				k6[dir[i]][pos].tcp_flags = flow::tcp_flag::syn;
		} else {
			k4[dir[i]][pos] = key4_of(p);
			if (cookie_mss[x])
				k4[dir[i]][pos].tcp_flags = flow::tcp_flag::syn;
		}
		miss[x] = {list, pos};
	}
	if (pol && pol->tests_sets()) {
		for (uint32_t d = 0; d < 2; ++d) {
			for (uint32_t x = 0; x < list_size[d * 2]; ++x) {
				k4[d][x].set_bits = pol->set_bits(k4[d][x].src, k4[d][x].dst);
				pol->count_set_hits(config_.index, k4[d][x].set_bits);
			}
			for (uint32_t x = 0; x < list_size[d * 2 + 1]; ++x) {
				k6[d][x].set_bits = pol->set_bits(k6[d][x].src, k6[d][x].dst);
				pol->count_set_hits(config_.index, k6[d][x].set_bits);
			}
		}
	}
	for (uint32_t d = 0; d < 2; ++d) {
		if (list_size[d * 2])
			pol->classifier[d]->classify(k4[d], list_size[d * 2], results[d * 2]);
		if (list_size[d * 2 + 1])
			pol->classifier[d]->classify(k6[d], list_size[d * 2 + 1], results[d * 2 + 1]);
	}
	clock.lap(stage::classify);

	// Flows this burst opened, by hash: an earlier packet of this burst may have opened the flow of a
	// later miss (a SYN and its SYN-ACK, a retransmitted SYN), which is then a packet of a known flow,
	// whatever its classification said. The lookups ran before these flows existed, and only this loop
	// inserts, so they are the only flows a second table lookup could find; a 1024-bit filter on the hash
	// keeps a flood burst (a new flow per packet) from scanning the list for each of them: with 256 bits,
	// one new flow in eight of a 64-packet burst of them scanned it to the end (new_flows_64b: 0.971-0.977
	// of the worker's cycles with 1024, alternating 20 ms windows in one process, three runs). An entry that
	// a later insert of this burst evicted and reused holds another key and is not matched, as the table
	// would not find it either.
	struct opened_flow {
		uint64_t hash;
		flow::flow_entry* e;
	};
	opened_flow opened[max_burst];
	uint32_t nopened = 0;
	alignas(16) uint64_t opened_filter[16];
	memory::zero_aligned<sizeof opened_filter>(opened_filter);
	auto filter_bit = [](uint64_t h) { return uint32_t(h >> 40) & 1023; };
	for (uint32_t x = 0; x < nmiss; ++x) {
		const uint32_t j = miss_j[x];
		const uint16_t i = which[j];
		const packet::parsed& p = parsed[i];
		const uint32_t d = dir[i];
		if (const uint32_t bit = filter_bit(hashes[j]); opened_filter[bit >> 6] >> (bit & 63) & 1) {
			flow::flow_entry* e = nullptr;
			for (uint32_t o = 0; o < nopened && !e; ++o)
				if (opened[o].hash == hashes[j] && opened[o].e->key == keys[j])
					e = opened[o].e;
			if (e) {
				pass_known(j, *e);
				continue;
			}
		}
		const uint32_t first_any = results[miss[x].list][miss[x].pos];
		// With payload rules, the verdict to follow is the first payload-free rule's; the payload rules
		// ranked before it are the flow's candidates.
		uint32_t rule = first_any;
		if (pol->inspects && first_any != classify::no_match && pol->briefs[first_any].payload) {
			const auto& free_cls = *pol->classifier_free[d];
			if (p.family == 6)
				free_cls.classify(&k6[d][miss[x].pos], 1, &rule);
			else
				free_cls.classify(&k4[d][miss[x].pos], 1, &rule);
		}
		// A limited rule over its rate does not match: the flow goes on to the rules after it. Limits and
		// add-to count flows: a packet that can open none (a stray ACK, an ICMP error) takes no token and
		// adds nothing, or unsolicited ACKs could drain every limit and fill every set. The segment is
		// made once for this and for opening the flow below: a SYN's options are read once, not twice
		// (new_flows_64b 0.97 of the worker cycles, alternating 20 ms windows in one process).
		const flow::segment seg = segment_of(p, pkts[i]);
		const bool opens = !p.is_icmp_error() && flow::can_open(seg, config_.tcp_loose_pickup);
		// An ACK returning a cookie opens its flow now: its rate token was taken by its SYN, but a max-conn
		// count is checked here, when the flow is counted (its SYN counted nothing).
		const bool cookie_ack = cookie_mss[x] != 0;
		while (rule != classify::no_match && !pol->limiter_of.empty()) {
			const uint32_t slot = pol->limiter_of[rule];
			if (slot == compiled_policy::no_limit)
				break;
			rule_limiter& lim = pol->limiters[slot];
			const bool v6 = p.family == 6;
			const u128 source = v6 ? p.src.v6 : u128(p.src.v4);
			// Outside its schedule the rule is not there, for every packet; max-conn next, then the rate,
			// for packets that can open a flow: a source at its count takes no token.
			const bool in_force = lim.in_window.load(std::memory_order_relaxed);
			if (in_force && !opens && !cookie_ack)
				break;
			if (in_force &&
			    (lim.max_conn == 0 || pol->conns->count(lim.conn_id, conn_counts::source_key(v6, source)) < lim.max_conn) &&
			    (cookie_ack || lim.admit(now, lim.source_hash(v6, source))))
				break;
			if (in_force)
				rule_row[rule].over_limit++;
			const classify::classifier* after = pol->continue_after[d][slot].get();
			rule = classify::no_match;
			if (after && p.family == 6)
				after->classify(&k6[d][miss[x].pos], 1, &rule);
			else if (after)
				after->classify(&k4[d][miss[x].pos], 1, &rule);
		}
		const compiled_policy::rule_brief* brief = rule == classify::no_match ? nullptr : &pol->briefs[rule];
		const rules::action act = brief ? brief->act : pol->default_action[d];
		if (brief) {
			rule_counter& rc = rule_row[rule];
			rc.packets++;
			rc.bytes += pkts[i]->pkt_len;
			rc.last_hit_tsc = now;
			if (brief->log)
				log_.push({now, p.src.v6, p.dst.v6, p.sport, p.dport, p.family, p.proto, uint8_t(d),
				           uint8_t(act == rules::action::allow ? 0 : act == rules::action::drop ? 1 : 2), rule,
				           pol->generation});
			if (brief->add_to && opens) {
				// An address already in the set is not queued again: during a scan the known scanners'
				// every SYN would otherwise fill the ring ahead of the new ones (its timeout runs from the
				// add that put it there).
				const bool v6 = p.family == 6;
				const auto& a = brief->add.dst ? p.dst : p.src;
				const sets::live_set& set = *pol->sets[brief->add.set];
				if (!(v6 ? set.contains(a.v6) : set.contains(a.v4))) {
					if (set_adds_.push({pol->generation, v6 ? a.v6 : u128(a.v4), brief->add.set, brief->add.timeout_s, uint8_t(v6)}))
						counters_.set_adds++;
					else
						counters_.set_adds_lost++;
				}
			}
		}
		if (act == rules::action::drop) {
			counters_.drops[size_t(rule == classify::no_match ? drop_reason::default_drop : drop_reason::rule_drop)]++;
			// A cookie ACK refused now (max-conn, a rule changed since its SYN): its client believes it is
			// connected, so it is told otherwise rather than left retransmitting.
			if (cookie_ack && config_.send_rejects && make_reject(pkts[i], p)) {
				v[i] = v_reject;
			}
			continue;
		}
		if (act == rules::action::reject) {
			counters_.drops[size_t(rule == classify::no_match ? drop_reason::default_drop : drop_reason::rule_reject)]++;
			if (config_.send_rejects && make_reject(pkts[i], p)) {
				v[i] = v_reject;
			}
			continue;
		}
		if (p.is_icmp_error()) {  // allowed by the rules, but it opens nothing
			v[i] = v_allow;
			continue;
		}
		const bool proxied = cookie_mss[x] != 0;
		if (!proxied && !flow::can_open(seg, config_.tcp_loose_pickup)) {
			counters_.drops[size_t(drop_reason::tcp_no_flow)]++;
			continue;
		}
		// The proxy stands in for the servers behind it: inbound SYNs only. A connection from inside to an
		// arbitrary server outside is never proxied (the SYN-ACK could not announce that server's options).
		if (d == 0 && p.proto == 6 && (p.tcp_flags & (flow::tcp_flag::syn | flow::tcp_flag::ack)) == flow::tcp_flag::syn) {
			// Adaptive: the SYN that takes the tick past the rate turns cookies on at once, not at the tick's
			// end, so a flood does not fill the table for the rest of the tick.
			if (++tick_syns_ * uint64_t(10) > config_.syncookies.rate && !cookies_on_ &&
			    config_.syncookies.mode == syncookie_mode::adaptive) [[unlikely]] {
				cookies_on_ = true;
				cookies_hold_until_ = now + config_.flows.tsc_hz;
				counters_.syncookies_active = 1;
			}
			// SYN cookies on: the proxy answers the SYN itself, and the table sees nothing of it.
			if (cookies_on_ && !p.is_fragment() &&
			    answer_syn(pkts[i], p, config_.syncookies, cookie_key_, cookie_now, ts_clock)) {
				counters_.syncookies_sent++;
				cookies_checked_until_ = now + 128 * config_.flows.tsc_hz;
				v[i] = v_answer;
				continue;
			}
		}
		// A max-conn rule's flow is counted before the table can see it, so that whoever removes it
		// (conn_counts::flow_removed, maybe the control thread at once) always has a count to take back.
		uint8_t conn_id = 0;
		uint64_t conn_source = 0;
		if (rule != classify::no_match && !pol->limiter_of.empty() && pol->limiter_of[rule] != compiled_policy::no_limit &&
		    pol->limiters[pol->limiter_of[rule]].max_conn) {
			conn_id = pol->limiters[pol->limiter_of[rule]].conn_id;
			conn_source = conn_counts::source_key(p.family == 6, p.family == 6 ? p.src.v6 : u128(p.src.v4));
			pol->conns->opened(conn_id, conn_source);
		}
		flow::flow_entry* e = table_.insert(keys[j], hashes[j], now, conn_id, reversed[j]);
		if (!e) {
			if (conn_id)
				pol->conns->closed(conn_id, conn_source);
			counters_.drops[size_t(drop_reason::flow_table_full)]++;
			continue;
		}
		if (proxied) {
			if (!replay_syn(*e, proxy_[table_.index_of(e)], pkts[i], p, cookie_mss[x])) {
				__atomic_store_n(&e->last_seen, flow::flow_table::stale_stamp(now_stamp), __ATOMIC_RELAXED);
				counters_.drops[size_t(drop_reason::malformed)]++;
				continue;
			}
			counters_.syncookies_accepted++;
		} else {
			flow::open(*e, seg, config_.tcp_loose_pickup);
		}
		e->rule_id = rule;
		e->ruleset_generation = stamp;
		e->opener_direction = uint8_t(d);
		e->traffic[0].add(pkts[i]->pkt_len);
		counters_.flows_opened++;
		opened[nopened++] = {hashes[j], e};
		opened_filter[filter_bit(hashes[j]) >> 6] |= uint64_t(1) << (filter_bit(hashes[j]) & 63);
		v[i] = v_allow;
		if (pol->inspects) {
			const uint32_t index = table_.index_of(e);
			const inspect::plan plan = inspect::plan_for(first_any, rule);
			if (proxied) {
				// Payload rules match the flow's opening tuple as its SYN had it, as the classifier did.
				packet::parsed opening = p;
				opening.tcp_flags = flow::tcp_flag::syn;
				streams_.begin(*pol->inspect_scratch[config_.index], index, plan, opening, rules::direction(d));
			} else {
				streams_.begin(*pol->inspect_scratch[config_.index], index, plan, p, rules::direction(d));
			}
			e->payload_watched = plan.inspect();
			// A proxied flow's packet is now the SYN to the server: no payload to scan.
			if (e->payload_watched && !proxied && !payload_allows(*pol, *e, p, pkts[i], true, i))
				v[i] = v[i] == v_reject ? v_reject : v_drop;
		}
	}
	clock.lap(stage::open);

	// First fragments that passed let their datagrams' later fragments follow, those of this burst too
	// (a sender's fragments come back to back, often in one burst).
	if (nlater || fragments_seen) [[unlikely]] {
		for (uint16_t i = 0; i < n; ++i)
			if (v[i] == v_allow && parsed[i].is_fragment() && !parsed[i].is_non_first_fragment() &&
			    !fragments_.remember(parsed[i], now)) {
				v[i] = v_drop;  // a second first fragment of one datagram in this burst
				counters_.drops[size_t(drop_reason::fragment_overlap)]++;
			}
		for (uint32_t k = 0; k < nlater; ++k) {
			const uint8_t i = later_fragments[k];
			const auto verdict = fragments_.check(parsed[i], now);
			if (verdict == fragment_verdicts::verdict::allowed)
				v[i] = v_allow;
			else
				counters_.drops[size_t(verdict == fragment_verdicts::verdict::no_first ? drop_reason::fragment_no_first
				                                                                       : drop_reason::fragment_overlap)]++;
		}
	}

	// Port and verdict counters, added once per burst (every packet of a burst came in on q.port).
	// By every verdict value; the proxy's answers go with the allowed, once a burst; held segments are
	// counted when they go or are dropped (worker::count_held).
	uint64_t verdict_packets[2][5] = {}, verdict_bytes[2][5] = {}, rx_bytes = 0;
	// One pass: count, and sort for transmit by port (what passes) or free (what does not).
	rte_mbuf* out[max_ports][2 * max_burst];  // a burst, and the held segments it released
	uint16_t out_n[max_ports] = {};
	uint64_t out_bytes[max_ports] = {};
	rte_mbuf* dropped[max_burst];
	uint16_t ndropped = 0;
	uint64_t rejects = 0;
	const uint16_t tx_port[2] = {q.tx_port[0], q.tx_port[1]};
	for (uint16_t i = 0; i < n; ++i) {
		const uint32_t len = pkts[i]->pkt_len;
		const uint8_t verdict = v[i];
		rx_bytes += len;
		verdict_packets[dir[i]][verdict]++;
		verdict_bytes[dir[i]][verdict] += len;
		if (verdict == v_drop) {
			dropped[ndropped++] = pkts[i];
		} else if (verdict != v_held) [[likely]] {
			const uint16_t port = (verdict == v_allow ? tx_port[dir[i]] : q.port) % max_ports;
			out[port][out_n[port]++] = pkts[i];
			out_bytes[port] += len;
			rejects += verdict == v_reject;
		}
	}
	counters_.rejects_sent += rejects;
	if (!redelivering_) [[likely]] {
		counters_.rx_packets[q.port % max_ports] += n;
		counters_.rx_bytes[q.port % max_ports] += rx_bytes;
	}
	for (uint32_t d = 0; d < 2; ++d) {
		verdict_packets[d][v_allow] += verdict_packets[d][v_answer];
		verdict_bytes[d][v_allow] += verdict_bytes[d][v_answer];
		for (uint32_t k = 0; k < 3; ++k) {
			counters_.packets[d][k] += verdict_packets[d][k];
			counters_.bytes[d][k] += verdict_bytes[d][k];
		}
	}
	clock.lap(stage::counters);

	// Transmit what passes, grouped by port; free the rest.
	if (ndropped) {
		if (config_.drop_port >= 0) {
			const uint16_t sent = rte_eth_tx_burst(uint16_t(config_.drop_port), q.tx_queue, dropped, ndropped);
			if (sent < ndropped)
				rte_pktmbuf_free_bulk(dropped + sent, ndropped - sent);
		} else {
			rte_pktmbuf_free_bulk(dropped, ndropped);
		}
	}
	for (uint16_t k = 0; k < nreleased; ++k) {
		out[q.port % max_ports][out_n[q.port % max_ports]++] = released[k];
		out_bytes[q.port % max_ports] += released[k]->pkt_len;
	}
	clock.lap(stage::tx_prepare);
	for (uint16_t port = 0; port < max_ports; ++port)
		if (out_n[port])
			send(port, q.tx_queue, out[port], out_n[port], out_bytes[port]);
}

} // namespace portcullis::dataplane
