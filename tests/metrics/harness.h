// Test harness for the exporter: a control::runtime with one worker between two in-memory ports
// (net_ring), known traffic pushed through it, and the small HTTP, process and text helpers the tests
// need to talk to the exporter, promtool and a Prometheus server. Everything stays on loopback.
//
// Threads: the test thread drives the worker (poll_once) itself; the exporter's HTTP threads only read.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/runtime.h"
#include "frames.h"

namespace portcullis::test {

using packet::test::bytes;

inline constexpr int outside = 0, inside = 1;

// The EAL, a mbuf pool and two ring ports, set up once per process.
bool init_environment();
void cleanup_environment();

class firewall {
public:
	explicit firewall(const std::string& rules_text);
	~firewall();

	// Puts the frames on a side's RX ring, lets the worker poll until they are all judged, and frees
	// whatever it transmitted.
	void send(int side, const std::vector<bytes>& frames);
	// Polls n times with nothing queued (idle polls).
	void idle_polls(int n);
	control::runtime& runtime() { return *runtime_; }
	uint16_t port(int side) const;

private:
	std::unique_ptr<control::runtime> runtime_;
};

// The metrics tests' TCP segments start at sequence number 100 unless told otherwise.
inline bytes tcp4(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t flags, uint32_t seq = 100,
                  uint32_t ack = 0)
{
	return packet::test::tcp4(src, sport, dst, dport, flags, seq, ack);
}
using packet::test::udp4;

// The samples of a text exposition page: `name{labels}` exactly as written → value. Comments skipped.
std::map<std::string, double> samples(const std::string& page);

struct http_response {
	int status = 0;
	std::string headers, body;
};
// A plain HTTP/1.0 GET to 127.0.0.1:port; nullopt if the connection fails or times out.
std::optional<http_response> http_get(uint16_t port, const std::string& path, int timeout_ms = 3000);

// A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read it back, close).
uint16_t free_port();

// Runs argv (argv[0] looked up in PATH) with stdin from a file; returns the exit status (-1 if it could
// not run) and fills output with stdout and stderr.
int run_program(const std::vector<std::string>& argv, const std::string& stdin_file, std::string& output);

// Full path of a program in PATH, or empty.
std::string find_program(const std::string& name);

} // namespace portcullis::test
