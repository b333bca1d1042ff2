// The Catch2 runner shared by every unit-test binary: brings the DPDK EAL up once for the whole
// process (rte_acl and rte_malloc need it), then hands the command line to Catch.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "eal.h"

int main(int argc, char** argv)
{
	if (!portcullis::test::init_eal())
		return 1;
	const int rc = Catch::Session().run(argc, argv);
	portcullis::test::cleanup_eal();
	return rc;
}
