/* SPDX-License-Identifier: MIT */
/*
 * Load generator transport: the netstack one in a build without DPDK. Only setup is ever
 * called; it says why the transport is missing.
 */
#include <errno.h>
#include <stdio.h>

#include "bench_lg.h"

static int none_setup(struct lg_run *run, char *err, size_t errlen)
{
	(void)run;
	snprintf(err, errlen, "this build has no DPDK: the netstack transport is unavailable");
	return -ENOTSUP;
}

static void none_teardown(struct lg_run *run)
{
	(void)run;
}

const struct lg_transport lg_tp_ns = {
	.name = "netstack",
	.setup = none_setup,
	.teardown = none_teardown,
};
