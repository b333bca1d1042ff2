// Payload inspection (inspect.h): database compilation (control plane) and the per-packet scan (data
// path). The scan path is written C-like: no allocation, no exceptions, Hyperscan errors counted.
#include "inspect/inspect.h"

#include <atomic>
#include <cstring>

#include <hs.h>

#include "inspect/names.h"

namespace portcullis::inspect {

flow_tuple tuple_of(const packet::parsed& p)
{
	flow_tuple t{};
	t.src = p.family == 4 ? u128(p.src.v4) : p.src.v6;
	t.dst = p.family == 4 ? u128(p.dst.v4) : p.dst.v6;
	t.sport = p.sport;
	t.dport = p.dport;
	t.proto = p.proto;
	t.family = p.family;
	t.tcp_flags = p.tcp_flags;
	return t;
}

bool tuple_matches(const tuple_match& m, const flow_tuple& t)
{
	if (t.family == 4) {
		if (!contains(m.src4, uint32_t(t.src)) || !contains(m.dst4, uint32_t(t.dst)))
			return false;
	} else if (t.family == 6) {
		if (!contains(m.src6, t.src) || !contains(m.dst6, t.dst))
			return false;
	} else {
		return false;
	}
	if (!contains(m.proto, t.proto) || !contains(m.sport, t.sport) || !contains(m.dport, t.dport))
		return false;
	return t.proto != 6 || (t.tcp_flags & m.tcp_flags_mask) == m.tcp_flags_value;
}

candidates candidates_for(const rules::ruleset& rs, rules::direction d, const flow_tuple& opener)
{
	candidates c;
	for (uint32_t i = 0; i < rs.rules.size(); ++i) {
		const rules::rule& r = rs.rules[i];
		if (!r.applies(d) || !tuple_matches(r.match, opener))
			continue;
		if (r.payload.empty()) {
			c.payload_free = i;
			break;
		}
		c.rules.push_back(i);
	}
	return c;
}

namespace {

std::string hex_escaped(std::string_view bytes)
{
	static constexpr char digits[] = "0123456789abcdef";
	std::string e;
	e.reserve(bytes.size() * 4);
	for (unsigned char c : bytes) {
		e += "\\x";
		e += digits[c >> 4];
		e += digits[c & 15];
	}
	return e;
}

unsigned pattern_flags(const rules::payload_pattern& p)
{
	unsigned f = HS_FLAG_SINGLEMATCH;
	if (p.kind == rules::payload_kind::content) {
		if (p.nocase)
			f |= HS_FLAG_CASELESS;
	} else {
		if (p.regex_flags & rules::regex_caseless) f |= HS_FLAG_CASELESS;
		if (p.regex_flags & rules::regex_dotall) f |= HS_FLAG_DOTALL;
		if (p.regex_flags & rules::regex_multiline) f |= HS_FLAG_MULTILINE;
	}
	return f;
}

// The patterns of one Hyperscan database being assembled.
struct pattern_set {
	std::vector<std::string> exprs;
	std::vector<unsigned> flags, ids;
	std::vector<hs_expr_ext_t> exts;
	std::vector<const rules::payload_pattern*> from;

	void add(std::string expr, unsigned f, unsigned id, const hs_expr_ext_t& ext, const rules::payload_pattern* p)
	{
		exprs.push_back(std::move(expr));
		flags.push_back(f);
		ids.push_back(id);
		exts.push_back(ext);
		from.push_back(p);
	}

