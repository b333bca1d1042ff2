// bench/common/host.h: what the bench ran on, for the "machine" field of its JSON: results from a shared
// 2-vCPU VM and from a quiet server are not comparable, and the line should say which it was.
#pragma once

#include <string>

namespace portcullis::bench {

// The CPU's model name ("unknown" when /proc/cpuinfo has none).
std::string cpu_model();

// "<cpu model>, <n> cpus": the CPUs online.
std::string machine();

} // namespace portcullis::bench
