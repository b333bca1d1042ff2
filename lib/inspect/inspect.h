// Payload inspection: the content, regex, app and domain conditions of a rule set (rules.h), compiled
// into Hyperscan databases, and the per-flow scan state that matches them against TCP byte streams
// and UDP datagrams. Semantics and the worker's calling sequence: docs/inspect.md.
//
// Pieces, by lifetime:
//   - database     one per rule set, built by the control plane (build()), immutable afterwards; the
//                  stream-mode DB (TCP), the block-mode DB (UDP), one block DB per name kind (sni,
//                  http-host, dns-query), and the table from Hyperscan pattern id to (rule, condition).
//   - scratch      one per worker per database: Hyperscan scratch (cloned from the prototype) and a
//                  pool of pre-opened streams, so that the data path never calls hs_open_stream.
//   - flow_streams one per worker, sized like its flow table and indexed by flow entry index: the
//                  per-flow scan state (streams, next TCP sequence and bytes inspected each way, the
//                  candidate range, partial AND state, the decision). Outlives rule-set swaps.
//
// A flow's candidates are the payload rules ranked at or after the first rule matching its 5-tuple
// ignoring payload (first_any) and before the first payload-free rule that matches (limit), that
// match its 5-tuple (checked when a pattern fires). While inspecting, the payload-free verdict applies;
// the first packet on which a candidate's conditions have all held decides (lowest rule index among
// the candidates completed by that packet), and the flow follows that rule from then on. When the
// byte budget of both directions is spent, or the streams end, the payload-free verdict stands.
//
// Invariants: the data path (begin/scan/end) allocates nothing, throws nothing and locks nothing;
// Hyperscan errors there are counters. TCP: only in-order data is scanned; a segment that leaves a
// gap or partly overlaps what was scanned ends inspection of its direction (counted); an exact
// retransmission of scanned bytes is skipped.
//
// Threads: database::build and scratch::create run on the control thread. A worker uses only its own
// scratch and flow_streams; a database is shared read-only by every worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "packet/packet.h"
#include "rules/rules.h"

struct hs_database;
struct hs_scratch;
struct hs_stream;

namespace portcullis::inspect {

inline constexpr uint32_t no_rule = UINT32_MAX;

// The 5-tuple (and TCP flags) of a flow as its opener sent it; what candidates are tested against.
struct flow_tuple {
	u128 src, dst;  // IPv4 in the low 32 bits, as in packet::ip_address
	uint16_t sport, dport;
	uint8_t proto;
	uint8_t family;  // 4 or 6
	uint8_t tcp_flags;
};

flow_tuple tuple_of(const packet::parsed& p);
// Does one rule's tuple_match match t (the classifier's semantics, slow reference form)?
bool tuple_matches(const tuple_match& m, const flow_tuple& t);

class database {
public:
	struct build_result {
		std::unique_ptr<database> db;  // null on failure
		std::string error;             // "file:line:column: error: ..." at the offending pattern
	};
	// Compiles every payload condition of rs. A rule set without payload rules gives an empty database
	// (empty() is true; scanning with it is a no-op).
	static build_result build(const rules::ruleset& rs);

	~database();
	database(const database&) = delete;
	database& operator=(const database&) = delete;

	bool empty() const { return prules_.empty(); }
	size_t memory_bytes() const;  // the Hyperscan databases plus the tables here
	uint32_t serial() const { return serial_; }
	uint32_t pattern_count() const { return uint32_t(patterns_.size()); }
	size_t stream_state_bytes() const;  // one hs_stream_t of the TCP database (0 when none)
	bool has_tcp() const { return stream_db_ != nullptr; }
	bool has_udp() const { return block_db_ != nullptr; }
	bool has_names(rules::payload_kind k) const { return name_db(k) != nullptr; }

private:
	friend class scratch;
	friend struct scan_access;
	database() = default;