	// Compiles in `mode`; on failure, the message at the offending pattern.
	hs_database_t* compile(unsigned mode, std::string& error) const
	{
		if (exprs.empty())
			return nullptr;
		std::vector<const char*> e;
		std::vector<const hs_expr_ext_t*> x;
		for (size_t i = 0; i < exprs.size(); ++i) {
			e.push_back(exprs[i].c_str());
			x.push_back(&exts[i]);
		}
		hs_database_t* db = nullptr;
		hs_compile_error_t* err = nullptr;
		if (hs_compile_ext_multi(e.data(), flags.data(), ids.data(), x.data(), unsigned(e.size()), mode, nullptr, &db,
		                         &err) == HS_SUCCESS)
			return db;
		std::string where = "payload patterns";
		if (err && err->expression >= 0 && size_t(err->expression) < from.size()) {
			const auto& l = from[size_t(err->expression)]->loc;
			where = l.file + ":" + std::to_string(l.line) + ":" + std::to_string(l.column);
		}
		error = where + ": error: Hyperscan cannot compile this " +
		        std::string(mode == HS_MODE_BLOCK ? "block" : "stream") + "-mode pattern: " +
		        (err && err->message ? err->message : "unknown error");
		hs_free_compile_error(err);
		return nullptr;
	}
};

std::atomic<uint32_t> next_serial{1};

} // namespace

std::string literal_expression(std::string_view bytes) { return hex_escaped(bytes); }

std::string name_expression(std::string_view pattern)
{
	const bool wildcard = pattern.size() >= 2 && pattern[0] == '*' && pattern[1] == '.';
	std::string e = wildcard ? "^.+" : "^";  // wildcard: one or more bytes (labels), then ".suffix"
	e.append(hex_escaped(wildcard ? pattern.substr(1) : pattern));
	e.push_back('$');
	return e;
}

database::build_result database::build(const rules::ruleset& rs)
{
	build_result out;
	std::unique_ptr<database> db(new database);
	db->serial_ = next_serial.fetch_add(1, std::memory_order_relaxed);
	pattern_set tcp, udp, names[3];
	for (uint32_t i = 0; i < rs.rules.size(); ++i) {
		const rules::rule& r = rs.rules[i];
		if (r.payload.empty())
			continue;
		const uint32_t prule = uint32_t(db->prules_.size());
		db->prules_.push_back({i, uint8_t((1u << r.payload.size()) - 1), r.in, r.out, r.match});
		const bool on_tcp = contains(r.match.proto, uint8_t(6)), on_udp = contains(r.match.proto, uint8_t(17));
		for (size_t ci = 0; ci < r.payload.size(); ++ci) {
			for (const auto& p : r.payload[ci].any_of) {
				const unsigned id = unsigned(db->patterns_.size());
				db->patterns_.push_back({prule, uint8_t(1u << ci)});
				hs_expr_ext_t ext{};
				if (p.kind == rules::payload_kind::content || p.kind == rules::payload_kind::regex) {
					std::string expr = p.kind == rules::payload_kind::content ? literal_expression(p.value) : p.value;
					// Hyperscan bounds the match's end offset: the start is at or after `offset` when the
					// end is at least offset + the pattern's shortest match.
					if (p.offset) {
						uint64_t width = p.value.size();
						if (p.kind == rules::payload_kind::regex) {
							hs_expr_info_t* info = nullptr;
							hs_compile_error_t* err = nullptr;
							if (hs_expression_info(p.value.c_str(), pattern_flags(p), &info, &err) == HS_SUCCESS) {
								width = info->min_width;
								free(info);
							} else {
								hs_free_compile_error(err);
								width = 0;
							}
						}
						ext.flags |= HS_EXT_FLAG_MIN_OFFSET;
						ext.min_offset = p.offset + width;
					}
					if (p.depth) {
						ext.flags |= HS_EXT_FLAG_MAX_OFFSET;
						ext.max_offset = uint64_t(p.offset) + p.depth;
					}
					if (on_tcp)
						tcp.add(expr, pattern_flags(p), id, ext, &p);
					if (on_udp)
						udp.add(std::move(expr), pattern_flags(p), id, ext, &p);
				} else {
					const size_t k = p.kind == rules::payload_kind::sni ? 0 : p.kind == rules::payload_kind::http_host ? 1 : 2;
					names[k].add(name_expression(p.value), HS_FLAG_SINGLEMATCH | HS_FLAG_CASELESS | HS_FLAG_DOTALL, id,
					             ext, &p);
				}
			}
		}
	}
	std::string error;
	db->stream_db_ = tcp.compile(HS_MODE_STREAM, error);
	if (error.empty())
		db->block_db_ = udp.compile(HS_MODE_BLOCK, error);
	for (size_t k = 0; k < 3 && error.empty(); ++k)
		db->name_db_[k] = names[k].compile(HS_MODE_BLOCK, error);
	if (!error.empty()) {
		out.error = std::move(error);
		return out;
	}
	out.db = std::move(db);
	return out;
}

database::~database()
{
	hs_free_database(stream_db_);
	hs_free_database(block_db_);
	for (auto* d : name_db_)
		hs_free_database(d);
}

size_t database::memory_bytes() const
{
	size_t total = sizeof(*this) + patterns_.capacity() * sizeof(pattern_ref) + prules_.capacity() * sizeof(payload_rule);
	for (const auto& r : prules_)
		total += (r.match.src4.capacity() + r.match.dst4.capacity()) * sizeof(value_range<uint32_t>) +
		         (r.match.src6.capacity() + r.match.dst6.capacity()) * sizeof(value_range<u128>) +
		         (r.match.sport.capacity() + r.match.dport.capacity()) * sizeof(value_range<uint16_t>) +
		         r.match.proto.capacity() * sizeof(value_range<uint8_t>);
	for (const hs_database_t* d : {stream_db_, block_db_, name_db_[0], name_db_[1], name_db_[2]}) {
		size_t n = 0;
		if (d && hs_database_size(d, &n) == HS_SUCCESS)
			total += n;
	}
	return total;
}

size_t database::stream_state_bytes() const
{
	size_t n = 0;
	if (stream_db_ && hs_stream_size(stream_db_, &n) != HS_SUCCESS)
		n = 0;
	return n;
}

// ---- scratch ------------------------------------------------------------------------------------

namespace {

std::string hs_error_name(hs_error_t e)
{
	switch (e) {
	case HS_NOMEM: return "out of memory";
	case HS_INVALID: return "invalid argument";
	case HS_DB_MODE_ERROR: return "database mode mismatch";
	case HS_ARCH_ERROR: return "CPU not supported by Hyperscan";
	default: return "Hyperscan error " + std::to_string(e);
	}
}

} // namespace

scratch::create_result scratch::create(const database& db, const scan_config& cfg)
{
	create_result r;
	std::unique_ptr<scratch> s(new scratch);
	s->db_ = &db;
	s->cfg_ = cfg;
	for (const hs_database_t* d : {db.stream_db_, db.block_db_, db.name_db_[0], db.name_db_[1], db.name_db_[2]}) {
		if (!d)
			continue;
		if (hs_error_t e = hs_alloc_scratch(d, &s->hs_); e != HS_SUCCESS) {
			r.error = "hs_alloc_scratch: " + hs_error_name(e);
			return r;
		}
	}
	if (db.stream_db_) {
		s->all_.reserve(cfg.max_streams);
		for (uint32_t i = 0; i < cfg.max_streams; ++i) {
			hs_stream_t* st = nullptr;
			if (hs_error_t e = hs_open_stream(db.stream_db_, 0, &st); e != HS_SUCCESS) {
				r.error = "hs_open_stream: " + hs_error_name(e);
				return r;
			}
			s->all_.push_back(st);
		}
		s->free_ = s->all_;
		s->free_count_ = uint32_t(s->free_.size());
	}
	r.s = std::move(s);
	return r;
}

scratch::create_result scratch::clone() const
{
	create_result r;
	std::unique_ptr<scratch> s(new scratch);
	s->db_ = db_;
	s->cfg_ = cfg_;
	if (hs_) {
		if (hs_error_t e = hs_clone_scratch(hs_, &s->hs_); e != HS_SUCCESS) {
			r.error = "hs_clone_scratch: " + hs_error_name(e);
			return r;
		}
	}
	if (db_->stream_db_) {
		s->all_.reserve(cfg_.max_streams);
		for (uint32_t i = 0; i < cfg_.max_streams; ++i) {
			hs_stream_t* st = nullptr;
			if (hs_error_t e = hs_open_stream(db_->stream_db_, 0, &st); e != HS_SUCCESS) {
				r.error = "hs_open_stream: " + hs_error_name(e);
				return r;
			}
			s->all_.push_back(st);
		}
		s->free_ = s->all_;
		s->free_count_ = uint32_t(s->free_.size());
	}
	r.s = std::move(s);
	return r;
}

scratch::~scratch()
{
	for (hs_stream_t* st : all_)
		hs_close_stream(st, nullptr, nullptr, nullptr);
	if (hs_)
		hs_free_scratch(hs_);
}

size_t scratch::memory_bytes() const
{
	size_t n = 0;
	if (hs_ && hs_scratch_size(hs_, &n) != HS_SUCCESS)
		n = 0;
	return sizeof(*this) + n + all_.size() * (db_->stream_state_bytes() + 2 * sizeof(void*));
}

hs_stream* scratch::take_stream() { return free_count_ ? free_[--free_count_] : nullptr; }

void scratch::give_stream(hs_stream* st)
{
	hs_reset_stream(st, 0, nullptr, nullptr, nullptr);
	free_[free_count_++] = st;
}

// ---- the scan path ------------------------------------------------------------------------------

// The private parts the scan path reads, and the match callback.
struct scan_access {
	struct match_ctx {
		const database* db;
		flow_slot* f;
		flow_tuple tuple;  // the opener's orientation
		uint32_t best;     // lowest candidate completed by this packet
		counters* c;
	};

