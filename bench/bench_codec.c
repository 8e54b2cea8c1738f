/* SPDX-License-Identifier: MIT */
/*
 * Micro-benchmark of the MQTT codec (engine/eng_codec.h) on typical PUBLISH packets: QoS 0
 * and 1, 32 B and 1 KiB payloads, MQTT 3.1.1 and 5.0.
 *
 * decode: a receive buffer of back-to-back packets (about 256 KiB, so it stays in cache as
 *         a freshly received burst would) decoded packet after packet, as a connection drains
 *         its input.
 * encode: the same packets encoded back to back into a buffer of that size (whole packet,
 *         payload copied).
 * head:   eng_encode_publish_head() only, the form the broker uses when the payload is sent
 *         from where it lies (writev / mbuf chains).
 *
 * Each figure is the median of several timed runs on one thread, each run at least min_ms
 * long; the fastest run is shown too. Usage: bench_codec [runs (7)] [min_ms (100)]. Not a
 * test: it asserts nothing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_stats.h"
#include "eng_codec.h"

#define BUF_TARGET (256u * 1024u)
#define MAX_RUNS 31

static const char topic[] = "sensors/building-7/floor-3/temperature";

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Keeps results alive without a store per packet that the compiler could not drop. */
static volatile uint64_t sink;

struct workload {
	uint8_t version;
	uint8_t qos;
	uint32_t payload_len;
	struct eng_packet pkt;
	uint8_t *buf; /* count packets back to back */
	size_t len;
	uint32_t count;
	int pkt_size;
	int head_size;
};

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_codec: %s: %d\n", what, rc);
	exit(1);
}

static void setup(struct workload *w, uint8_t version, uint8_t qos, uint32_t payload_len,
		  const uint8_t *payload)
{
	memset(w, 0, sizeof(*w));
	w->version = version;
	w->qos = qos;
	w->payload_len = payload_len;
	w->pkt.type = ENG_PUBLISH;
	w->pkt.u.publish.qos = qos;
	w->pkt.u.publish.packet_id = qos ? 1 : 0;
	w->pkt.u.publish.topic.p = (const uint8_t *)topic;
	w->pkt.u.publish.topic.len = (uint32_t)strlen(topic);
	w->pkt.u.publish.payload.p = payload;
	w->pkt.u.publish.payload.len = payload_len;

	w->pkt_size = eng_encode_size(&w->pkt, version);
	if (w->pkt_size <= 0)
		die("eng_encode_size", w->pkt_size);
	w->head_size = w->pkt_size - (int)payload_len;
	w->count = BUF_TARGET / (uint32_t)w->pkt_size;
	if (w->count < 64)
		w->count = 64;
	w->len = (size_t)w->count * (size_t)w->pkt_size;
	w->buf = malloc(w->len);
	if (!w->buf)
		die("malloc", -ENOMEM);
	for (uint32_t i = 0; i < w->count; i++) {
		/* Distinct packet ids, as a real stream has. */
		w->pkt.u.publish.packet_id = qos ? (uint16_t)(i % 65535 + 1) : 0;
		int rc = eng_encode(&w->pkt, version, w->buf + (size_t)i * (size_t)w->pkt_size,
				    (size_t)w->pkt_size);
		if (rc != w->pkt_size)
			die("eng_encode", rc);
	}
	w->pkt.u.publish.packet_id = qos ? 1 : 0;
}

/* One pass over the buffer; returns packets decoded. */
static uint32_t decode_pass(const struct workload *w)
{
	struct eng_codec_ctx ctx = {.version = w->version, .role = ENG_ROLE_SERVER};
	struct eng_packet pkt;
	struct eng_decode_err err;
	size_t off = 0;
	uint32_t n = 0;
	uint64_t acc = 0;
	while (off < w->len) {
		int rc = eng_decode(&ctx, w->buf + off, w->len - off, &pkt, &err);
		if (rc <= 0)
			die("eng_decode", rc);
		acc += pkt.u.publish.payload.len + pkt.u.publish.packet_id;
		off += (size_t)rc;
		n++;
	}
	sink += acc;
	return n;
}

