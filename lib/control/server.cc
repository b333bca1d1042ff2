#include "control/server.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "rules/tuple.h"

namespace portcullis::control {
namespace {

using json = nlohmann::json;
using clock = std::chrono::steady_clock;

std::string errno_text() { return std::strerror(errno); }

// One response line. Rule files are bytes, not UTF-8, and rule texts and diagnostics quote them: what is
// not UTF-8 becomes U+FFFD instead of an exception from dump() that would end the daemon's control loop.
std::string printed(const json& response)
{
	return response.dump(-1, ' ', false, json::error_handler_t::replace);
}

json ok_response()
{
	return {{"v", protocol_version}, {"ok", true}};
}

// "tcp", "udp", "icmp", "icmp6" or the number: the names the CLI and the flow filter use.
std::string proto_name(uint8_t p)
{
	switch (p) {
	case 6: return "tcp";
	case 17: return "udp";
	case 1: return "icmp";
	case 58: return "icmp6";
	default: return std::to_string(p);
	}
}

// Supplementary groups of a process, from the "Groups:" line of /proc/<pid>/status.
std::vector<gid_t> supplementary_groups(pid_t pid)
{
	std::vector<gid_t> out;
	std::ifstream in("/proc/" + std::to_string(pid) + "/status");
	for (std::string line; std::getline(in, line);) {
		if (line.rfind("Groups:", 0) != 0)
			continue;
		std::istringstream words(line.substr(7));
		for (unsigned long g; words >> g;)
			out.push_back(gid_t(g));
		break;
	}
	return out;
}

std::optional<gid_t> resolve_group(const std::string& name)
{
	if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos)
		return gid_t(std::stoul(name));
	std::vector<char> buf(16384);
	group g{};
	group* found = nullptr;
	if (getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found) != 0 || !found)
		return std::nullopt;
	return found->gr_gid;
}

double tsc_seconds(uint64_t ticks) { return double(ticks) / double(rte_get_tsc_hz()); }

json location(const rules::source_location& l)
{
	return {{"file", l.file}, {"line", l.line}, {"column", l.column}};
}

json rule_summary(const rules::rule& r, uint32_t index)
{
	json j = location(r.loc);
	j["index"] = index;
	j["text"] = r.text;
	j["action"] = rules::action_name(r.act);
	j["log"] = r.log;
	j["counter"] = r.counter;
	json dirs = json::array();
	if (r.in)
		dirs.push_back("in");
	if (r.out)
		dirs.push_back("out");
	j["directions"] = dirs;
	return j;
}

uint32_t classify_one(const classify::classifier& c, const rules::flow_tuple& f)
{
	uint32_t result = classify::no_match;
	if (f.v6) {
		classify::key_v6 k{};
		k.src = f.src, k.dst = f.dst, k.sport = f.sport, k.dport = f.dport, k.proto = f.proto, k.tcp_flags = f.tcp_flags;
		c.classify(&k, 1, &result);
	} else {
		classify::key_v4 k{};
		k.src = uint32_t(f.src), k.dst = uint32_t(f.dst), k.sport = f.sport, k.dport = f.dport, k.proto = f.proto,
		k.tcp_flags = f.tcp_flags;
		c.classify(&k, 1, &result);
	}
	return result;
}

} // namespace