	struct pattern_ref {
		uint32_t prule;  // index into prules_
		uint8_t bit;     // the condition's bit in the rule's all_bits
	};
	struct payload_rule {
		uint32_t index;  // in the rule set
		uint8_t all_bits;
		bool in, out;
		tuple_match match;
	};
	hs_database* name_db(rules::payload_kind k) const
	{
		return k == rules::payload_kind::sni ? name_db_[0] : k == rules::payload_kind::http_host ? name_db_[1]
		     : k == rules::payload_kind::dns_query ? name_db_[2] : nullptr;
	}

	hs_database* stream_db_ = nullptr;
	hs_database* block_db_ = nullptr;
	hs_database* name_db_[3] = {};
	std::vector<pattern_ref> patterns_;  // by Hyperscan id (shared by every database above)
	std::vector<payload_rule> prules_;   // in rule order
	uint32_t serial_ = 0;
};

// What database::build would hand Hyperscan for one content or name pattern (exposed for tests and
// the benchmark's baseline): a regex of \xNN escapes, anchored as the name semantics need.
std::string literal_expression(std::string_view bytes);
std::string name_expression(std::string_view pattern);

struct scan_config {
	uint32_t budget = 4096;          // payload bytes scanned per flow per direction
	uint32_t max_streams = 16384;    // pre-opened streams per worker: flows inspected at once x2
};

// Per-worker counters: written by the owning worker only, read by anyone (sum over workers).
struct alignas(64) counters {
	uint64_t flows_inspected;   // begin() with candidates
	uint64_t packets_scanned;   // packets whose payload reached Hyperscan
	uint64_t bytes_scanned;
	uint64_t decided;           // flows a candidate decided
	uint64_t budget_spent;      // directions that reached the byte budget
	uint64_t out_of_order;      // directions ended by a gap or a partial overlap
	uint64_t retransmits;       // exact retransmissions skipped
	uint64_t stream_ended;      // directions ended by FIN or RST
	uint64_t no_stream;         // stream pool empty: direction not inspected
	uint64_t scan_errors;       // Hyperscan returned an error
	uint64_t partials_full;     // a third multi-condition rule started matching on one flow
	uint64_t ruleset_changed;   // inspection abandoned: the flow began under another database
	uint64_t names[3];          // names extracted: sni, http-host, dns-query
};

class scratch {
public:
	struct create_result {
		std::unique_ptr<scratch> s;
		std::string error;
	};
	// The prototype for db; clone() it once per worker. Opens cfg.max_streams streams up front.
	static create_result create(const database& db, const scan_config& cfg = {});
	create_result clone() const;
	~scratch();
	scratch(const scratch&) = delete;
	scratch& operator=(const scratch&) = delete;

	const database& db() const { return *db_; }
	const scan_config& config() const { return cfg_; }
	uint32_t free_streams() const { return free_count_; }
	size_t memory_bytes() const;

private:
	friend struct scan_access;
	scratch() = default;
	hs_stream* take_stream();
	void give_stream(hs_stream* s);  // resets it first