static uint32_t encode_pass(const struct workload *w, uint8_t *out, size_t cap)
{
	size_t off = 0;
	uint32_t n = 0;
	for (uint32_t i = 0; i < w->count; i++) {
		int rc = eng_encode(&w->pkt, w->version, out + off, cap - off);
		if (rc <= 0)
			die("eng_encode", rc);
		off += (size_t)rc;
		n++;
	}
	sink += off;
	return n;
}

static uint32_t head_pass(const struct workload *w, uint8_t *out, size_t cap)
{
	size_t off = 0;
	uint32_t n = 0;
	for (uint32_t i = 0; i < w->count; i++) {
		int rc = eng_encode_publish_head(&w->pkt.u.publish, w->version, out + off,
						 cap - off);
		if (rc <= 0)
			die("eng_encode_publish_head", rc);
		off += (size_t)rc;
		n++;
	}
	sink += off;
	return n;
}

enum op { OP_DECODE, OP_ENCODE, OP_HEAD };

/*
 * ns per packet: the median of runs, each repeating passes for at least min_ns; *best gets
 * the fastest run (a steadier figure on a shared machine).
 */
static double measure(const struct workload *w, enum op op, uint8_t *out, int runs, uint64_t min_ns,
		      double *best)
{
	double r[MAX_RUNS];
	for (int k = 0; k < runs; k++) {
		uint64_t pkts = 0, t0 = now_ns(), t1;
		do {
			switch (op) {
			case OP_DECODE:
				pkts += decode_pass(w);
				break;
			case OP_ENCODE:
				pkts += encode_pass(w, out, w->len);
				break;
			case OP_HEAD:
				pkts += head_pass(w, out, w->len);
				break;
			}
			t1 = now_ns();
		} while (t1 - t0 < min_ns);
		r[k] = (double)(t1 - t0) / (double)pkts;
	}
	double m = bench_median(r, runs);
	*best = r[0]; /* bench_median() sorted r */
	return m;
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 7;
	int min_ms = argc > 2 ? atoi(argv[2]) : 100;
	if (runs < 1 || runs > MAX_RUNS || min_ms < 1) {
		fprintf(stderr, "usage: bench_codec [runs 1..%d] [min_ms]\n", MAX_RUNS);
		return 2;
	}

	static uint8_t payload[1024];
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 31 + 7);

	printf("MQTT codec micro-benchmark: PUBLISH, topic \"%s\" (%zu B), one thread,\n", topic,
	       strlen(topic));
	printf("median of %d runs of >= %d ms; buffers of ~%u KiB back-to-back packets\n\n", runs,
	       min_ms, BUF_TARGET / 1024);
	printf("%-7s %-5s %-3s %7s %6s %9s %9s %9s %9s\n", "op", "mqtt", "qos", "payload", "size",
	       "ns/pkt", "Mpkt/s", "MB/s", "best ns");

	const uint8_t versions[] = {ENG_V311, ENG_V5};
	const uint8_t qoss[] = {0, 1};
	const uint32_t sizes[] = {32, 1024};
	const enum op ops[] = {OP_DECODE, OP_ENCODE, OP_HEAD};
	const char *op_names[] = {"decode", "encode", "head"};

	for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
		for (size_t v = 0; v < sizeof(versions); v++)
			for (size_t q = 0; q < sizeof(qoss); q++)
				for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
					struct workload w;
					setup(&w, versions[v], qoss[q], sizes[s], payload);
					uint8_t *out = malloc(w.len);
					if (!out)
						die("malloc", -ENOMEM);
					double best;
					double ns = measure(&w, ops[o], out, runs,
							    (uint64_t)min_ms * 1000000u, &best);
					int bytes = ops[o] == OP_HEAD ? w.head_size : w.pkt_size;
					printf("%-7s %-5s %-3u %7u %6d %9.2f %9.2f %9.1f %9.2f\n",
					       op_names[o], versions[v] == ENG_V5 ? "5.0" : "3.1.1",
					       qoss[q], sizes[s], bytes, ns, 1e3 / ns,
					       (double)bytes * 1e3 / ns, best);
					free(out);
					free(w.buf);
				}
		printf("\n");
	}
	printf("size: bytes per packet (head: the bytes before the payload); MB/s counts those "
	       "bytes, 1 MB = 10^6 B;\nns/pkt, Mpkt/s and MB/s are medians, best ns is the fastest "
	       "run.\n");
	return (int)(sink & 0); /* sink is only there to keep the work */
}