server::server(runtime& rt, server_config config) : rt_(rt), config_(std::move(config))
{
	const auto gid = resolve_group(config_.group);
	if (!gid) {
		error_ = "control.group '" + config_.group + "' is not a known group";
		return;
	}
	gid_ = *gid;
	const std::string& path = config_.socket_path;
	sockaddr_un addr{};
	addr.sun_family = AF_UNIX;
	if (path.empty() || path.size() >= sizeof addr.sun_path) {
		error_ = "control.socket '" + path + "' is empty or longer than " + std::to_string(sizeof addr.sun_path - 1) +
		         " bytes";
		return;
	}
	std::memcpy(addr.sun_path, path.data(), path.size());
	const bool root = geteuid() == 0;

	// The directory: created for the group if missing; an existing one is the operator's (systemd's
	// RuntimeDirectory=, say) and is left alone.
	if (const auto slash = path.rfind('/'); slash != std::string::npos && slash > 0) {
		const std::string dir = path.substr(0, slash);
		struct stat st{};
		if (::stat(dir.c_str(), &st) != 0) {
			if (::mkdir(dir.c_str(), 0750) != 0) {
				error_ = "cannot create " + dir + ": " + errno_text();
				return;
			}
			// mkdir's mode went through the umask; the group needs r-x, so set it exactly.
			if (::chmod(dir.c_str(), 0750) != 0 || (root && ::chown(dir.c_str(), 0, gid_) != 0)) {
				error_ = "cannot set owner and mode of " + dir + ": " + errno_text();
				return;
			}
		} else if (!S_ISDIR(st.st_mode)) {
			error_ = dir + " is not a directory";
			return;
		}
	}

	// A socket file left by a daemon that died is removed; one that answers belongs to a running daemon.
	struct stat st{};
	if (::lstat(path.c_str(), &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			error_ = path + " exists and is not a socket; not replacing it";
			return;
		}
		const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		const bool live = probe >= 0 && ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
		if (probe >= 0)
			::close(probe);
		if (live) {
			error_ = path + " is in use: is another portcullisd running?";
			return;
		}
		::unlink(path.c_str());
	}

	listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (listen_fd_ < 0) {
		error_ = "socket: " + errno_text();
		return;
	}
	// Linux gives the socket file the mode of the socket's inode (less the umask): setting it before
	// bind() means the file never exists with a wider mode than 0660.
	::fchmod(listen_fd_, 0660);
	if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
		error_ = "cannot bind " + path + ": " + errno_text();
		::close(listen_fd_);
		listen_fd_ = -1;
		return;
	}
	if (::chmod(path.c_str(), 0660) != 0 || (root && ::chown(path.c_str(), 0, gid_) != 0)) {
		error_ = "cannot set owner and mode of " + path + ": " + errno_text();
		::unlink(path.c_str());
		::close(listen_fd_);
		listen_fd_ = -1;
		return;
	}
	if (::lstat(path.c_str(), &st) == 0) {
		socket_dev_ = st.st_dev;
		socket_ino_ = st.st_ino;
	}
	if (::listen(listen_fd_, 16) != 0) {
		error_ = "cannot listen on " + path + ": " + errno_text();
		::unlink(path.c_str());
		::close(listen_fd_);
		listen_fd_ = -1;
		return;
	}
}

server::~server()
{
	for (auto& c : connections_)
		::close(c->fd);
	connections_.clear();
	if (listen_fd_ >= 0) {
		::close(listen_fd_);
		// Remove the file only if it is still the one we bound: a second daemon may have replaced it.
		struct stat st{};
		if (::lstat(config_.socket_path.c_str(), &st) == 0 && st.st_dev == socket_dev_ && st.st_ino == socket_ino_)
			::unlink(config_.socket_path.c_str());
	}
}

void server::poll(int timeout_ms)
{
	if (listen_fd_ < 0)
		return;
	auto now = clock::now();
	if (now - last_sample_ >= std::chrono::seconds(1))
		sample_load();
	// Wake up for the nearest deadline too.
	int wait = std::max(0, timeout_ms);
	for (const auto& c : connections_) {
		const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(c->deadline - now).count();
		wait = std::min<int>(wait, int(std::max<int64_t>(0, left)));
	}
	std::vector<pollfd> fds;
	fds.reserve(connections_.size() + 1);
	fds.push_back({listen_fd_, POLLIN, 0});
	for (const auto& c : connections_)
		fds.push_back({c->fd, short((c->closing ? 0 : POLLIN) | (c->out_sent < c->out.size() ? POLLOUT : 0)), 0});
	const int ready = ::poll(fds.data(), nfds_t(fds.size()), wait);
	if (ready < 0 && errno != EINTR)
		return;

	std::vector<bool> drop(connections_.size(), false);
	for (size_t i = 0; i < connections_.size(); ++i) {
		connection& c = *connections_[i];
		const short ev = fds[i + 1].revents;
		if ((ev & (POLLIN | POLLHUP | POLLERR)) && !c.closing && !read_ready(c))
			drop[i] = true;
		if (!drop[i] && (ev & (POLLOUT | POLLERR)) && !write_ready(c))
			drop[i] = true;
		if (!drop[i] && c.closing && c.out_sent >= c.out.size())
			drop[i] = true;
	}
	now = clock::now();
	for (size_t i = 0; i < connections_.size(); ++i)
		if (!drop[i] && now >= connections_[i]->deadline) {
			++counters_.timeouts;
			drop[i] = true;
		}
	for (size_t i = connections_.size(); i-- > 0;)
		if (drop[i]) {
			::close(connections_[i]->fd);
			connections_.erase(connections_.begin() + long(i));
		}
	if (fds[0].revents & POLLIN)
		accept_ready();
}

