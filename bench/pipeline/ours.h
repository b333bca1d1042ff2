// bench/pipeline/ours.h: our side of a bench-pipeline run, in a child process of its own (an EAL starts
// once per process, and each capture needs its own pool): a dataplane::worker on one lcore replaying a
// capture from memory into a sink, measured over a window after a warm-up. It prints one line
// "ours {json}" on stdout. bench-pipeline-stages is the same program built with the stage timers (see
// lib/dataplane/stage_clock.h); its line adds stage_cycles.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace portcullis::bench::pipeline {

struct child_run {
	std::string capture;        // replayed in a loop: the measured traffic
	std::string setup;          // replayed once first, before the window (empty: none)
	std::string rules;          // rule file
	double warmup = 1, seconds = 2;
	uint32_t mbufs = 0;         // pool size: the captures are held in mbufs
	uint16_t mbuf_data_room = 0;  // each mbuf's, headroom included (mbuf_data_room())
	uint32_t flow_capacity = 1u << 20;
	bool expiry = false;        // a control thread expires flows beside the worker, as the daemon's does
	uint64_t capture_packets = 0;  // the warm-up covers at least one pass of the capture
};

// The arguments that make a child of `program` run r, and the run they describe (false: not a child).
std::vector<std::string> child_arguments(const child_run& r);
bool parse_child_arguments(int argc, char** argv, child_run& r);

// Runs r in this process; 0 when it printed its line.
int run_child(const child_run& r);

// The data room (headroom included) for mbufs holding frames of up to `max_frame` bytes, with room
// for an answer built in any frame's place (a reject's ICMP is at most 318 bytes: reject.cc).
uint16_t mbuf_data_room(uint32_t max_frame);

// EAL memory (MB) for a pool of `mbufs` mbufs of that data room, and everything else.
uint32_t eal_megabytes(uint32_t mbufs, uint16_t data_room);

} // namespace portcullis::bench::pipeline