	const database* db_ = nullptr;
	scan_config cfg_;
	hs_scratch* hs_ = nullptr;
	std::vector<hs_stream*> all_;   // every stream opened, closed in the destructor
	std::vector<hs_stream*> free_;  // a stack of free_count_ entries
	uint32_t free_count_ = 0;
};

enum class state : uint8_t {
	idle,        // not inspected (no candidates, or begin() was not called)
	inspecting,  // candidates pending; the payload-free verdict applies meanwhile
	matched,     // a candidate decided: `rule` applies from the deciding packet on
	finished,    // budget spent or streams ended: the payload-free verdict stands
};

struct result {
	state st = state::idle;
	uint32_t rule = no_rule;  // when matched
	bool decided_now = false; // this packet decided (apply the rule's action to it and the flow)
};

// Per-flow state (one cache line), indexed by flow entry index.
struct alignas(64) flow_slot {
	hs_stream* stream[2];      // [0] opener -> responder, [1] the reverse; from the scratch's pool
	uint32_t next_seq[2];
	uint32_t inspected[2];     // payload bytes scanned
	uint32_t first;            // candidates: payload rules in [first, limit) matching the tuple
	uint32_t limit;
	uint32_t matched;          // the deciding rule, or no_rule
	uint32_t db_serial;        // database the streams belong to
	uint32_t partial_rule[2];  // multi-condition rules partly matched (no_rule = free)
	uint8_t partial_bits[2];
	state st;
	uint8_t dir_flags;         // flag_* below
	uint8_t direction;         // rules::direction of the opening packet
	uint8_t opener_tcp_flags;
};
static_assert(sizeof(flow_slot) == 64);
inline constexpr uint8_t flag_seq_known0 = 0x01, flag_seq_known1 = 0x02;
inline constexpr uint8_t flag_stopped0 = 0x04, flag_stopped1 = 0x08;
inline constexpr uint8_t flag_names_tried = 0x10;

// What the classifiers said about a new flow's opening packet, as an inspection plan.
struct plan {
	uint32_t first = no_rule;  // first rule matching the 5-tuple, payload ignored (classifier of all rules)
	uint32_t limit = no_rule;  // first payload-free rule matching (classifier without payload rules)
	bool inspect() const { return first != no_rule && first != limit; }
};
// `first_any`/`first_free` are the two classifiers' results (no_rule = classify::no_match).
inline plan plan_for(uint32_t first_any, uint32_t first_free) { return {first_any, first_free}; }

// The slow reference (control plane, tests, `portcullis explain`): the candidates of a flow opened by
// `opener` in direction d, in rule order, and the payload-free rule (no_rule = the default).
struct candidates {
	std::vector<uint32_t> rules;
	uint32_t payload_free = no_rule;
};
candidates candidates_for(const rules::ruleset& rs, rules::direction d, const flow_tuple& opener);

class flow_streams {
public:
	// Slots for flow indices 0..capacity (flow_table entry indices start at 1).
	explicit flow_streams(uint32_t capacity);
	flow_streams(const flow_streams&) = delete;
	flow_streams& operator=(const flow_streams&) = delete;

	// ---- owner worker ----
	// A new flow at flow_index, opened by `opener` in direction `dir`. Returns streams a previous flow
	// left in the slot to the pool; marks the slot idle when !pl.inspect() or db is empty.
	void begin(scratch& s, uint32_t flow_index, const plan& pl, const packet::parsed& opener, rules::direction dir);
	// One packet of the flow (every packet while st == inspecting, payload or not: SYN/FIN/RST move the
	// sequence tracking). `frame` is the frame parsed into p.
	result scan(scratch& s, uint32_t flow_index, const packet::parsed& p, const uint8_t* frame, bool from_opener);
	// The flow ended (closed, expired, evicted): its streams go back to the pool.
	void end(scratch& s, uint32_t flow_index);
	// Returns streams of flows that ended without end(): visits `count` slots from where the last call
	// stopped and ends those for which live(flow_index) is false. Call from the poll loop when idle.
	template <class Live>
	void sweep(scratch& s, uint32_t count, Live&& live)
	{
		for (uint32_t k = 0; k < count; ++k) {
			sweep_cursor_ = sweep_cursor_ >= capacity_ ? 1 : sweep_cursor_ + 1;
			const flow_slot& f = slots_[sweep_cursor_];
			if ((f.stream[0] || f.stream[1]) && !live(sweep_cursor_))
				end(s, sweep_cursor_);
		}
	}

	const flow_slot& slot(uint32_t flow_index) const { return slots_[flow_index]; }
	result status(uint32_t flow_index) const;
	const counters& stats() const { return counters_; }
	uint32_t capacity() const { return capacity_; }
	size_t memory_bytes() const { return (size_t(capacity_) + 1) * sizeof(flow_slot); }

private:
	friend struct scan_access;
	uint32_t capacity_;
	uint32_t sweep_cursor_ = 0;
	std::unique_ptr<flow_slot[]> slots_;
	counters counters_{};
};

} // namespace portcullis::inspect