void server::accept_ready()
{
	// Bounded: a flood of connects cannot keep the control loop here.
	for (int n = 0; n < 64; ++n) {
		const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		++counters_.accepted;
		auto c = std::make_unique<connection>();
		c->fd = fd;
		c->deadline = clock::now() + std::chrono::milliseconds(config_.read_deadline_ms);
		ucred cred{};
		socklen_t len = sizeof cred;
		bool allowed = false;
		if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
			c->who.pid = cred.pid;
			c->who.uid = cred.uid;
			c->who.gid = cred.gid;
			c->who.groups = supplementary_groups(cred.pid);
			allowed = cred.uid == 0 || cred.uid == geteuid() || cred.gid == gid_ ||
			          std::find(c->who.groups.begin(), c->who.groups.end(), gid_) != c->who.groups.end();
		}
		if (!allowed) {
			++counters_.refused;
			c->out = error_response(error_code::permission_denied,
			                        "permission denied: uid " + std::to_string(cred.uid) +
			                            " is neither root nor a member of the control group '" + config_.group + "'")
			             .dump() +
			         "\n";
			c->closing = true;
		} else if (connections_.size() >= config_.max_connections) {
			++counters_.busy;
			c->out = error_response(error_code::busy, "too many control connections; try again").dump() + "\n";
			c->closing = true;
		}
		if (c->closing) {
			c->deadline = clock::now() + std::chrono::milliseconds(config_.write_deadline_ms);
			if (!write_ready(*c) || c->out_sent >= c->out.size()) {
				// Said all there is to say (or cannot): half-close so the peer reads the answer, then EOF.
				::shutdown(fd, SHUT_WR);
				::close(fd);
				continue;
			}
		}
		connections_.push_back(std::move(c));
	}
}

bool server::read_ready(connection& c)
{
	// Read what is there, but never more than one request's worth past the bound.
	char chunk[65536];
	for (;;) {
		const ssize_t n = ::recv(c.fd, chunk, sizeof chunk, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return false;
		}
		if (n == 0) {
			// The peer is done sending: answer what is complete, then close once written.
			serve_lines(c);
			c.closing = true;
			return write_ready(c);
		}
		c.in.append(chunk, size_t(n));
		// Leave the rest in the kernel until what we hold is answered: memory stays bounded.
		if (c.in.size() > config_.max_request_bytes + 1)
			break;
	}
	serve_lines(c);
	return write_ready(c);
}

void server::serve_lines(connection& c)
{
	size_t start = 0;
	while (!c.closing) {
		const auto nl = c.in.find('\n', std::max(start, c.scanned));
		if (nl == std::string::npos) {
			c.scanned = c.in.size();
			if (c.in.size() - start > config_.max_request_bytes) {
				++counters_.protocol_errors;
				c.out += error_response(error_code::too_large,
				                        "request larger than " + std::to_string(config_.max_request_bytes) + " bytes")
				             .dump() +
				         "\n";
				c.closing = true;
			}
			break;
		}
		std::string line = c.in.substr(start, nl - start);
		start = nl + 1;
		if (line.size() > config_.max_request_bytes) {
			++counters_.protocol_errors;
			c.out += error_response(error_code::too_large,
			                        "request larger than " + std::to_string(config_.max_request_bytes) + " bytes")
			             .dump() +
			         "\n";
			c.closing = true;
			break;
		}
		if (line.find_first_not_of(" \t\r") == std::string::npos)
			continue;
		bool close = false;
		c.out += printed(handle(line, c.who, close)) + "\n";
		if (close)
			c.closing = true;
	}
	c.in.erase(0, start);
	c.scanned = c.scanned > start ? c.scanned - start : 0;
	// The clock restarts only when a request is complete: a client dribbling bytes cannot hold a
	// connection open past the read deadline.
	if (start > 0 || c.closing) {
		const int ms = c.out_sent < c.out.size() ? config_.write_deadline_ms : config_.read_deadline_ms;
		c.deadline = clock::now() + std::chrono::milliseconds(ms);
	}
}

