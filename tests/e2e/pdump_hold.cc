// Test-only fault injector for tests/e2e/dumpcap.sh, loaded into portcullisd with LD_PRELOAD. It holds a
// worker inside rte_pdump's copy callback while dpdk-dumpcap stops: the moment at which DPDK 22.11 let
// dumpcap free its mempool under a worker, so that the daemon died in librte_mempool_octeontx
// (docs/threat-model.md, Capturing traffic). Deterministic where the crash needed a preemption.
//
// Armed by the file that PORTCULLIS_TEST_HOLD names: the first packet copy that finds it removes it,
// sends SIGINT to the pid written in it (the dumpcap), waits one second — well inside the five seconds
// dumpcap waits for the daemon's answer to its "stop" — then copies, and once the copy is done creates
// the same name with ".done" added (a daemon that the copy killed never does). Without the file it is
// rte_pcapng_copy and nothing else.
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

// rte_pcapng_copy as DPDK 22.11 declares it (rte_pcapng.h, experimental API), with opaque pointers and
// the direction enum as the int it is passed as.
using pcapng_copy_fn = void* (*)(uint16_t port_id, uint32_t queue, const void* m, void* mp, uint32_t length,
                                 uint64_t timestamp, int direction);

extern "C" void* rte_pcapng_copy(uint16_t port_id, uint32_t queue, const void* m, void* mp, uint32_t length,
                                 uint64_t timestamp, int direction)
{
	static const auto dpdk = reinterpret_cast<pcapng_copy_fn>(dlsym(RTLD_NEXT, "rte_pcapng_copy"));
	const char* arm = std::getenv("PORTCULLIS_TEST_HOLD");
	bool held = false;
	if (arm) {
		if (FILE* f = std::fopen(arm, "r")) {
			long pid = 0;
			const bool got = std::fscanf(f, "%ld", &pid) == 1;
			std::fclose(f);
			if (got && pid > 0 && unlink(arm) == 0) {  // the copy that removes the file holds, no other
				held = true;
				kill(pid_t(pid), SIGINT);
				sleep(1);
			}
		}
	}
	void* copy = dpdk ? dpdk(port_id, queue, m, mp, length, timestamp, direction) : nullptr;
	if (held) {
		const int fd = open((std::string(arm) + ".done").c_str(), O_CREAT | O_WRONLY, 0600);
		if (fd >= 0)
			close(fd);
	}
	return copy;
}