	static int on_match(unsigned id, unsigned long long, unsigned long long, unsigned, void* context)
	{
		match_ctx& x = *static_cast<match_ctx*>(context);
		const database::pattern_ref& ref = x.db->patterns_[id];
		const database::payload_rule& pr = x.db->prules_[ref.prule];
		flow_slot& f = *x.f;
		if (pr.index < f.first || pr.index >= f.limit || pr.index >= x.best)
			return 0;
		if (!(f.direction == uint8_t(rules::direction::in) ? pr.in : pr.out) || !tuple_matches(pr.match, x.tuple))
			return 0;
		if (pr.all_bits == ref.bit) {
			x.best = pr.index;
			return 0;
		}
		// A rule with several conditions: remember which have held (AND), in one of two partial slots.
		for (int k = 0; k < 2; ++k) {
			if (f.partial_rule[k] == pr.index || f.partial_rule[k] == no_rule) {
				f.partial_rule[k] = pr.index;
				f.partial_bits[k] |= ref.bit;
				if (f.partial_bits[k] == pr.all_bits)
					x.best = pr.index;
				return 0;
			}
		}
		x.c->partials_full++;
		return 0;
	}

	static hs_scratch* hs(scratch& s) { return s.hs_; }
	static hs_stream* take(scratch& s) { return s.take_stream(); }
	static void give(scratch& s, hs_stream* st) { s.give_stream(st); }
	static const hs_database* block_db(const database& d) { return d.block_db_; }
	static const hs_database* name_db(const database& d, rules::payload_kind k) { return d.name_db(k); }
};

flow_streams::flow_streams(uint32_t capacity) : capacity_(capacity), slots_(new flow_slot[size_t(capacity) + 1])
{
	for (uint32_t i = 0; i <= capacity_; ++i) {
		slots_[i] = flow_slot{};
		slots_[i].matched = no_rule;
		slots_[i].partial_rule[0] = slots_[i].partial_rule[1] = no_rule;
	}
}

namespace {

// Gives the slot's streams back to the pool of the current database; streams of an older database are
// forgotten (they belong to the old scratch, which closes them when it is freed).
void release(scratch& s, flow_slot& f)
{
	for (auto*& st : f.stream) {
		if (st && f.db_serial == s.db().serial())
			scan_access::give(s, st);
		st = nullptr;
	}
}

} // namespace

void flow_streams::begin(scratch& s, uint32_t flow_index, const plan& pl, const packet::parsed& opener,
                         rules::direction dir)
{
	flow_slot& f = slots_[flow_index];
	release(s, f);
	f = flow_slot{};
	f.matched = no_rule;
	f.partial_rule[0] = f.partial_rule[1] = no_rule;
	f.db_serial = s.db().serial();
	f.st = state::idle;
	if (!pl.inspect() || s.db().empty() || (opener.proto != 6 && opener.proto != 17))
		return;
	f.first = pl.first;
	f.limit = pl.limit;
	f.direction = uint8_t(dir);
	f.opener_tcp_flags = opener.tcp_flags;
	f.st = state::inspecting;
	counters_.flows_inspected++;
}

void flow_streams::end(scratch& s, uint32_t flow_index)
{
	flow_slot& f = slots_[flow_index];
	release(s, f);
	if (f.st == state::inspecting)
		f.st = state::finished;
}

result flow_streams::status(uint32_t flow_index) const
{
	const flow_slot& f = slots_[flow_index];
	return {f.st, f.matched, false};
}

result flow_streams::scan(scratch& s, uint32_t flow_index, const packet::parsed& p, const uint8_t* frame,
                          bool from_opener)
{
	flow_slot& f = slots_[flow_index];
	if (f.st != state::inspecting)
		return {f.st, f.matched, false};
	const database& db = s.db();
	if (f.db_serial != db.serial()) {
		release(s, f);  // forgets them: another database's pool
		f.st = state::finished;
		counters_.ruleset_changed++;
		return {f.st, f.matched, false};
	}
	const int d = from_opener ? 0 : 1;
	const uint8_t stopped = d ? flag_stopped1 : flag_stopped0;
	const uint8_t seq_known = d ? flag_seq_known1 : flag_seq_known0;
	if (f.dir_flags & stopped)
		return {f.st, f.matched, false};

	scan_access::match_ctx ctx{&db, &f, tuple_of(p), no_rule, &counters_};
	if (!from_opener) {
		std::swap(ctx.tuple.src, ctx.tuple.dst);
		std::swap(ctx.tuple.sport, ctx.tuple.dport);
	}
	ctx.tuple.tcp_flags = f.opener_tcp_flags;
	hs_scratch* hs = scan_access::hs(s);

	const uint8_t* data = frame + p.payload_offset;
	uint32_t len = p.payload_length;
	bool stop = false, ended = false;
	if (p.proto == 6) {
		const bool syn = p.tcp_flags & 0x02;
		const uint32_t data_seq = p.tcp_seq + (syn ? 1 : 0);
		if (syn || (!(f.dir_flags & seq_known) && len)) {
			f.next_seq[d] = data_seq;
			f.dir_flags |= seq_known;
		}
		if (len) {
			const int32_t ahead = int32_t(data_seq - f.next_seq[d]);
			if (ahead < 0 && int64_t(ahead) + len <= 0) {
				counters_.retransmits++;  // already scanned; the receiver keeps its first copy too
				len = 0;
			} else if (ahead != 0) {
				counters_.out_of_order++;  // a gap, or new bytes overlapping scanned ones
				len = 0;
				stop = true;
			}
		}
		ended = p.tcp_flags & 0x05;  // FIN or RST
	}
	if (len) {
		const uint32_t room = s.config().budget - f.inspected[d];
		const uint32_t n = len < room ? len : room;
		hs_error_t e = HS_SUCCESS;
		if (p.proto == 6) {
			if (!f.stream[d])
				f.stream[d] = scan_access::take(s);
			if (!f.stream[d]) {
				counters_.no_stream++;
				stop = true;
			} else {
				e = hs_scan_stream(f.stream[d], reinterpret_cast<const char*>(data), n, 0, hs, scan_access::on_match, &ctx);
			}
			f.next_seq[d] += len;
		} else if (const hs_database* bdb = scan_access::block_db(db)) {
			e = hs_scan(bdb, reinterpret_cast<const char*>(data), n, 0, hs, scan_access::on_match, &ctx);
		}
		if (e != HS_SUCCESS) {
			counters_.scan_errors++;
			stop = true;
		}
		counters_.packets_scanned++;
		counters_.bytes_scanned += n;
		f.inspected[d] += n;
		if (f.inspected[d] >= s.config().budget) {
			counters_.budget_spent++;
			stop = true;
		}
		// Names come from the opener's first payload: ClientHello, request line and headers, query.
		if (from_opener && !(f.dir_flags & flag_names_tried)) {
			f.dir_flags |= flag_names_tried;
			char name[max_name_bytes];
			size_t nl = 0;
			rules::payload_kind kind = rules::payload_kind::dns_query;
			if (p.proto == 17) {
				if (scan_access::name_db(db, kind))
					nl = dns_qname(data, len, name, sizeof name);
			} else if (len && data[0] == 22) {
				kind = rules::payload_kind::sni;
				if (scan_access::name_db(db, kind))
					nl = tls_sni(data, len, name, sizeof name);
			} else {
				kind = rules::payload_kind::http_host;
				if (scan_access::name_db(db, kind))
					nl = http_host(data, len, name, sizeof name);
			}
			if (nl) {
				counters_.names[kind == rules::payload_kind::sni ? 0 : kind == rules::payload_kind::http_host ? 1 : 2]++;
				if (hs_scan(scan_access::name_db(db, kind), name, unsigned(nl), 0, hs, scan_access::on_match, &ctx) !=
				    HS_SUCCESS)
					counters_.scan_errors++;
			}
		}
	}
	if (ended) {
		// End of this direction's stream: patterns anchored at the end ($) match now.
		if (f.stream[d] && hs_reset_stream(f.stream[d], 0, hs, scan_access::on_match, &ctx) != HS_SUCCESS)
			counters_.scan_errors++;
		counters_.stream_ended++;
		stop = true;
	}
	if (stop) {
		f.dir_flags |= stopped;
		if (f.stream[d]) {
			scan_access::give(s, f.stream[d]);
			f.stream[d] = nullptr;
		}
	}
	if (ctx.best != no_rule) {
		f.matched = ctx.best;
		f.st = state::matched;
		release(s, f);
		counters_.decided++;
		return {f.st, f.matched, true};
	}
	// UDP has no end of stream: its flows finish at the budget (or at end()).
	if ((f.dir_flags & (flag_stopped0 | flag_stopped1)) == (flag_stopped0 | flag_stopped1)) {
		f.st = state::finished;
		release(s, f);
	}
	return {f.st, f.matched, false};
}

} // namespace portcullis::inspect