bool server::write_ready(connection& c)
{
	while (c.out_sent < c.out.size()) {
		const ssize_t n = ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return true;
			return false;
		}
		c.out_sent += size_t(n);
	}
	if (!c.out.empty()) {
		// All answered: the next request has the read deadline from now.
		c.out.clear();
		c.out_sent = 0;
		if (!c.closing)
			c.deadline = clock::now() + std::chrono::milliseconds(config_.read_deadline_ms);
	}
	return true;
}

nlohmann::json server::handle_line(const std::string& line)
{
	bool close = false;
	return handle(line, peer{}, close);
}

json server::handle(const std::string& line, const peer& who, bool& close)
{
	++counters_.requests;
	decode_result d = decode_request(line);
	if (!d.req) {
		++counters_.failed;
		if (d.protocol_error) {
			++counters_.protocol_errors;
			close = true;
		}
		return std::move(d.error);
	}
	const parsed_request& req = *d.req;
	json resp;
	try {
		switch (req.cmd) {
		case command::push: resp = cmd_push(req, who); break;
		case command::rules: resp = cmd_rules(); break;
		case command::flows: resp = cmd_flows(req); break;
		case command::flush_flows: resp = cmd_flush_flows(); break;
		case command::stats: resp = cmd_stats(); break;
		case command::explain: resp = cmd_explain(req); break;
		}
	} catch (const std::exception& e) {
		resp = error_response(error_code::failed, std::string("internal error: ") + e.what());
	}
	if (resp.value("ok", false) == false)
		++counters_.failed;
	if (d.id)
		resp["id"] = std::move(*d.id);
	return resp;
}

// Where the active rules came from; `configured` is what a restart or SIGHUP loads (runtime.h).
static json source_of(const runtime& rt)
{
	return {{"origin", std::string(origin_name(rt.source().origin))}, {"file", rt.source().file},
	        {"since_unix", rt.source().since_unix}, {"configured", rt.configured_file()},
	        {"revision", rt.source().revision}};
}

json server::cmd_push(const parsed_request& req, const peer& who)
{
	auto readable = [&](const std::string& file) {
		if (who.uid == 0)
			return true;
		struct stat st{};
		if (::stat(file.c_str(), &st) != 0)
			return true;  // the parser reports it missing; there is nothing to leak
		if (st.st_uid == who.uid)
			return (st.st_mode & S_IRUSR) != 0;
		if (st.st_gid == who.gid || std::find(who.groups.begin(), who.groups.end(), st.st_gid) != who.groups.end())
			return (st.st_mode & S_IRGRP) != 0;
		return (st.st_mode & S_IROTH) != 0;
	};
	const uint64_t before = rt_.policy().generation;
	swap_report report;
	if (!req.path.empty()) {
		if (!readable(req.path))
			return error_response(error_code::not_readable, "push: " + req.path + " is not readable by uid " +
			                                                    std::to_string(who.uid));
		report = rt_.push_file(req.path, config_.parse);
	} else {
		report = rt_.push_text(req.text, req.name, config_.parse);
	}
	if (!report.ok) {
		json errors = json::array();
		for (const auto& d : report.errors) {
			json e = location(d.loc);
			e["message"] = readable(d.loc.file) ? d.message : "error in a file the requesting user cannot read";
			errors.push_back(e);
		}
		const std::string why = !report.errors.empty()
		                            ? std::to_string(report.errors.size()) +
		                                  (report.errors.size() == 1 ? " error" : " errors") + " in the rule set"
		                            : report.abandoned ? report.error : "the rule set does not compile: " + report.error;
		json r = error_response(report.errors.empty() ? error_code::failed : error_code::rules,
		                        why + "; the running rules (generation " + std::to_string(report.generation) + ") stay");
		r["errors"] = errors;
		r["generation"] = report.generation;
		return r;
	}
	json r = ok_response();
	r["generation"] = report.generation;
	r["previous_generation"] = before;
	r["rules"] = report.rules;
	r["compile_ms"] = report.compile_ms;
	r["quiesce_us"] = report.quiesce_us;
	r["digest"] = report.digest;
	r["source"] = source_of(rt_);
	return r;
}

