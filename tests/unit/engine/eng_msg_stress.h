/* SPDX-License-Identifier: MIT */
/* The message pool stress harness (eng_msg_stress.c), callable from C++. */
#ifndef ENG_MSG_STRESS_H
#define ENG_MSG_STRESS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct eng_msg_stress_res {
	uint64_t made, received;
	uint64_t fallback;      /* pool misses (blocks malloc'd) over the run */
	uint64_t fallback_late; /* of those, in the second half of each worker's messages */
	uint64_t made_late;     /* pooled messages made in the second half */
	char err[1024];
};

/* nworkers threads, msgs messages each; 0, or -1 with res->err. */
int eng_msg_stress(unsigned nworkers, uint32_t msgs, struct eng_msg_stress_res *res);

#ifdef __cplusplus
}
#endif
#endif
