// The etcd client against a real etcd server (Debian's etcd-server), started by the test on loopback
// ports of its own with a data directory in /tmp. No DPDK here.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "etcd/etcd.h"

namespace etcd = portcullis::etcd;
using namespace std::chrono_literals;

namespace {

const char* etcd_binary = PORTCULLIS_ETCD;

uint16_t free_port()
{
	const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
	socklen_t len = sizeof a;
	::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
	::close(fd);
	return ntohs(a.sin_port);
}

// One etcd member on 127.0.0.1; stop() and start() again keep its data (a restarted etcd).
class etcd_server {
public:
	etcd_server()
	    : dir_(std::filesystem::temp_directory_path() / ("portcullis-etcd-" + std::to_string(::getpid()))),
	      client_port_(free_port()), peer_port_(free_port())
	{
		std::filesystem::remove_all(dir_);
		std::filesystem::create_directories(dir_);
		start();
	}
	~etcd_server()
	{
		stop();
		std::filesystem::remove_all(dir_);
	}

	void start()
	{
		const std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
		const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
		const std::string data = (dir_ / "data").string(), log = (dir_ / "etcd.log").string();
		pid_ = ::fork();
		if (pid_ == 0) {
			std::freopen(log.c_str(), "a", stdout);
			std::freopen(log.c_str(), "a", stderr);
			::execl(etcd_binary, etcd_binary, "--name", "test", "--data-dir", data.c_str(), "--listen-client-urls",
			        client.c_str(), "--advertise-client-urls", client.c_str(), "--listen-peer-urls", peer.c_str(),
			        "--initial-advertise-peer-urls", peer.c_str(), "--initial-cluster", ("test=" + peer).c_str(),
			        static_cast<char*>(nullptr));
			std::_Exit(127);
		}
		// Ready when a read succeeds (bounded: etcd starts in about a second).
		etcd::value v;
		std::string error;
		for (int i = 0; i < 200 && !etcd::get(where("probe"), v, error, 500ms); ++i)
			std::this_thread::sleep_for(50ms);
		REQUIRE(error.empty());
	}

	void stop()
	{
		if (pid_ <= 0)
			return;
		::kill(pid_, SIGTERM);
		int status;
		::waitpid(pid_, &status, 0);
		pid_ = -1;
	}

	etcd::location where(const std::string& key) const
	{
		return etcd::location{"127.0.0.1", std::to_string(client_port_), key};
	}

private:
	std::filesystem::path dir_;
	uint16_t client_port_, peer_port_;
	pid_t pid_ = -1;
};

// A fresh etcd server and the key the follower tests write and follow.
struct followed_key {
	etcd_server server;
	const etcd::location key = server.where("portcullis/gw");
	std::string error;
	int64_t revision = 0;
};

// Polls done() every 25 ms until it holds, for at most 10 s (a liveness bound, not a timing expectation).
// Says whether it held; the callers check what they waited for themselves.
bool wait_until(const std::function<bool()>& done)
{
	for (int i = 0; i < 400; ++i) {
		if (done())
			return true;
		std::this_thread::sleep_for(25ms);
	}
	return done();
}

// Waits (bounded) for the follower's next change.
std::optional<etcd::follower::update> next_update(etcd::follower& f)
{
	std::optional<etcd::follower::update> u;
	wait_until([&] { return bool(u = f.take()); });
	return u;
}

} // namespace

TEST_CASE("etcd:// URLs")
{
	etcd::location l;
	std::string error;
	REQUIRE(etcd::parse_url("etcd://10.0.0.1:2380/portcullis/gw1", l, error));
	CHECK(l.host == "10.0.0.1");
	CHECK(l.port == "2380");
	CHECK(l.key == "portcullis/gw1");
	CHECK(l.url() == "etcd://10.0.0.1:2380/portcullis/gw1");
	REQUIRE(etcd::parse_url("etcd://etcd.mgmt//portcullis/rules", l, error));
	CHECK(l.host == "etcd.mgmt");
	CHECK(l.port == "2379");
	CHECK(l.key == "/portcullis/rules");
	REQUIRE(etcd::parse_url("etcd://[2001:2::1]:2379/k", l, error));
	CHECK(l.host == "2001:2::1");
	CHECK(l.url() == "etcd://[2001:2::1]:2379/k");

	for (const char* bad : {"http://h/k", "etcd://h", "etcd://h/", "etcd://:2379/k", "etcd://h:0/k", "etcd://h:65536/k",
	                        "etcd://h:x/k", "etcd://[::1/k", "etcd://[::1]x/k"}) {
		INFO(bad);
		error.clear();
		CHECK_FALSE(etcd::parse_url(bad, l, error));
		CHECK_FALSE(error.empty());
	}
}