json server::cmd_rules()
{
	const dataplane::compiled_policy& pol = rt_.policy();
	const uint64_t now = rte_rdtsc();
	json list = json::array();
	for (uint32_t i = 0; i < pol.rules.rules.size(); ++i) {
		json j = rule_summary(pol.rules.rules[i], i);
		const rule_totals t = rt_.rule_counters(i);
		j["packets"] = t.packets;
		j["bytes"] = t.bytes;
		if (t.last_hit_tsc && now >= t.last_hit_tsc)
			j["last_hit_seconds_ago"] = tsc_seconds(now - t.last_hit_tsc);
		else
			j["last_hit_seconds_ago"] = nullptr;
		list.push_back(j);
	}
	json r = ok_response();
	r["generation"] = pol.generation;
	r["default_in"] = rules::action_name(pol.rules.default_in);
	r["default_out"] = rules::action_name(pol.rules.default_out);
	r["files"] = pol.rules.files;
	r["digest"] = rt_.digest();
	r["source"] = source_of(rt_);
	r["rules"] = list;
	return r;
}

json server::cmd_flows(const parsed_request& req)
{
	const flow_filter& filter = req.filter;
	const std::optional<uint8_t>& proto = filter.proto;
	const std::optional<address_prefix>& where = filter.address;
	const std::optional<uint16_t>& port = filter.port;
	const std::string state = filter.state.value_or("");
	if (filter.state) {
		bool known = false;
		for (uint32_t s = 0; s < flow::flow_state_count; ++s) {
			const std::string n(flow::to_string(flow::flow_state(s)));
			known |= n == state || (n.size() > state.size() && n.ends_with("_" + state));
		}
		if (!known)
			return error_response(error_code::failed,
			                      "flows: unknown state '" + state + "' (e.g. tcp_established, established, udp_new)");
	}
	const uint64_t limit = std::min<uint64_t>(req.limit.value_or(config_.default_flow_limit), config_.max_flow_limit);

	json list = json::array();
	uint64_t matched = 0, live = 0;
	const uint64_t now = rte_rdtsc();
	auto& workers = rt_.workers();
	for (uint32_t w = 0; w < workers.size(); ++w) {
		const double hz = double(workers[w]->config().flows.tsc_hz);
		workers[w]->flows().for_each([&](const flow::flow_entry& live_entry) {
			++live;
			// The owner may be updating the entry: work from one copy so the fields agree at least roughly.
			flow::flow_entry e;
			std::memcpy(static_cast<void*>(&e), &live_entry, sizeof e);
			const bool v6 = e.key.family == 6;
			const bool b_opened = e.opener_is_b != 0;
			const u128 src = b_opened ? e.key.b() : e.key.a(), dst = b_opened ? e.key.a() : e.key.b();
			const uint16_t sport = b_opened ? e.key.port_b : e.key.port_a;
			const uint16_t dport = b_opened ? e.key.port_a : e.key.port_b;
			const std::string st(flow::to_string(e.state));
			if (proto && e.key.proto != *proto)
				return;
			if (where && !where->contains(v6, src) && !where->contains(v6, dst))
				return;
			const bool has_ports = e.key.proto == 6 || e.key.proto == 17;
			if (port && (!has_ports || (sport != *port && dport != *port)))
				return;
			if (!state.empty() && st != state && !st.ends_with("_" + state))
				return;
			++matched;
			if (list.size() >= limit)
				return;
			json j;
			j["worker"] = w;
			j["proto"] = proto_name(e.key.proto);
			j["family"] = v6 ? 6 : 4;
			j["src"] = rules::format_address(v6, v6 ? src : u128(uint32_t(src)));
			j["dst"] = rules::format_address(v6, v6 ? dst : u128(uint32_t(dst)));
			j["sport"] = sport;
			j["dport"] = dport;
			j["direction"] = e.opener_direction ? "out" : "in";
			j["state"] = st;
			j["age_s"] = now > e.created ? double(now - e.created) / hz : 0.0;
			j["idle_s"] = now > e.last_seen ? double(now - e.last_seen) / hz : 0.0;
			j["packets"] = {e.packets[0], e.packets[1]};
			j["bytes"] = {e.bytes[0], e.bytes[1]};
			j["rule"] = e.rule_id;
			j["rule_generation"] = e.ruleset_generation;
			list.push_back(std::move(j));
		});
	}
	json r = ok_response();
	r["live"] = live;
	r["matched"] = matched;
	r["listed"] = list.size();
	r["truncated"] = matched > list.size();
	r["flows"] = std::move(list);
	return r;
}

