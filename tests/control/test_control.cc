// The control socket end to end: a runtime with one worker between two net_ring ports, the server on a
// socket in a temporary directory, the client library, forked clients running as nobody, and the real
// CLI binary. Packets through the worker prove which rules enforce.
//
// Threads: the test thread is the daemon's control thread (it runs server::poll and every runtime call)
// and, between requests, the worker's thread (poll_once); the worker is never online in the QSBR
// variable, so a push does not wait for it. Clients run on a std::async thread or in a child process.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <fcntl.h>
#include <grp.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "control/protocol.h"
#include "control/server.h"
#include "eal.h"
#include "frames.h"
#include "ring_ports.h"

extern char** environ;

using namespace portcullis;
using json = nlohmann::json;
using bytes = packet::test::bytes;
using packet::test::tcp4;
namespace fs = std::filesystem;

namespace {

constexpr int outside = 0, inside = 1;
constexpr uint32_t client_host = 0xC6120005;  // 198.18.0.5
constexpr uint32_t server_host = 0xC612010A;  // 198.18.1.10
constexpr uint8_t S = 0x02, A = 0x10, SA = 0x12;
constexpr uid_t nobody = 65534;
constexpr gid_t nogroup = 65534;

// ---- the EAL and two ring ports, once per process ----

test::ring_ports g_env;

bool bring_up_eal()
{
	if (!test::init_eal())
		return false;
	try {
		g_env = test::make_ring_ports("ctl");
	} catch (const std::exception& e) {
		std::fprintf(stderr, "%s\n", e.what());
		return false;
	}
	return true;
}

std::vector<bytes> drain(int side)
{
	std::vector<bytes> out;
	void* obj;
	while (rte_ring_dequeue(g_env.tx[side], &obj) == 0) {
		auto* m = static_cast<rte_mbuf*>(obj);
		const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
		out.emplace_back(d, d + m->data_len);
		rte_pktmbuf_free(m);
	}
	return out;
}

void write_file(const fs::path& p, const std::string& text, mode_t mode = 0644)
{
	std::ofstream(p) << text;
	::chmod(p.c_str(), mode);
}

const char* v1_rules = "default in drop\ndefault out allow\nallow in tcp to 198.18.1.10 port 22\n"
                       "allow out from 198.18.1.0/24\n";
const char* good_rules = "default in drop\ndefault out allow\ninclude \"web.rules\"\n"
                         "allow in tcp to 198.18.1.10 port 22\nallow out from 198.18.1.0/24\n";
const char* web_rules = "allow in tcp to 198.18.1.10 port 80\n";
const char* broken_rules = "default in drop\nallow in tcp to 198.18.1.10 port 22\n"
                           "allow in tcp to 198.18.1.10 port 99999\n";

// A daemon in miniature: rule files in a temporary directory, the runtime, the server.
struct daemon_fixture {
	fs::path dir;
	fs::path socket;
	std::unique_ptr<control::runtime> rt;
	std::unique_ptr<control::server> srv;

	explicit daemon_fixture(const std::string& group = "root")
	{
		char tmpl[] = "/tmp/portcullis-control-XXXXXX";
		if (!mkdtemp(tmpl))
			throw std::runtime_error("mkdtemp failed");
		dir = tmpl;
		::chmod(dir.c_str(), 0755);  // so that only the socket's own mode keeps others out
		write_file(dir / "good.rules", good_rules);
		write_file(dir / "web.rules", web_rules);
		write_file(dir / "broken.rules", broken_rules);
		for (int side = 0; side < 2; ++side)
			drain(side);

		dataplane::worker_config wc;
		wc.flows.capacity = 1024;
		wc.flows.tsc_hz = rte_get_tsc_hz();
		wc.queues.push_back({g_env.port[outside], 0, 0, {g_env.port[inside], g_env.port[inside]}, 0});
		wc.queues.push_back({g_env.port[inside], 0, 1, {g_env.port[outside], g_env.port[outside]}, 0});
		auto parsed = rules::parse_string(v1_rules, (dir / "v1.rules").string());
		REQUIRE(parsed.rules);
		rt = std::make_unique<control::runtime>(std::vector{wc}, std::move(*parsed.rules), classify::backend::ours);
		REQUIRE(rt->error().empty());

		control::server_config sc;
		socket = dir / "run" / "portcullisd.sock";  // "run" does not exist: the server makes it
		sc.socket_path = socket.string();
		sc.group = group;
		sc.read_deadline_ms = 300;
		sc.max_request_bytes = 1 << 20;
		sc.parse.services_file = "";
		srv = std::make_unique<control::server>(*rt, sc);
		REQUIRE(srv->error() == "");
	}
	~daemon_fixture()
	{
		srv.reset();
		rt.reset();
		for (int side = 0; side < 2; ++side)
			drain(side);
		std::error_code ec;
		fs::remove_all(dir, ec);
	}

	// One frame in on a side, one poll round of the worker: what left on each side.
	struct result {
		std::vector<bytes> to_outside, to_inside;
	};
	result send(int side, const bytes& frame)
	{
		rte_mbuf* m = rte_pktmbuf_alloc(g_env.pool);
		REQUIRE(m);
		std::memcpy(rte_pktmbuf_append(m, uint16_t(frame.size())), frame.data(), frame.size());
		REQUIRE(rte_ring_enqueue(g_env.rx[side], m) == 0);
		// Online for the round only, like worker::run() around its loop: a push must not wait for a worker
		// that is not polling (a quiescent report while offline would make it look online forever).
		rte_rcu_qsbr_thread_online(rt->rcu(), 0);
		rt->workers()[0]->poll_once();
		rte_rcu_qsbr_thread_offline(rt->rcu(), 0);
		return {drain(outside), drain(inside)};
	}
	bool passes_in(uint16_t sport, uint16_t dport)
	{
		return send(outside, tcp4(client_host, sport, server_host, dport, S, 100)).to_inside.size() == 1;
	}