TEST_CASE("get, put and delete against a real etcd")
{
	etcd_server server;
	const auto key = server.where("portcullis/rules");
	etcd::value v;
	std::string error;
	REQUIRE(etcd::get(key, v, error));
	CHECK_FALSE(v.found);

	const std::string rules = "allow in tcp to port 22\nblock in tcp to port 31337\n";
	int64_t revision = 0;
	REQUIRE(etcd::put(key, rules, revision, error));
	REQUIRE(etcd::get(key, v, error));
	CHECK(v.found);
	CHECK(v.text == rules);
	CHECK(v.mod_revision == revision);

	SECTION("values of every byte and of a megabyte survive the trip")
	{
		std::string big;
		for (size_t i = 0; i < (1u << 20) + 1; ++i)
			big += char(i * 7919 % 251);
		REQUIRE(etcd::put(key, big, revision, error));
		REQUIRE(etcd::get(key, v, error));
		CHECK(v.text == big);
	}
	SECTION("etcd's own request bound (about 1.5-2 MiB unless --max-request-bytes) comes back as its error")
	{
		CHECK_FALSE(etcd::put(key, std::string(2u << 20, 'x'), revision, error));
		CHECK_THAT(error, Catch::Contains("larger than"));
		REQUIRE(etcd::get(key, v, error));
		CHECK(v.text == rules);
	}
	SECTION("a delete leaves no value")
	{
		REQUIRE(etcd::erase(key, error));
		REQUIRE(etcd::get(key, v, error));
		CHECK_FALSE(v.found);
	}
	SECTION("a value over the bound is refused before it is sent")
	{
		CHECK_FALSE(etcd::put(key, std::string(etcd::max_value_bytes + 1, 'x'), revision, error));
		CHECK_THAT(error, Catch::Contains("larger than"));
	}
}

TEST_CASE("an unreachable etcd is an error with its address, not a hang")
{
	const etcd::location nobody{"127.0.0.1", std::to_string(free_port()), "k"};
	etcd::value v;
	std::string error;
	CHECK_FALSE(etcd::get(nobody, v, error, 2s));
	CHECK_THAT(error, Catch::Contains(nobody.url()));
}

TEST_CASE_METHOD(followed_key, "a follower sees the value at start, then every change, newest first")
{
	REQUIRE(etcd::put(key, "first\n", revision, error));

	etcd::follower f(key);
	auto u = next_update(f);
	REQUIRE(u);
	CHECK_FALSE(u->deleted);
	CHECK(u->text == "first\n");
	CHECK(u->mod_revision == revision);

	REQUIRE(etcd::put(key, "second\n", revision, error));
	u = next_update(f);
	REQUIRE(u);
	CHECK(u->text == "second\n");
	CHECK(u->mod_revision == revision);

	// Several writes before anyone looks: the newest is what take() hands over (older ones are gone).
	for (int i = 0; i < 5; ++i)
		REQUIRE(etcd::put(key, "burst " + std::to_string(i) + "\n", revision, error));
	wait_until([&] { return f.revision() == revision; });
	u = f.take();
	REQUIRE(u);
	CHECK(u->text == "burst 4\n");
	CHECK_FALSE(f.take());

	// Other keys are not followed.
	REQUIRE(etcd::put(server.where("portcullis/gw-other"), "no\n", revision, error));
	REQUIRE(etcd::erase(key, error));
	u = next_update(f);
	REQUIRE(u);
	CHECK(u->deleted);
	CHECK_THAT(f.state(), Catch::Contains("watching"));
}

TEST_CASE_METHOD(followed_key, "a follower reconnects to a restarted etcd and catches up")
{
	REQUIRE(etcd::put(key, "before\n", revision, error));
	etcd::follower f(key);
	REQUIRE(next_update(f));

	server.stop();
	wait_until([&] { return f.state().find("watching") == std::string::npos; });
	CHECK(f.state().find("watching") == std::string::npos);

	server.start();
	REQUIRE(etcd::put(key, "after\n", revision, error));
	// The backoff is at most a few seconds this early; next_update waits up to 10 s.
	auto u = next_update(f);
	REQUIRE(u);
	CHECK(u->text == "after\n");
}

TEST_CASE("a follower of an unreachable etcd says so and stops when asked")
{
	const etcd::location nobody{"127.0.0.1", std::to_string(free_port()), "k"};
	etcd::follower f(nobody);
	wait_until([&] { return f.state().rfind("unreachable", 0) == 0; });
	CHECK_THAT(f.state(), Catch::StartsWith("unreachable"));
	CHECK_FALSE(f.take());
}

int main(int argc, char** argv)
{
	if (std::getenv("PORTCULLIS_ETCD_SKIP") || ::access(etcd_binary, X_OK) != 0) {
		std::printf("skipped: no etcd server at '%s' (Debian package etcd-server)\n", etcd_binary);
		return 77;
	}
	return Catch::Session().run(argc, argv);
}