json server::cmd_flush_flows()
{
	json r = ok_response();
	r["flushed"] = rt_.flush_flows();
	return r;
}

void server::sample_load()
{
	const auto& workers = rt_.workers();
	load_.resize(workers.size());
	for (size_t w = 0; w < workers.size(); ++w) {
		const auto& c = workers[w]->counters();
		const uint64_t busy = c.busy_tsc - load_[w].busy, idle = c.idle_tsc - load_[w].idle;
		load_[w].recent_ratio = busy + idle ? double(busy) / double(busy + idle) : 0.0;
		load_[w].busy = c.busy_tsc;
		load_[w].idle = c.idle_tsc;
	}
	last_sample_ = clock::now();
}

json server::cmd_stats()
{
	const auto& workers = rt_.workers();
	dataplane::worker_counters t{};
	std::set<uint16_t> ports;
	uint64_t live = 0, capacity = 0, inserts = 0, evicted = 0, refused_full = 0, refused_buckets = 0, flushed = 0;
	uint64_t expired[flow::flow_state_count] = {};
	json per_worker = json::array();
	if (load_.size() != workers.size())
		sample_load();
	for (size_t w = 0; w < workers.size(); ++w) {
		const auto& c = workers[w]->counters();
		dataplane::accumulate(t, c);
		for (const auto& q : workers[w]->config().queues) {
			ports.insert(q.port);
			ports.insert(q.tx_port[0]);
			ports.insert(q.tx_port[1]);
		}
		const auto& table = workers[w]->flows();
		const auto& tc = table.counters();
		live += table.size();
		capacity += table.capacity();
		inserts += tc.inserts.load(std::memory_order_relaxed);
		evicted += tc.evicted_embryonic.load(std::memory_order_relaxed);
		refused_full += tc.refused_full.load(std::memory_order_relaxed);
		refused_buckets += tc.refused_buckets.load(std::memory_order_relaxed);
		flushed += tc.flushed.load(std::memory_order_relaxed);
		for (uint32_t s = 0; s < flow::flow_state_count; ++s)
			expired[s] += tc.expired[s].load(std::memory_order_relaxed);
		const uint64_t all = c.busy_tsc + c.idle_tsc;
		per_worker.push_back({{"worker", w},
		                      {"busy_ratio", load_[w].recent_ratio},
		                      {"busy_ratio_total", all ? double(c.busy_tsc) / double(all) : 0.0},
		                      {"polls", c.polls},
		                      {"idle_polls", c.idle_polls},
		                      {"flows", table.size()}});
	}

	json port_list = json::array();
	for (uint16_t p : ports) {
		if (p >= dataplane::max_ports)
			continue;
		char name[RTE_ETH_NAME_MAX_LEN] = {};
		if (rte_eth_dev_get_name_by_port(p, name) != 0)
			std::snprintf(name, sizeof name, "port%u", unsigned(p));
		port_list.push_back({{"port", p},
		                     {"name", name},
		                     {"rx_packets", t.rx_packets[p]},
		                     {"rx_bytes", t.rx_bytes[p]},
		                     {"tx_packets", t.tx_packets[p]},
		                     {"tx_bytes", t.tx_bytes[p]}});
	}
	static const char* verdicts[] = {"forwarded", "dropped", "rejected"};
	json traffic = json::object();
	for (int d = 0; d < 2; ++d)
		for (int v = 0; v < 3; ++v)
			traffic[d == 0 ? "in" : "out"][verdicts[v]] = {{"packets", t.packets[d][v]}, {"bytes", t.bytes[d][v]}};
	json drops = json::object();
	for (size_t r = 0; r < dataplane::drop_reason_count; ++r)
		drops[std::string(dataplane::to_string(dataplane::drop_reason(r)))] = t.drops[r];
	json malformed = json::object();
	for (size_t r = 1; r < packet::drop_reason_count; ++r)
		malformed[std::string(packet::to_string(packet::drop_reason(r)))] = t.parse.by_reason[r];
	json kinds = json::object();
	for (size_t k = 0; k < packet::packet_kind_count; ++k)
		kinds[std::string(packet::to_string(packet::packet_kind(k)))] = t.parse.by_kind[k];
	json expired_by_state = json::object();
	uint64_t expired_total = 0;
	for (uint32_t s = 0; s < flow::flow_state_count; ++s) {
		expired_by_state[std::string(flow::to_string(flow::flow_state(s)))] = expired[s];
		expired_total += expired[s];
	}

	json r = ok_response();
	r["ports"] = port_list;
	r["traffic"] = traffic;
	r["parsed"] = {{"packets", t.parse.packets}, {"by_kind", kinds}};
	r["drops"] = drops;
	r["malformed"] = malformed;
	r["flows"] = {{"live", live},
	              {"capacity", capacity},
	              {"opened", t.flows_opened},
	              {"inserted", inserts},
	              {"evicted_embryonic", evicted},
	              {"refused_full", refused_full},
	              {"refused_buckets", refused_buckets},
	              {"flushed", flushed},
	              {"expired", expired_total},
	              {"expired_by_state", expired_by_state},
	              {"reply_packets", t.reply_packets},
	              {"related_icmp", t.related_icmp},
	              {"rejects_sent", t.rejects_sent}};
	r["rules"] = {{"generation", rt_.policy().generation},
	              {"count", rt_.policy().rules.rules.size()},
	              {"swaps_ok", rt_.swaps_ok()},
	              {"swaps_failed", rt_.swaps_failed()},
	              {"last_swap_unix", rt_.last_swap_unix()},
	              {"last_compile_ms", rt_.last_compile_seconds() * 1000},
	              {"last_quiesce_us", rt_.last_quiesce_us()},
	              {"digest", rt_.digest()},
	              {"source", source_of(rt_)}};
	if (config_.rules_feed) {
		const rules_feed_status f = config_.rules_feed();
		r["rules_watch"] = {{"url", f.url}, {"connected", f.connected}, {"state", f.state}, {"revision", f.revision}};
	}
	r["workers"] = per_worker;
	r["control"] = {{"accepted", counters_.accepted},
	                {"refused", counters_.refused},
	                {"busy", counters_.busy},
	                {"requests", counters_.requests},
	                {"failed", counters_.failed},
	                {"protocol_errors", counters_.protocol_errors},
	                {"timeouts", counters_.timeouts}};
	return r;
}

