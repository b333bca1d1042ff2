// DPDK EAL set-up for test programs: one initialisation per process, before any test touches rte_acl or
// rte_malloc, with arguments that let any number of test binaries run side by side (no hugepages, no
// PCI, no shared config or IPC, no telemetry socket, one lcore, errors-only logging).
//
// Threads: call from main() before starting threads; the EAL itself is then safe to use from any thread.
#pragma once

namespace portcullis::test {

// Initialises the EAL once, with memory_mb of (non-huge) memory; later calls return the first call's
// outcome. False (after printing why to stderr) if rte_eal_init failed.
bool init_eal(unsigned memory_mb = 256);

// Releases the EAL if init_eal() succeeded; call once at the very end of main().
void cleanup_eal();

} // namespace portcullis::test
