/* SPDX-License-Identifier: MIT */
/*
 * Stands in for the DPDK backend in builds that do not have it, so that asking for it gives a
 * clear error instead of a link failure.
 */
#include <stdio.h>

#include "ns_dpdk.h"
#include "ns_internal.h"

struct ns_transport *ns_dpdk_create(const struct ns_config *cfg, char *err, size_t errlen)
{
	(void)cfg;
	snprintf(err, errlen, "the DPDK backend is not part of this build (it has not landed yet, "
			      "or the build was configured with -Ddpdk=disabled)");
	return NULL;
}

void ns_dpdk_dump_stats(struct ns_transport *t, FILE *f)
{
	(void)t;
	(void)f;
}