json server::cmd_explain(const parsed_request& req)
{
	const rules::flow_tuple& f = req.flow;
	const dataplane::compiled_policy& pol = rt_.policy();
	const auto& rs = pol.rules;
	// The data path's own classifier decides; the rule-by-rule walk explains and double-checks it.
	const uint32_t id = classify_one(*pol.classifier[size_t(f.dir)], f);
	json skipped = json::array();
	uint32_t reference = classify::no_match;
	for (uint32_t i : rules::rules_for(rs, f.dir)) {
		const auto e = rules::explain(rs.rules[i], f);
		if (e.matched) {
			reference = i;
			break;
		}
		json s = rule_summary(rs.rules[i], i);
		s["reason"] = e.reasons.empty() ? "" : e.reasons.back();
		skipped.push_back(std::move(s));
	}
	json r = ok_response();
	r["flow"] = rules::format(f);
	r["direction"] = rules::direction_name(f.dir);
	r["generation"] = pol.generation;
	if (id == classify::no_match) {
		r["verdict"] = rules::action_name(rs.default_for(f.dir));
		r["default"] = true;
		r["rule"] = nullptr;
	} else {
		const auto& rule = rs.rules[id];
		r["verdict"] = rules::action_name(rule.act);
		r["default"] = false;
		r["rule"] = rule_summary(rule, id);
		r["reasons"] = rules::explain(rule, f).reasons;
	}
	r["skipped"] = std::move(skipped);
	if (id != reference) {
		r = error_response(error_code::failed, "internal error: the live classifier and the rule-by-rule reference disagree");
		r["classifier_rule"] = id == classify::no_match ? json(nullptr) : json(id);
		r["reference_rule"] = reference == classify::no_match ? json(nullptr) : json(reference);
	}
	return r;
}

} // namespace portcullis::control