	// Runs fn on another thread while this one serves the socket, as the daemon's control loop would.
	template <class Fn>
	auto serve_while(Fn&& fn)
	{
		auto fut = std::async(std::launch::async, std::forward<Fn>(fn));
		while (fut.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready)
			srv->poll(5);
		return fut.get();
	}
	json ask(const json& req)
	{
		const auto r = serve_while([&] { return control::request(socket.string(), req, 10'000); });
		INFO(r.error);
		REQUIRE(r.status == control::client_status::ok);
		return r.response;
	}
	// Serves until the child exits; returns its exit status.
	int serve_until_exit(pid_t child)
	{
		int status = 0;
		const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
		while (waitpid(child, &status, WNOHANG) == 0) {
			srv->poll(5);
			if (std::chrono::steady_clock::now() > give_up) {
				kill(child, SIGKILL);
				waitpid(child, &status, 0);
				return -1;
			}
		}
		return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	}
};

// Sends raw bytes on one connection; returns everything the server wrote until it closed (or timeout).
std::string raw_exchange(daemon_fixture& d, const std::string& data)
{
	return d.serve_while([&] {
		const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		sockaddr_un addr{};
		addr.sun_family = AF_UNIX;
		std::strcpy(addr.sun_path, d.socket.c_str());
		if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
			::close(fd);
			return std::string("connect failed");
		}
		timeval tv{5, 0};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		(void)!::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
		std::string got;
		char buf[4096];
		for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
			got.append(buf, size_t(n));
		::close(fd);
		return got;
	});
}

// A client process as another user. Everything it needs is prepared before fork(): the child makes only
// system calls (the parent has threads). Exit: 0 the response contains `expect`, 10 it does not,
// 20 connect() was refused with EACCES, 30 anything else.
pid_t spawn_other_user(const std::string& socket_path, uid_t uid, gid_t gid, std::vector<gid_t> groups,
                       const std::string& request, const std::string& expect)
{
	sockaddr_un addr{};
	addr.sun_family = AF_UNIX;
	std::strcpy(addr.sun_path, socket_path.c_str());
	const pid_t pid = fork();
	if (pid != 0)
		return pid;
	if (setgroups(groups.size(), groups.data()) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
		_exit(31);
	const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
	if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
		_exit(errno == EACCES ? 20 : 32);
	(void)!::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
	static char buf[65536];
	size_t got = 0;
	for (ssize_t n; got < sizeof buf && !memchr(buf, '\n', got) && (n = ::recv(fd, buf + got, sizeof buf - got, 0)) > 0;)
		got += size_t(n);
	_exit(memmem(buf, got, expect.data(), expect.size()) ? 0 : 10);
}

// Runs the CLI binary with args, serving the socket meanwhile. Returns exit status; stdout in `out`.
int run_cli(daemon_fixture* d, std::vector<std::string> args, std::string& out, std::string* err = nullptr)
{
	const fs::path out_file = fs::temp_directory_path() / ("portcullis-control-cli-" + std::to_string(getpid()));
	const fs::path err_file = fs::temp_directory_path() / ("portcullis-control-cli-err-" + std::to_string(getpid()));
	args.insert(args.begin(), PORTCULLIS_CLI);
	std::vector<char*> argv;
	for (auto& a : args)
		argv.push_back(a.data());
	argv.push_back(nullptr);
	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (err)
		posix_spawn_file_actions_addopen(&actions, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	pid_t pid;
	REQUIRE(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0);
	posix_spawn_file_actions_destroy(&actions);
	int rc;
	if (d) {
		rc = d->serve_until_exit(pid);
	} else {
		int status = 0;
		waitpid(pid, &status, 0);
		rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	}
	std::ifstream in(out_file);
	std::stringstream ss;
	ss << in.rdbuf();
	out = ss.str();
	fs::remove(out_file);
	if (err) {
		std::ifstream e(err_file);
		std::stringstream es;
		es << e.rdbuf();
		*err = es.str();
		fs::remove(err_file);
	}
	return rc;
}

const json* find_rule(const json& rules_response, int line, const std::string& file_suffix)
{
	for (const auto& r : rules_response["rules"])
		if (r["line"] == line && r["file"].get<std::string>().ends_with(file_suffix))
			return &r;
	return nullptr;
}

} // namespace

TEST_CASE("push swaps rules in, a broken push leaves them, and the live views agree with the traffic")
{
	daemon_fixture d;
	// Generation 1 has no web rule.
	CHECK_FALSE(d.passes_in(40000, 80));

	json r = d.ask({{"cmd", "push"}, {"path", (d.dir / "good.rules").string()}});
	REQUIRE(r["ok"] == true);
	CHECK(r["generation"] == 2);
	CHECK(r["previous_generation"] == 1);
	CHECK(r["rules"] == 3);
	CHECK(r["compile_ms"].get<double>() >= 0);
	CHECK(r["quiesce_us"].get<double>() >= 0);

	// The included web rule now lets a connection in, and its replies out.
	auto syn = d.send(outside, tcp4(client_host, 40000, server_host, 80, S, 100));
	REQUIRE(syn.to_inside.size() == 1);
	REQUIRE(d.send(inside, tcp4(server_host, 80, client_host, 40000, SA, 900, 101)).to_outside.size() == 1);
	REQUIRE(d.send(outside, tcp4(client_host, 40000, server_host, 80, A, 101, 901)).to_inside.size() == 1);

	// A broken file: its errors with file:line:column, and generation 2 still enforcing.
	r = d.ask({{"cmd", "push"}, {"path", (d.dir / "broken.rules").string()}});
	CHECK(r["ok"] == false);
	CHECK(r["code"] == "rules");
	CHECK(r["generation"] == 2);
	REQUIRE(r["errors"].size() == 1);
	CHECK(r["errors"][0]["file"] == (d.dir / "broken.rules").string());
	CHECK(r["errors"][0]["line"] == 3);
	CHECK(r["errors"][0]["column"] == 34);
	CHECK(r["errors"][0]["message"].get<std::string>().find("99999") != std::string::npos);
	CHECK(d.passes_in(40001, 80));       // the web rule of generation 2 still lets new connections in
	CHECK_FALSE(d.passes_in(40002, 8080));

	// Text push of a bad rule set: same shape of answer, the name in the errors.
	r = d.ask({{"cmd", "push"}, {"text", "allow in tcp to 198.18.1.10 port\n"}, {"name", "inline.rules"}});
	CHECK(r["ok"] == false);
	REQUIRE(r["errors"].size() >= 1);
	CHECK(r["errors"][0]["file"] == "inline.rules");
	CHECK(r["errors"][0]["line"] == 1);
	// Relative paths are refused: the daemon's directory is not the operator's.
	r = d.ask({{"cmd", "push"}, {"path", "good.rules"}});
	CHECK(r["ok"] == false);

	// rules: generation 2, three rules; the web rule counted the flow's packets and was hit just now.
	r = d.ask({{"cmd", "rules"}});
	REQUIRE(r["ok"] == true);
	CHECK(r["generation"] == 2);
	CHECK(r["default_in"] == "drop");
	REQUIRE(r["rules"].size() == 3);
	const json* web = find_rule(r, 1, "web.rules");
	REQUIRE(web);
	CHECK((*web)["index"] == 0);
	CHECK((*web)["action"] == "allow");
	CHECK((*web)["packets"] == 4);  // SYN, SYN-ACK, ACK of the first flow and the SYN of the second
	CHECK((*web)["bytes"].get<uint64_t>() >= 4 * 60);
	REQUIRE((*web)["last_hit_seconds_ago"].is_number());
	CHECK((*web)["last_hit_seconds_ago"].get<double>() < 30);
	const json* ssh = find_rule(r, 4, "good.rules");
	REQUIRE(ssh);
	CHECK((*ssh)["packets"] == 0);
	CHECK((*ssh)["last_hit_seconds_ago"].is_null());

	// flows: both port-80 connections, the first established with packets each way.
	r = d.ask({{"cmd", "flows"}});
	REQUIRE(r["ok"] == true);
	CHECK(r["live"] == 2);
	CHECK(r["matched"] == 2);
	r = d.ask({{"cmd", "flows"}, {"filter", {{"state", "established"}}}});
	REQUIRE(r["flows"].size() == 1);
	const json f = r["flows"][0];
	CHECK(f["proto"] == "tcp");
	CHECK(f["src"] == "198.18.0.5");
	CHECK(f["sport"] == 40000);
	CHECK(f["dst"] == "198.18.1.10");
	CHECK(f["dport"] == 80);
	CHECK(f["direction"] == "in");
	CHECK(f["state"] == "tcp_established");
	CHECK(f["packets"] == json({2, 1}));
	CHECK(f["bytes"][0].get<uint64_t>() >= 120);
	CHECK(f["age_s"].get<double>() >= f["idle_s"].get<double>());
	CHECK(d.ask({{"cmd", "flows"}, {"filter", {{"state", "tcp_syn_sent"}}}})["matched"] == 1);
	CHECK(d.ask({{"cmd", "flows"}, {"filter", {{"address", "198.18.0.0/24"}, {"port", 80}}}})["matched"] == 2);
	CHECK(d.ask({{"cmd", "flows"}, {"filter", {{"address", "198.18.2.0/24"}}}})["matched"] == 0);
	CHECK(d.ask({{"cmd", "flows"}, {"filter", {{"proto", "udp"}}}})["matched"] == 0);
	r = d.ask({{"cmd", "flows"}, {"limit", 1}});
	CHECK(r["listed"] == 1);
	CHECK(r["matched"] == 2);
	CHECK(r["truncated"] == true);
	CHECK(d.ask({{"cmd", "flows"}, {"filter", {{"state", "sideways"}}}})["ok"] == false);

	// explain against the live rules.
	r = d.ask({{"cmd", "explain"}, {"flow", "tcp 198.18.0.5:40000 -> 198.18.1.10:80 in"}});
	REQUIRE(r["ok"] == true);
	CHECK(r["verdict"] == "allow");
	CHECK(r["default"] == false);
	CHECK(r["generation"] == 2);
	CHECK(r["rule"]["index"] == 0);
	CHECK(r["rule"]["file"].get<std::string>().ends_with("web.rules"));
	CHECK(r["rule"]["line"] == 1);
	CHECK(r["reasons"].size() >= 5);
	r = d.ask({{"cmd", "explain"}, {"flow", "tcp 198.18.0.5:40000 -> 198.18.1.10:8080 in"}});
	CHECK(r["verdict"] == "drop");
	CHECK(r["default"] == true);
	CHECK(r["skipped"].size() == 2);  // both inbound rules, each with why it did not match
	r = d.ask({{"cmd", "explain"}, {"flow", "tcp 198.18.0.5:40000 => 198.18.1.10:80 in"}});
	CHECK(r["ok"] == false);
	CHECK(r["code"] == "bad_flow");
	CHECK(r["column"] == 22);

	// stats: sums that match what was sent.
	r = d.ask({{"cmd", "stats"}});
	REQUIRE(r["ok"] == true);
	CHECK(r["traffic"]["in"]["forwarded"]["packets"] == 3);  // SYN, ACK, second SYN
	CHECK(r["traffic"]["out"]["forwarded"]["packets"] == 1);  // SYN-ACK
	CHECK(r["drops"]["default_drop"] == 2);                   // port 80 under generation 1, port 8080
	CHECK(r["flows"]["live"] == 2);
	CHECK(r["flows"]["opened"] == 2);
	CHECK(r["flows"]["capacity"] == 1024);
	CHECK(r["rules"]["generation"] == 2);
	CHECK(r["rules"]["swaps_ok"] == 1);
	CHECK(r["rules"]["swaps_failed"] == 2);  // the broken file and the broken text (not the relative path)
	CHECK(r["ports"].size() == 2);
	CHECK(r["ports"][0]["rx_packets"].get<uint64_t>() + r["ports"][1]["rx_packets"].get<uint64_t>() == 6);
	CHECK(r["workers"].size() == 1);
	CHECK(r["malformed"]["eth_truncated"] == 0);

	// flush: every flow gone, and the counters say so.
	r = d.ask({{"cmd", "flush_flows"}});
	CHECK(r["flushed"] == 2);
	r = d.ask({{"cmd", "stats"}});
	CHECK(r["flows"]["live"] == 0);
	CHECK(r["flows"]["flushed"] == 2);
	CHECK(d.ask({{"cmd", "flows"}})["matched"] == 0);

	// A text push with includes resolved beside its name; counters of surviving rules carry over.
	std::ifstream in(d.dir / "good.rules");
	std::stringstream text;
	text << in.rdbuf();
	r = d.ask({{"cmd", "push"}, {"text", text.str()}, {"name", (d.dir / "good.rules").string()}});
	REQUIRE(r["ok"] == true);
	CHECK(r["generation"] == 3);
	web = nullptr;
	r = d.ask({{"cmd", "rules"}});
	CHECK(find_rule(r, 1, "web.rules") != nullptr);
	CHECK((*find_rule(r, 1, "web.rules"))["packets"] == 4);
}

TEST_CASE("push dry run: the rule diff and the live flows the set would cut, and nothing changes")
{
	daemon_fixture d;
	REQUIRE(d.ask({{"cmd", "push"}, {"path", (d.dir / "good.rules").string()}})["ok"] == true);
	// Two connections in: web (port 80) and ssh (port 22), from 198.18.0.5:40000 and :40001.
	REQUIRE(d.passes_in(40000, 80));
	REQUIRE(d.passes_in(40001, 22));
	// The new set: the outbound rule first, no ssh, a DNS rule added.
	write_file(d.dir / "nossh.rules", "default in drop\ndefault out allow\nallow out from 198.18.1.0/24\n"
	                                  "allow in tcp to 198.18.1.10 port 80\nallow in udp to 198.18.1.10 port 53\n");
	const json keep_ssh = json::array({{{"address", "198.18.0.5"}, {"port", 40001}}});
	json r = d.ask({{"cmd", "push"}, {"path", (d.dir / "nossh.rules").string()}, {"dry_run", true}, {"keep", keep_ssh}});
	REQUIRE(r["ok"] == true);
	CHECK(r["dry_run"] == true);
	CHECK(r["generation"] == 2);
	CHECK(r["rules"] == 3);
	REQUIRE(r["diff"]["added"].size() == 1);
	CHECK(r["diff"]["added"][0]["text"] == "allow in udp to 198.18.1.10 port 53");
	REQUIRE(r["diff"]["removed"].size() == 1);
	CHECK(r["diff"]["removed"][0]["text"] == "allow in tcp to 198.18.1.10 port 22");
	// Of the two rules kept, one changed places relative to the other.
	CHECK(r["diff"]["moved"].size() == 1);
	CHECK(r["diff"]["changed"].empty());
	CHECK(r["flows"]["live"] == 2);
	CHECK(r["flows"]["cut"] == 1);
	REQUIRE(r["flows"]["listed"].size() == 1);
	const json cut = r["flows"]["listed"][0];
	CHECK(cut["dport"] == 22);
	CHECK(cut["sport"] == 40001);
	CHECK(cut["new_action"] == "drop");
	CHECK(cut["new_rule"].is_null());  // the default
	REQUIRE(r["keep_cut"].size() == 1);
	CHECK(r["keep_cut"][0]["dport"] == 22);
	// The web connection's end is not cut.
	r = d.ask({{"cmd", "push"}, {"path", (d.dir / "nossh.rules").string()}, {"dry_run", true},
	           {"keep", json::array({{{"address", "198.18.0.5"}, {"port", 40000}}})}});
	CHECK(r["keep_cut"].empty());
	// Nothing changed: generation 2 still runs, ssh still gets in, both flows live.
	CHECK(d.rt->policy().generation == 2);
	CHECK(d.passes_in(40002, 22));
	CHECK(d.ask({{"cmd", "flows"}})["live"] == 3);

	// A changed action under the same counter name.
	write_file(d.dir / "named.rules", "default in drop\nallow in tcp to 198.18.1.10 port 22 counter ssh\n");
	REQUIRE(d.ask({{"cmd", "push"}, {"path", (d.dir / "named.rules").string()}})["ok"] == true);
	write_file(d.dir / "named2.rules", "default in drop\nreject in tcp to 198.18.1.10 port 22 counter ssh\n");
	r = d.ask({{"cmd", "push"}, {"path", (d.dir / "named2.rules").string()}, {"dry_run", true}});
	REQUIRE(r["diff"]["changed"].size() == 1);
	CHECK(r["diff"]["changed"][0]["was_action"] == "allow");
	CHECK(r["diff"]["changed"][0]["action"] == "reject");
	// All three: the two ssh connections by the reject rule, the web one (which named.rules no longer
	// allows, but which has sent nothing since, so was not re-judged yet) by the default.
	CHECK(r["flows"]["cut"] == 3);
	CHECK(r["flows"]["listed"].size() == 3);
	// The largest by bytes first, at most `limit` of them.
	REQUIRE(d.send(outside, tcp4(client_host, 40003, server_host, 22, S, 100, 0, portcullis::packet::test::filler(1000)))
	            .to_inside.size() == 1);  // a SYN with data: the largest flow
	r = d.ask({{"cmd", "push"}, {"path", (d.dir / "named2.rules").string()}, {"dry_run", true}, {"limit", 1}});
	CHECK(r["flows"]["cut"] == 4);
	REQUIRE(r["flows"]["listed"].size() == 1);
	CHECK(r["flows"]["listed"][0]["sport"] == 40003);

	// A broken set: its errors as a push gives them, and nothing changes.
	r = d.ask({{"cmd", "push"}, {"path", (d.dir / "broken.rules").string()}, {"dry_run", true}});
	CHECK(r["ok"] == false);
	CHECK(r["code"] == "rules");
	REQUIRE(r["errors"].size() == 1);
	CHECK(r["errors"][0]["line"] == 3);
	CHECK(d.rt->swaps_failed() == 0);
	// keep without dry_run, or malformed: refused.
	CHECK(d.ask({{"cmd", "push"}, {"path", (d.dir / "nossh.rules").string()}, {"keep", keep_ssh}})["code"] == "bad_request");
	CHECK(d.ask({{"cmd", "push"}, {"path", (d.dir / "nossh.rules").string()}, {"dry_run", true},
	             {"keep", json::array({{{"address", "198.18.0.0/24"}, {"port", 1}}})}})["code"] == "bad_request");

	// The CLI: the diff, the cut flow, and the warning when SSH_CONNECTION's client end is one of them.
	std::string out, err;
	setenv("SSH_CONNECTION", "198.18.0.5 40001 198.18.1.10 22", 1);
	const int rc = run_cli(&d, {"--socket", d.socket.string(), "push", "--dry-run", (d.dir / "named2.rules").string()}, out, &err);
	unsetenv("SSH_CONNECTION");
	CHECK(rc == 0);
	CHECK(out.find("nothing changed; generation 3 stays") != std::string::npos);
	CHECK(out.find("  ~ ") != std::string::npos);
	CHECK(out.find("flows: 4 of 4 live flows would be cut") != std::string::npos);
	CHECK(out.find("198.18.0.5:40001 -> 198.18.1.10:22 in") != std::string::npos);
	CHECK(err.find("WARNING: this rule set would cut your own connection: tcp 198.18.0.5:40001 -> 198.18.1.10:22") !=
	      std::string::npos);
	CHECK(run_cli(&d, {"--socket", d.socket.string(), "push", "--dry-run", "--keep", "198.18.0.9:22", "--keep",
	                   "[2001:2::5]:22", (d.dir / "named2.rules").string()}, out, &err) == 0);
	CHECK(err.find("WARNING") == std::string::npos);
	CHECK(run_cli(&d, {"--socket", d.socket.string(), "push", "--dry-run", "--keep", "198.18.0.5:40000",
	                   (d.dir / "named2.rules").string()}, out, &err) == 0);
	CHECK(err.find("WARNING: this rule set would cut your own connection: tcp 198.18.0.5:40000 -> 198.18.1.10:80") !=
	      std::string::npos);
	CHECK(run_cli(&d, {"--socket", d.socket.string(), "push", "--dry-run", "--keep", "nonsense",
	                   (d.dir / "named2.rules").string()}, out, &err) == 2);
	CHECK(d.rt->policy().generation == 3);
}

TEST_CASE("push --confirm: the previous rules come back at the deadline unless confirmed")
{
	daemon_fixture d;
	auto now = [] { return control::runtime::steady_seconds(); };
	auto unix_now = [] { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); };
	const std::string v1_digest = d.rt->digest();
	// Generation 2 (web allowed), pending for 120 s: visible in the answer, rules and stats.
	json r = d.ask({{"cmd", "push"}, {"path", (d.dir / "good.rules").string()}, {"confirm_s", 120}});
	REQUIRE(r["ok"] == true);
	CHECK(r["generation"] == 2);
	REQUIRE(r["rollback"].is_object());
	CHECK(r["rollback"]["restores_generation"] == 1);
	CHECK(r["rollback"]["confirms_generation"] == 2);
	CHECK(r["rollback"]["seconds_left"].get<double>() > 100);
	CHECK(d.ask({{"cmd", "rules"}})["rollback"]["deadline_unix"].get<double>() > unix_now() + 100);
	CHECK(d.ask({{"cmd", "stats"}})["rules"]["rollback"]["restores_generation"] == 1);
	REQUIRE(d.passes_in(41000, 80));
	// Not due yet: nothing happens.
	CHECK_FALSE(d.rt->roll_back_if_due(now()).has_value());
	CHECK(d.rt->policy().generation == 2);
	// A second confirmed push while pending still brings back generation 1's rules.
	write_file(d.dir / "v3.rules", "default in drop\ndefault out allow\nallow in tcp to 198.18.1.10 port 443\n");
	r = d.ask({{"cmd", "push"}, {"path", (d.dir / "v3.rules").string()}, {"confirm_s", 60}});
	REQUIRE(r["ok"] == true);
	CHECK(r["rollback"]["restores_generation"] == 1);
	CHECK(r["rollback"]["confirms_generation"] == 3);
	// Past the deadline: generation 1's rules come back as generation 4, with their digest and source.
	const auto back = d.rt->roll_back_if_due(now() + 61);
	REQUIRE(back.has_value());
	CHECK(back->ok);
	CHECK(d.rt->policy().generation == 4);
	CHECK(d.rt->digest() == v1_digest);
	CHECK(d.rt->source().file == (d.dir / "v1.rules").string());
	CHECK(d.ask({{"cmd", "rules"}})["rollback"].is_null());
	CHECK_FALSE(d.passes_in(41001, 443));  // v3's rule is gone
	CHECK(d.passes_in(41002, 22));         // v1's ssh rule is back
	CHECK_FALSE(d.rt->roll_back_if_due(now() + 1000).has_value());  // once

	// Confirmed in time: it stays, and a confirm with nothing pending is refused.
	r = d.ask({{"cmd", "push"}, {"path", (d.dir / "good.rules").string()}, {"confirm_s", 30}});
	REQUIRE(r["ok"] == true);
	r = d.ask({{"cmd", "confirm"}});
	CHECK(r["ok"] == true);
	CHECK(r["generation"] == 5);
	CHECK_FALSE(d.rt->roll_back_if_due(now() + 100).has_value());
	CHECK(d.rt->policy().generation == 5);
	CHECK(d.ask({{"cmd", "confirm"}})["ok"] == false);
	// A plain push confirms a pending one too.
	REQUIRE(d.ask({{"cmd", "push"}, {"path", (d.dir / "v3.rules").string()}, {"confirm_s", 30}})["ok"] == true);
	REQUIRE(d.ask({{"cmd", "push"}, {"path", (d.dir / "good.rules").string()}})["ok"] == true);
	CHECK(d.ask({{"cmd", "rules"}})["rollback"].is_null());
	CHECK_FALSE(d.rt->roll_back_if_due(now() + 100).has_value());
	// A refused confirmed push arms nothing; bad values are refused.
	CHECK(d.ask({{"cmd", "push"}, {"path", (d.dir / "broken.rules").string()}, {"confirm_s", 30}})["ok"] == false);
	CHECK(d.ask({{"cmd", "rules"}})["rollback"].is_null());
	CHECK(d.ask({{"cmd", "push"}, {"path", (d.dir / "v3.rules").string()}, {"confirm_s", 0}})["code"] == "bad_request");
	CHECK(d.ask({{"cmd", "push"}, {"path", (d.dir / "v3.rules").string()}, {"confirm_s", 30}, {"dry_run", true}})["code"] ==
	      "bad_request");

	// The CLI: push --confirm shows what comes back, confirm keeps it.
	std::string out;
	CHECK(run_cli(&d, {"--socket", d.socket.string(), "push", "--confirm", "2m", (d.dir / "v3.rules").string()}, out) == 0);
	CHECK(out.find("unconfirmed: generation 7's rules come back in") != std::string::npos);
	CHECK(run_cli(&d, {"--socket", d.socket.string(), "rules"}, out) == 0);
	CHECK(out.find("unless `portcullis confirm` keeps generation 8") != std::string::npos);
	CHECK(run_cli(&d, {"--socket", d.socket.string(), "confirm"}, out) == 0);
	CHECK(out == "confirmed: generation 8 stays\n");
	CHECK(run_cli(&d, {"--socket", d.socket.string(), "confirm"}, out) == 1);
	CHECK(run_cli(&d, {"--socket", d.socket.string(), "push", "--confirm", "soon", (d.dir / "v3.rules").string()}, out) == 2);
}

TEST_CASE("protocol errors are answered, close that connection, and the server keeps serving")
{
	daemon_fixture d;
	auto first_line = [](const std::string& s) { return json::parse(s.substr(0, s.find('\n'))); };

	json r = first_line(raw_exchange(d, "this is not json\n{\"v\":1,\"cmd\":\"stats\"}\n"));
	CHECK(r["ok"] == false);
	CHECK(r["code"] == "bad_request");
	CHECK(r["error"].get<std::string>().find("malformed JSON") != std::string::npos);
	// The stats request behind it was not answered: the connection closed after the error.
	CHECK(raw_exchange(d, "this is not json\n{\"v\":1,\"cmd\":\"stats\"}\n").find("\"ok\":true") == std::string::npos);

	CHECK(first_line(raw_exchange(d, "[1,2,3]\n"))["code"] == "bad_request");
	CHECK(first_line(raw_exchange(d, "{\"cmd\":\"stats\"}\n"))["code"] == "bad_request");  // no version
	CHECK(first_line(raw_exchange(d, "{\"v\":2,\"cmd\":\"stats\"}\n"))["code"] == "unsupported_version");
	CHECK(first_line(raw_exchange(d, "{\"v\":1,\"cmd\":\"flows\",\"limit\":\"lots\"}\n"))["code"] == "bad_request");

	// Unknown command through the client: an error, then the same connection is closed.
	control::client c;
	REQUIRE(d.serve_while([&] { return c.connect(d.socket.string()); }).status == control::client_status::ok);
	auto reply = d.serve_while([&] { return c.call({{"cmd", "reboot"}}, 5000); });
	REQUIRE(reply.status == control::client_status::ok);
	CHECK(reply.response["ok"] == false);
	CHECK(reply.response["code"] == "unknown_command");
	reply = d.serve_while([&] { return c.call({{"cmd", "stats"}}, 5000); });
	CHECK(reply.status == control::client_status::unreachable);

	// Several requests on one connection are answered in turn; "id" is echoed.
	REQUIRE(d.serve_while([&] { return c.connect(d.socket.string()); }).status == control::client_status::ok);
	reply = d.serve_while([&] { return c.call({{"cmd", "stats"}, {"id", 7}}, 5000); });
	CHECK(reply.response["ok"] == true);
	CHECK(reply.response["id"] == 7);
	reply = d.serve_while([&] { return c.call({{"cmd", "rules"}}, 5000); });
	CHECK(reply.response["ok"] == true);
	c.close();

	// Oversized: more than max_request_bytes (1 MiB here) without a newline.
	r = first_line(raw_exchange(d, std::string((1 << 20) + 4096, 'x')));
	CHECK(r["code"] == "too_large");

	// A client that connects and says nothing is dropped at the read deadline (300 ms here).
	const std::string silent = raw_exchange(d, "");
	CHECK(silent.empty());
	CHECK(d.srv->counters().timeouts >= 1);

	// Still serving.
	r = d.ask({{"cmd", "stats"}});
	CHECK(r["ok"] == true);
	CHECK(r["control"]["protocol_errors"].get<uint64_t>() >= 8);
	for (int i = 0; i < 100 && d.srv->connections() > 0; ++i)
		d.srv->poll(5);  // the last client's close
	CHECK(d.srv->connections() == 0);
}

// Lines that used to take the daemon down instead of being answered (found with tests/fuzz/fuzz_control.cc
// and by reading what it decodes): an exception out of poll(), a stack overflow, undefined behaviour.
TEST_CASE("hostile request lines are answered and the server keeps serving")
{
	daemon_fixture d;
	auto first_line = [](const std::string& s) { return json::parse(s.substr(0, s.find('\n'))); };

	// Not UTF-8: the JSON parser's message quotes the bad bytes, and printing that response threw.
	json r = first_line(raw_exchange(d, "{\"v\":1,\"\xff\xfe\":2}\n"));
	CHECK(r["code"] == "bad_request");
	CHECK(r["error"].get<std::string>().find("malformed JSON") != std::string::npos);

	// Nested 400000 levels deep: copying the "id" to echo it recursed once per level.
	const size_t deep = 400'000;
	r = first_line(raw_exchange(d, "{\"v\":1,\"cmd\":\"stats\",\"id\":" + std::string(deep, '[') +
	                                   std::string(deep, ']') + "}\n"));
	CHECK(r["code"] == "bad_request");
	CHECK(r["error"].get<std::string>().find("nested") != std::string::npos);
	// Within the bound (the request object is level 1) it is an ordinary id.
	const size_t ok_depth = control::max_request_depth - 1;
	r = first_line(raw_exchange(d, "{\"v\":1,\"cmd\":\"rules\",\"id\":" + std::string(ok_depth, '[') +
	                                   std::string(ok_depth, ']') + "}\n"));
	CHECK(r["ok"] == true);
	CHECK(r["id"].is_array());
	// Brackets inside strings are text, not nesting.
	r = d.ask({{"cmd", "stats"}, {"id", std::string(1000, '[')}});
	CHECK(r["ok"] == true);

	// A limit that is not a non-negative integer: converting 1e300 to an integer was undefined behaviour.
	for (const char* limit : {"1e300", "-1e300", "2.5", "-1"}) {
		INFO(limit);
		r = first_line(raw_exchange(d, std::string("{\"v\":1,\"cmd\":\"flows\",\"id\":3,\"limit\":") + limit + "}\n"));
		CHECK(r["code"] == "bad_request");
		CHECK(r["id"] == 3);  // echoed in errors too
	}
	CHECK(d.ask({{"cmd", "flows"}, {"limit", 0}})["ok"] == true);

	// Rule files are bytes, not UTF-8: a rule's text and a diagnostic quoting the file reach the
	// client (with U+FFFD for what is not UTF-8) instead of an exception out of poll().
	write_file(d.dir / "latin1.rules", "default in drop\nallow in tcp to 198.18.1.10 port 22 content \"caf\xe9\"\n");
	r = d.ask({{"cmd", "push"}, {"path", (d.dir / "latin1.rules").string()}});
	CHECK(r["ok"] == true);
	r = d.ask({{"cmd", "rules"}});
	REQUIRE(r["rules"].size() == 1);
	CHECK(r["rules"][0]["text"].get<std::string>().find("caf\xef\xbf\xbd") != std::string::npos);
	write_file(d.dir / "broken-latin1.rules", "allow in tcp to \xe9t\xe9\n");
	r = d.ask({{"cmd", "push"}, {"path", (d.dir / "broken-latin1.rules").string()}});
	CHECK(r["code"] == "rules");
	REQUIRE(r["errors"].size() == 1);
	CHECK(r["errors"][0]["message"].get<std::string>().find("\xef\xbf\xbdt\xef\xbf\xbd") != std::string::npos);

	CHECK(d.ask({{"cmd", "stats"}})["ok"] == true);
}

TEST_CASE("only root and the control group get in: by the socket's mode and by SO_PEERCRED")
{
	if (geteuid() != 0) {
		WARN("not root: cannot run clients as another user; permission checks skipped");
		return;
	}
	const gid_t staff = 50;
	daemon_fixture d("staff");
	struct stat st{};
	REQUIRE(::stat(d.socket.c_str(), &st) == 0);
	CHECK((st.st_mode & 07777) == 0660);
	CHECK(st.st_uid == 0);
	CHECK(st.st_gid == staff);
	REQUIRE(::stat(d.socket.parent_path().c_str(), &st) == 0);
	CHECK((st.st_mode & 07777) == 0750);
	CHECK(st.st_gid == staff);

	const std::string stats = "{\"v\":1,\"cmd\":\"stats\"}\n";
	// The file mode: nobody may enter the directory but not write the socket, so connect() fails.
	::chmod(d.socket.parent_path().c_str(), 0755);
	CHECK(d.serve_until_exit(spawn_other_user(d.socket, nobody, nogroup, {}, stats, "\"ok\":true")) == 20);

	// With the socket opened up, the daemon's own check refuses nobody...
	::chmod(d.socket.c_str(), 0666);
	CHECK(d.serve_until_exit(spawn_other_user(d.socket, nobody, nogroup, {}, stats, "permission denied")) == 0);
	CHECK(d.srv->counters().refused == 1);
	// ...and lets in a member of the group, by supplementary or by primary group.
	CHECK(d.serve_until_exit(spawn_other_user(d.socket, nobody, nogroup, {staff}, stats, "\"ok\":true")) == 0);
	CHECK(d.serve_until_exit(spawn_other_user(d.socket, nobody, staff, {}, stats, "\"ok\":true")) == 0);
	CHECK(d.srv->counters().refused == 1);

	// A group member cannot make the daemon read a file it could not read itself.
	write_file(d.dir / "secret.rules", good_rules, 0600);
	const std::string push = json{{"v", 1}, {"cmd", "push"}, {"path", (d.dir / "secret.rules").string()}}.dump() + "\n";
	CHECK(d.serve_until_exit(spawn_other_user(d.socket, nobody, staff, {}, push, "not_readable")) == 0);
	// Nor read one through the error messages of an include.
	const std::string sneaky =
		json{{"v", 1}, {"cmd", "push"}, {"text", "include \"secret.rules\"\nbogus\n"}, {"name", (d.dir / "x.rules").string()}}
			.dump() +
		"\n";
	write_file(d.dir / "secret.rules", "this line is secret\n", 0600);
	CHECK(d.serve_until_exit(spawn_other_user(d.socket, nobody, staff, {}, sneaky, "cannot read")) == 0);
	CHECK(d.serve_until_exit(spawn_other_user(d.socket, nobody, staff, {}, sneaky, "'this'")) == 10);
	CHECK(d.serve_until_exit(spawn_other_user(d.socket, nobody, staff, {}, sneaky, "'bogus'")) == 0);
	CHECK(d.rt->policy().generation == 1);
}

TEST_CASE("the CLI binary against the server: output and exit codes")
{
	daemon_fixture d;
	std::string out;
	CHECK(run_cli(&d, {"--socket", d.socket.string(), "stats", "--json"}, out) == 0);
	const json j = json::parse(out);
	CHECK(j["ok"] == true);
	CHECK(j["rules"]["generation"] == 1);

	std::string err;
	CHECK(run_cli(&d, {"--socket", d.socket.string(), "push", (d.dir / "good.rules").string()}, out, &err) == 0);
	CHECK(out.find("generation 2") != std::string::npos);
	// good.rules allows out what its default allows anyway: the lint says so, the push goes on.
	CHECK(err.find("good.rules:5:1: warning: redundant: allow out from 198.18.1.0/24") != std::string::npos);
	CHECK(d.rt->policy().generation == 2);
	// A push warns of what check --lint finds, and still goes through.
	write_file(d.dir / "shadow.rules", "default in drop\nallow in tcp to 198.18.1.0/24\nallow in tcp to 198.18.1.10 port 80\n");
	CHECK(run_cli(&d, {"--socket", d.socket.string(), "push", (d.dir / "shadow.rules").string()}, out, &err) == 0);
	CHECK(err.find("shadow.rules:3:1: warning: shadowed: allow in tcp to 198.18.1.10 port 80: never matches") != std::string::npos);
	CHECK(d.rt->policy().generation == 3);
	CHECK(run_cli(&d, {"--socket", d.socket.string(), "push", (d.dir / "good.rules").string()}, out) == 0);
	// Refused offline: the daemon never sees it.
	CHECK(run_cli(&d, {"--socket", d.socket.string(), "push", (d.dir / "broken.rules").string()}, out) == 1);
	CHECK(d.rt->swaps_failed() == 0);

	CHECK(run_cli(&d, {"--socket", d.socket.string(), "explain", "tcp 198.18.0.5:1 -> 198.18.1.10:80 in"}, out) == 0);
	CHECK(out.find("verdict: allow") != std::string::npos);
	CHECK(run_cli(&d, {"--socket", d.socket.string(), "rules"}, out) == 0);
	CHECK(out.find("web.rules:1") != std::string::npos);
	CHECK(run_cli(&d, {"--socket", d.socket.string(), "flows", "tcp", "port", "80"}, out) == 0);
	CHECK(out.find("0 listed") != std::string::npos);
	CHECK(run_cli(&d, {"--socket", d.socket.string(), "flush", "flows"}, out) == 0);
	CHECK(run_cli(&d, {"--socket", d.socket.string(), "flows", "sideways"}, out) == 2);

	CHECK(run_cli(nullptr, {"--socket", (d.dir / "missing.sock").string(), "stats"}, out) == 3);
	CHECK(run_cli(nullptr, {"--socket", (d.dir / "missing.sock").string(), "stats", "--json"}, out) == 3);
	CHECK(json::parse(out)["code"] == "unreachable");
}

TEST_CASE("file sets change at run time: add, timeout, del, load, flush, without a push")
{
	daemon_fixture d;
	write_file(d.dir / "bl.txt", "# blocklist\n198.19.200.0/24\n");
	write_file(d.dir / "sets.rules", "set bl = file \"bl.txt\"\ndefault in drop\ndrop in from $bl\n"
	                                 "allow in tcp to 198.18.1.10 port 22\n");
	REQUIRE(d.ask({{"v", 1}, {"cmd", "push"}, {"path", (d.dir / "sets.rules").string()}})["ok"] == true);
	const uint64_t generation = d.rt->policy().generation;
	auto set = [&](json req) {
		req["v"] = 1;
		req["cmd"] = "set";
		return d.ask(req);
	};
	CHECK(d.passes_in(40000, 22));

	json r = set({{"op", "add"}, {"set", "bl"}, {"address", "198.18.0.5"}});
	REQUIRE(r["ok"] == true);
	CHECK(r["set"]["adds"] == 1);
	CHECK(!d.passes_in(40001, 22));  // a new flow from the added address
	CHECK(d.passes_in(40000, 22));   // the open flow is kept
	// explain judges with the live set, as the data path does, and agrees with its own walk.
	r = d.ask({{"v", 1}, {"cmd", "explain"}, {"flow", "tcp 198.18.0.5:40001 -> 198.18.1.10:22 in"}});
	REQUIRE(r["ok"] == true);
	CHECK(r["verdict"] == "drop");
	CHECK(r["rule"]["line"] == 3);
	r = d.ask({{"v", 1}, {"cmd", "explain"}, {"flow", "tcp 198.18.0.6:40001 -> 198.18.1.10:22 in"}});
	REQUIRE(r["ok"] == true);
	CHECK(r["verdict"] == "allow");
	CHECK(r["skipped"][0]["reason"].get<std::string>().starts_with("sets: an address is not"));
	CHECK(set({{"op", "list"}})["sets"][0]["hits"] == 1);

	REQUIRE(set({{"op", "del"}, {"set", "bl"}, {"address", "198.18.0.0/24"}})["ok"] == true);
	CHECK(d.passes_in(40002, 22));
	// Deleting a base entry hides it until a load or push brings the file back.
	r = set({{"op", "show"}, {"set", "bl"}});
	CHECK(r["added"].empty());
	CHECK(r["deleted"] == json::array({"198.18.0.0/24"}));

	REQUIRE(set({{"op", "add"}, {"set", "bl"}, {"address", "198.18.0.0/28"}, {"timeout_s", 1}})["ok"] == true);
	r = set({{"op", "show"}, {"set", "bl"}});
	REQUIRE(r["added"].size() == 1);
	CHECK(r["added"][0]["address"] == "198.18.0.0/28");
	CHECK(r["added"][0]["expires_in_s"].get<double>() <= 1.0);
	CHECK(!d.passes_in(40003, 22));
	std::this_thread::sleep_for(std::chrono::milliseconds(1100));
	d.rt->expire_sets();
	CHECK(d.passes_in(40004, 22));
	CHECK(set({{"op", "list"}})["sets"][0]["counters"]["expiries"] == 1);

	// load: the whole set at once; a feed with errors changes nothing and says where.
	write_file(d.dir / "bl2.txt", "198.18.0.0/24\n2001:2::/48\n");
	write_file(d.dir / "bad.txt", "198.18.0.0/24\nnot-an-address\n");
	r = set({{"op", "load"}, {"set", "bl"}, {"path", (d.dir / "bl2.txt").string()}});
	REQUIRE(r["ok"] == true);
	CHECK(r["entries"] == 2);
	CHECK(!d.passes_in(40005, 22));
	r = set({{"op", "load"}, {"set", "bl"}, {"path", (d.dir / "bad.txt").string()}});
	CHECK(r["ok"] == false);
	CHECK(r["code"] == "rules");
	REQUIRE(r["errors"].size() == 1);
	CHECK(r["errors"][0]["line"] == 2);
	CHECK(r["errors"][0]["column"] == 1);
	CHECK(!d.passes_in(40006, 22));  // still the loaded set
	REQUIRE(set({{"op", "flush"}, {"set", "bl"}})["ok"] == true);
	CHECK(d.passes_in(40007, 22));
	CHECK(d.rt->policy().generation == generation);  // no rule was recompiled

	// Bad requests: each answered, nothing changed.
	CHECK(set({{"op", "add"}, {"set", "nope"}, {"address", "198.18.0.5"}})["error"].get<std::string>().starts_with(
		"no file set 'nope' (file sets in the active rules: bl)"));
	CHECK(set({{"op", "add"}, {"set", "bl"}, {"address", "198.18.0.500"}})["code"] == "failed");
	CHECK(set({{"op", "load"}, {"set", "bl"}, {"path", "relative.txt"}})["code"] == "bad_request");
	CHECK(set({{"op", "del"}, {"set", "bl"}, {"address", "198.18.0.5"}, {"timeout_s", 5}})["code"] == "bad_request");
	CHECK(set({{"op", "explode"}})["code"] == "bad_request");
	CHECK(set({{"op", "show"}})["code"] == "bad_request");  // no "set": answered, not a crash
	CHECK(set({{"op", "add"}, {"set", "bl"}})["code"] == "bad_request");
	CHECK(set({{"op", "load"}, {"set", "bl"}})["code"] == "bad_request");
	CHECK(d.passes_in(40008, 22));

	// The CLI: durations, errors before asking, what show prints.
	std::string out;
	const std::string sock = d.socket.string();
	CHECK(run_cli(&d, {"--socket", sock, "set", "add", "bl", "198.18.0.5", "timeout", "1h"}, out) == 0);
	CHECK(out.find("add applied in") != std::string::npos);
	CHECK(run_cli(&d, {"--socket", sock, "set", "show", "bl"}, out) == 0);
	CHECK(out.find("+ 198.18.0.5  (expires in 3") != std::string::npos);
	CHECK(run_cli(&d, {"--socket", sock, "set", "list"}, out) == 0);
	CHECK(out.find("bl.txt") != std::string::npos);
	CHECK(run_cli(&d, {"--socket", sock, "set", "add", "bl", "198.18.0.5", "timeout", "soon"}, out) == 2);
	CHECK(run_cli(&d, {"--socket", sock, "set", "add", "bl", "bogus"}, out) == 2);
	CHECK(run_cli(&d, {"--socket", sock, "set", "load", "bl", (d.dir / "bad.txt").string()}, out) == 1);
	CHECK(run_cli(&d, {"--socket", sock, "set", "load", "bl", (d.dir / "bl2.txt").string()}, out) == 0);
	CHECK(run_cli(&d, {"--socket", sock, "set", "show", "nope"}, out) == 1);
	CHECK(!d.passes_in(40009, 22));
}

TEST_CASE("an add-to rule fills its set from the data path, and the control thread applies it")
{
	daemon_fixture d;
	write_file(d.dir / "trap.rules", "set scanners = dynamic size 10\ndefault in drop\n"
	                                 "drop in tcp to any port telnet add-to $scanners timeout 1h\n"
	                                 "drop in from $scanners\nallow in tcp to 198.18.1.10 port 22\n");
	REQUIRE(d.ask({{"v", 1}, {"cmd", "push"}, {"path", (d.dir / "trap.rules").string()}})["ok"] == true);
	constexpr uint32_t other_host = 0xC6120006;  // 198.18.0.6
	CHECK(d.send(outside, tcp4(client_host, 40000, server_host, 23, S, 100)).to_inside.empty());
	CHECK(d.rt->apply_set_adds() == 1);
	CHECK(!d.passes_in(40001, 22));  // the scanner
	CHECK(d.send(outside, tcp4(other_host, 40000, server_host, 22, S, 100)).to_inside.size() == 1);
	json r = d.ask({{"v", 1}, {"cmd", "set"}, {"op", "show"}, {"set", "scanners"}});
	REQUIRE(r["added"].size() == 1);
	CHECK(r["added"][0]["address"] == "198.18.0.5");
	CHECK(r["added"][0]["expires_in_s"].get<double>() > 3500);
	CHECK(r["set"]["file"] == "");
	CHECK(d.rt->apply_set_adds() == 0);
}

int main(int argc, char** argv)
{
	if (!bring_up_eal())
		return 1;
	const int rc = Catch::Session().run(argc, argv);
	test::cleanup_eal();
	return rc;
}
