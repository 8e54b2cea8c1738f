/* SPDX-License-Identifier: MIT */
/*
 * Load generator: results. Merges the threads' statistics (after the join), computes losses,
 * duplicates and reorderings per publisher from the receivers' sequence trackers and the
 * publishers' final counts, checks the delivery guarantees of the QoS in use, and writes one
 * JSON object (stdout or --json FILE) plus a human summary on stderr.
 *
 * JSON keys (stable; bench/run_suite reads them):
 *   ok, error, tool, scenario, topology, mqtt, qos, sub_qos, payload, publishers,
 *   subscribers, connections, threads, rate_target, duration_s,
 *   pub{sent, completed, elapsed_s, rate},
 *   sub{expected, delivered, received, elapsed_s, rate, lost, dups, reorders, stale},
 *   latency_us{count, min, mean, p50, p90, p99, p999, max},
 *   cpu{window_s, loadgen_s, loadgen_cores, loadgen_ns_per_delivery, broker_s, broker_cores,
 *       broker_ns_per_delivery},
 *   connect{count, elapsed_s, rate, latency_us{...}},
 *   memory{broker_pid, rss_before_kib, rss_after_kib, anon_before_kib, anon_after_kib,
 *          bytes_per_conn, anon_bytes_per_conn},
 *   memory_end{held_s, rss_end_kib, anon_end_kib, bytes_per_conn, anon_bytes_per_conn}
 *              (idle, --pid, a hold longer than 1 s: sampled again at its end),
 *   broker_sys{topic, updates, before, last_after_pings_s, after, bytes_per_conn} (idle,
 *              --sys-topic),
 *   per_publisher[{id, sent, expected, delivered, lost, dups, reorders, stale}]
 * A failed run has only ok=false, error, and the identification keys; a run that broke a
 * delivery guarantee has ok=false, error, and the anomaly counts, but no rates or latencies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_lg.h"

struct lg_pub_res {
	uint64_t sent;
	uint64_t expected;
	uint64_t unique;
	uint64_t dups;
	uint64_t reorders;
	uint64_t stale;
	uint64_t lost;
};

struct lg_totals {
	struct lg_stats st;
	uint64_t expected;
	uint64_t unique;
	uint64_t dups;
	uint64_t reorders;
	uint64_t stale;
	uint64_t lost;
	uint64_t excess; /* deliveries beyond what was sent: the broker invented messages */
	struct lg_pub_res *per_pub;
};

static void json_escape(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_head(FILE *f, const struct lg_run *run, bool ok)
{
	const struct lg_cfg *c = &run->cfg;

	fprintf(f, "{\"ok\":%s,\"tool\":\"bench_loadgen\",\"scenario\":", ok ? "true" : "false");
	json_escape(f, c->scenario);
	fprintf(f,
		",\"topology\":\"%s\",\"broker\":\"%s:%s\",\"mqtt\":\"%s\",\"qos\":%u,"
		"\"sub_qos\":%u,\"payload\":%u,\"publishers\":%u,\"subscribers\":%u,"
		"\"connections\":%u,\"threads\":%u,\"rate_target\":%.0f,\"duration_s\":%.3f",
		lg_topo_name(c->topo), c->host, c->port, c->version == ENG_V5 ? "5.0" : "3.1.1",
		c->qos, c->sub_qos, c->payload, c->pubs, c->subs, run->nconns, c->threads, c->rate,
		c->duration);
}

static void json_hist(FILE *f, const char *key, const struct lg_hist *h)
{
	fprintf(f,
		"\"%s\":{\"count\":%llu,\"min\":%.3f,\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,"
		"\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}",
		key, (unsigned long long)h->count, h->count ? (double)h->min / 1e3 : 0.0,
		h->count ? (double)h->sum / (double)h->count / 1e3 : 0.0,
		(double)lg_hist_percentile(h, 50) / 1e3, (double)lg_hist_percentile(h, 90) / 1e3,
		(double)lg_hist_percentile(h, 99) / 1e3, (double)lg_hist_percentile(h, 99.9) / 1e3,
		(double)h->max / 1e3);
}

static FILE *open_out(const struct lg_run *run)
{
	if (!run->cfg.json_path[0])
		return stdout;
	FILE *f = fopen(run->cfg.json_path, "w");
	if (!f)
		fprintf(stderr, "bench_loadgen: cannot write %s; JSON goes to stdout\n",
			run->cfg.json_path);
	return f ? f : stdout;
}

static void close_out(FILE *f)
{
	fputc('\n', f);
	if (f != stdout)
		fclose(f);
	else
		fflush(f);
}

void lg_report_failure(struct lg_run *run)
{
	FILE *f = open_out(run);

	json_head(f, run, false);
	fputs(",\"error\":", f);
	json_escape(f, run->error);
	fputc('}', f);
	close_out(f);
	fprintf(stderr, "bench_loadgen: FAILED (%s, %s:%s): %s\n", run->cfg.scenario, run->cfg.host,
		run->cfg.port, run->error);
}

static void totals(struct lg_run *run, struct lg_totals *t)
{
	const struct lg_cfg *cfg = &run->cfg;

	lg_hist_init(&t->st.lat);
	lg_hist_init(&t->st.conn_lat);
	for (uint32_t i = 0; i < cfg->threads; i++) {
		const struct lg_stats *s = &run->th[i].st;
		t->st.pub_sent += s->pub_sent;
		t->st.pub_completed += s->pub_completed;
		t->st.sub_recv += s->sub_recv;
		t->st.sub_unique += s->sub_unique;
		t->st.connects += s->connects;
		if (s->t_first_recv &&
		    (!t->st.t_first_recv || s->t_first_recv < t->st.t_first_recv))
			t->st.t_first_recv = s->t_first_recv;
		if (s->t_first_connect &&
		    (!t->st.t_first_connect || s->t_first_connect < t->st.t_first_connect))
			t->st.t_first_connect = s->t_first_connect;
		if (s->t_last_recv > t->st.t_last_recv)
			t->st.t_last_recv = s->t_last_recv;
		if (s->t_last_send > t->st.t_last_send)
			t->st.t_last_send = s->t_last_send;
		if (s->t_last_connect > t->st.t_last_connect)
			t->st.t_last_connect = s->t_last_connect;
		lg_hist_merge(&t->st.lat, &s->lat);
		lg_hist_merge(&t->st.conn_lat, &s->conn_lat);
	}

	if (!cfg->pubs)
		return;
	for (uint32_t i = 0; i < cfg->pubs; i++)
		t->per_pub[i].sent = run->pub_sent[i];
	if (run->shared) {
		for (uint32_t i = 0; i < cfg->pubs; i++) {
			struct lg_pub_res *p = &t->per_pub[i];
			uint64_t rcv = atomic_load(&run->shared[i].received);
			p->dups = atomic_load(&run->shared[i].dups);
			p->unique = rcv - p->dups;
			p->expected = p->sent;
		}
	} else {
		for (uint32_t j = 0; j < cfg->subs; j++) {
			const struct lg_conn *c = &run->conns[cfg->pubs + j];
			for (uint32_t k = 0; k < c->trk_n; k++) {
				struct lg_pub_res *p = &t->per_pub[c->trk_lo + k];
				const struct lg_seq *s = &c->trk[k];
				p->expected += p->sent;
				p->unique += lg_seq_unique(s);
				p->dups += s->dups;
				p->reorders += s->reorders;
				p->stale += s->stale;
			}
		}
	}
	for (uint32_t i = 0; i < cfg->pubs; i++) {
		struct lg_pub_res *p = &t->per_pub[i];
		if (p->unique > p->expected)
			t->excess += p->unique - p->expected;
		p->lost = p->expected > p->unique ? p->expected - p->unique : 0;
		t->expected += p->expected;
		t->unique += p->unique;
		t->dups += p->dups;
		t->reorders += p->reorders;
		t->stale += p->stale;
		t->lost += p->lost;
	}
}

static void json_anomalies(FILE *f, const struct lg_run *run, const struct lg_totals *t)
{
	fprintf(f, ",\"per_publisher\":[");
	for (uint32_t i = 0; i < run->cfg.pubs; i++) {
		const struct lg_pub_res *p = &t->per_pub[i];
		fprintf(f,
			"%s{\"id\":%u,\"sent\":%llu,\"expected\":%llu,\"delivered\":%llu,"
			"\"lost\":%llu,\"dups\":%llu,\"reorders\":%llu,\"stale\":%llu}",
			i ? "," : "", i, (unsigned long long)p->sent,
			(unsigned long long)p->expected, (unsigned long long)p->unique,
			(unsigned long long)p->lost, (unsigned long long)p->dups,
			(unsigned long long)p->reorders, (unsigned long long)p->stale);
	}
	fputc(']', f);
}

static double secs(uint64_t a, uint64_t b)
{
	return b > a ? (double)(b - a) / 1e9 : 0.0;
}

static double per_s(uint64_t n, double s)
{
	return s > 0 ? (double)n / s : 0.0;
}

static double per_conn_kib(const struct lg_run *run, uint64_t before, uint64_t after)
{
	return ((double)after - (double)before) * 1024.0 / run->nconns;
}

/* The last --sys-topic value describes the connected state (see struct lg_run). */
static bool sys_fresh(const struct lg_run *run)
{
	return !run->sys_late && run->sys_count > 1 && run->t_sys_last > run->t_connected;
}

/* The per-connection pair that closes a memory object: RSS and anonymous growth from the
 * samples before the first connection to @rss_kib and @anon_kib. */
static void json_per_conn(FILE *f, const struct lg_run *run, uint64_t rss_kib, uint64_t anon_kib)
{
	fprintf(f, "\"bytes_per_conn\":%.0f,\"anon_bytes_per_conn\":%.0f}",
		per_conn_kib(run, run->rss_before_kib, rss_kib),
		per_conn_kib(run, run->anon_before_kib, anon_kib));
}

/*
 * memory: the broker's RSS growth per connection (sampled before the first connection and
 * after every connection has done CONNECT/CONNACK and PINGREQ/PINGRESP), and, with
 * --sys-topic, the broker's own figure: the retained value from before the load and the last
 * one published once every connection was up (null when none came: hold longer than the
 * broker's $SYS interval).
 */
static void json_memory(FILE *f, const struct lg_run *run)
{
	const struct lg_cfg *cfg = &run->cfg;

	if (!cfg->pid || !run->rss_after_kib) {
		fputs(",\"memory\":null", f);
	} else {
		fprintf(f,
			",\"memory\":{\"broker_pid\":%d,\"rss_before_kib\":%llu,"
			"\"rss_after_kib\":%llu,\"anon_before_kib\":%llu,\"anon_after_kib\":%llu,",
			cfg->pid, (unsigned long long)run->rss_before_kib,
			(unsigned long long)run->rss_after_kib,
			(unsigned long long)run->anon_before_kib,
			(unsigned long long)run->anon_after_kib);
		json_per_conn(f, run, run->rss_after_kib, run->anon_after_kib);
		if (run->rss_end_kib) {
			fprintf(f,
				",\"memory_end\":{\"held_s\":%.1f,\"rss_end_kib\":%llu,"
				"\"anon_end_kib\":%llu,",
				cfg->hold, (unsigned long long)run->rss_end_kib,
				(unsigned long long)run->anon_end_kib);
			json_per_conn(f, run, run->rss_end_kib, run->anon_end_kib);
		}
	}
	if (!run->sys_conn)
		return;
	fputs(",\"broker_sys\":{\"topic\":", f);
	json_escape(f, cfg->sys_topic);
	bool fresh = sys_fresh(run);
	fprintf(f, ",\"updates\":%llu", (unsigned long long)run->sys_count);
	if (run->sys_count)
		fprintf(f, ",\"before\":%.0f,\"last_after_pings_s\":%.3f", run->sys_first,
			((double)run->t_sys_last - (double)run->t_pinged) / 1e9);
	if (fresh)
		fprintf(f, ",\"after\":%.0f,\"bytes_per_conn\":%.0f}", run->sys_last,
			(run->sys_last - run->sys_first) / run->nconns);
	else
		fputs(",\"after\":null,\"bytes_per_conn\":null}", f);
}

/*
 * cpu: CPU seconds over the publish and drain phases, of the load generator and of the broker
 * (--pid), as cores used on average and as nanoseconds per delivered message. When the load
 * generator's cores stay well below its threads while the broker's reach the machine's, the
 * broker is the bottleneck, not the generator.
 */
static void json_cpu(FILE *f, const struct lg_run *run, uint64_t delivered)
{
	double w = run->cpu_wall_s, d = delivered ? (double)delivered : 1;

	if (w <= 0) {
		fputs(",\"cpu\":null", f);
		return;
	}
	fprintf(f,
		",\"cpu\":{\"window_s\":%.3f,\"loadgen_s\":%.3f,\"loadgen_cores\":%.3f,"
		"\"loadgen_ns_per_delivery\":%.1f",
		w, run->cpu_self_s, run->cpu_self_s / w, run->cpu_self_s * 1e9 / d);
	if (run->cpu_broker_s >= 0)
		fprintf(f,
			",\"broker_s\":%.3f,\"broker_cores\":%.3f,\"broker_ns_per_delivery\":%.1f}",
			run->cpu_broker_s, run->cpu_broker_s / w, run->cpu_broker_s * 1e9 / d);
	else
		fputs(",\"broker_s\":null,\"broker_cores\":null,\"broker_ns_per_delivery\":null}",
		      f);
}

int lg_report(struct lg_run *run)
{
	const struct lg_cfg *cfg = &run->cfg;
	struct lg_totals t;
	char why[256] = "";
	uint8_t eff = cfg->qos < cfg->sub_qos ? cfg->qos : cfg->sub_qos;
	bool pubsub = cfg->pubs > 0;

	memset(&t, 0, sizeof(t));
	t.per_pub = calloc(cfg->pubs ? cfg->pubs : 1, sizeof(*t.per_pub));
	if (!t.per_pub) {
		snprintf(run->error, sizeof(run->error), "out of memory for the report");
		lg_report_failure(run);
		return 1;
	}
	totals(run, &t);

	if (pubsub) {
		if (t.excess)
			snprintf(why, sizeof(why), "%llu deliveries of messages never sent",
				 (unsigned long long)t.excess);
		else if (eff >= 1 && t.lost)
			snprintf(why, sizeof(why), "QoS %u guarantee broken: %llu messages lost",
				 eff, (unsigned long long)t.lost);
		else if (eff == 2 && (t.dups || t.stale))
			snprintf(why, sizeof(why), "QoS 2 guarantee broken: %llu duplicates",
				 (unsigned long long)(t.dups + t.stale));
		else if (cfg->strict && (t.lost || t.dups || t.reorders || t.stale))
			snprintf(why, sizeof(why),
				 "--strict: %llu lost, %llu duplicates, %llu reordered, %llu stale",
				 (unsigned long long)t.lost, (unsigned long long)t.dups,
				 (unsigned long long)t.reorders, (unsigned long long)t.stale);
		else if (!t.st.pub_sent)
			snprintf(why, sizeof(why), "no message was published");
	}

	uint64_t ts = atomic_load(&run->t_start);
	double pub_s = secs(ts, t.st.t_last_send);
	double sub_s = secs(ts, t.st.t_last_recv);
	double conn_s = secs(t.st.t_first_connect, t.st.t_last_connect);
	/* the burst's connections: the $SYS watcher is counted, but not timed (conn_ready) */
	uint64_t burst = t.st.connects - (run->sys_conn && t.st.connects ? 1 : 0);
	FILE *f = open_out(run);

	json_head(f, run, !why[0]);
	if (why[0]) {
		fputs(",\"error\":", f);
		json_escape(f, why);
		fprintf(f,
			",\"sub\":{\"expected\":%llu,\"delivered\":%llu,\"lost\":%llu,\"dups\":%"
			"llu,"
			"\"reorders\":%llu,\"stale\":%llu}",
			(unsigned long long)t.expected, (unsigned long long)t.unique,
			(unsigned long long)t.lost, (unsigned long long)t.dups,
			(unsigned long long)t.reorders, (unsigned long long)t.stale);
		json_anomalies(f, run, &t);
		fputc('}', f);
		close_out(f);
		fprintf(stderr, "bench_loadgen: FAILED (%s, %s:%s): %s\n", cfg->scenario, cfg->host,
			cfg->port, why);
		free(t.per_pub);
		return 3;
	}

	if (pubsub) {
		fprintf(f,
			",\"pub\":{\"sent\":%llu,\"completed\":%llu,\"elapsed_s\":%.6f,\"rate\":%."
			"1f}",
			(unsigned long long)t.st.pub_sent, (unsigned long long)t.st.pub_completed,
			pub_s, per_s(t.st.pub_sent, pub_s));
		fprintf(f,
			",\"sub\":{\"expected\":%llu,\"delivered\":%llu,\"received\":%llu,"
			"\"elapsed_s\":%.6f,\"rate\":%.1f,\"lost\":%llu,\"dups\":%llu,"
			"\"reorders\":%llu,\"stale\":%llu},",
			(unsigned long long)t.expected, (unsigned long long)t.unique,
			(unsigned long long)t.st.sub_recv, sub_s, per_s(t.unique, sub_s),
			(unsigned long long)t.lost, (unsigned long long)t.dups,
			(unsigned long long)t.reorders, (unsigned long long)t.stale);
		json_hist(f, "latency_us", &t.st.lat);
		json_cpu(f, run, t.unique);
	} else {
		fputs(",\"pub\":null,\"sub\":null,\"latency_us\":null", f);
	}
	fprintf(f, ",\"connect\":{\"count\":%llu,\"elapsed_s\":%.6f,\"rate\":%.1f,",
		(unsigned long long)t.st.connects, conn_s, per_s(burst, conn_s));
	json_hist(f, "latency_us", &t.st.conn_lat);
	fputc('}', f);
	json_memory(f, run);
	if (pubsub)
		json_anomalies(f, run, &t);
	fputc('}', f);
	close_out(f);

	/* The human summary. */
	fprintf(stderr, "bench_loadgen: %s against %s:%s, MQTT %s, %u threads\n", cfg->scenario,
		cfg->host, cfg->port, cfg->version == ENG_V5 ? "5.0" : "3.1.1", cfg->threads);
	if (pubsub) {
		fprintf(stderr,
			"  publishers  %u: sent %llu in %.3f s = %.0f msg/s\n"
			"  subscribers %u: delivered %llu of %llu in %.3f s = %.0f msg/s\n"
			"  lost %llu, duplicates %llu, reordered %llu, stale %llu\n",
			cfg->pubs, (unsigned long long)t.st.pub_sent, pub_s,
			per_s(t.st.pub_sent, pub_s), cfg->subs, (unsigned long long)t.unique,
			(unsigned long long)t.expected, sub_s, per_s(t.unique, sub_s),
			(unsigned long long)t.lost, (unsigned long long)t.dups,
			(unsigned long long)t.reorders, (unsigned long long)t.stale);
		const struct lg_hist *h = &t.st.lat;
		fprintf(stderr,
			"  latency us: p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%llu samples)\n",
			(double)lg_hist_percentile(h, 50) / 1e3,
			(double)lg_hist_percentile(h, 99) / 1e3,
			(double)lg_hist_percentile(h, 99.9) / 1e3, (double)h->max / 1e3,
			(unsigned long long)h->count);
		if (run->cpu_wall_s > 0)
			fprintf(stderr,
				"  CPU over %.2f s: load generator %.2f cores (%.0f ns/delivery)%s",
				run->cpu_wall_s, run->cpu_self_s / run->cpu_wall_s,
				run->cpu_self_s * 1e9 / (double)(t.unique ? t.unique : 1),
				run->cpu_broker_s >= 0 ? "" : "\n");
		if (run->cpu_wall_s > 0 && run->cpu_broker_s >= 0)
			fprintf(stderr, ", broker %.2f cores (%.0f ns/delivery)\n",
				run->cpu_broker_s / run->cpu_wall_s,
				run->cpu_broker_s * 1e9 / (double)(t.unique ? t.unique : 1));
	} else {
		fprintf(stderr, "  connections %llu in %.3f s = %.0f connects/s, p99 %.1f us\n",
			(unsigned long long)t.st.connects, conn_s, per_s(burst, conn_s),
			(double)lg_hist_percentile(&t.st.conn_lat, 99) / 1e3);
		if (cfg->pid && run->rss_after_kib)
			fprintf(stderr,
				"  every PINGREQ answered %.3f s later; broker RSS %llu -> %llu KiB"
				" = %.0f B/connection (anonymous: %llu -> %llu KiB = %.0f B)\n",
				run->ping_s, (unsigned long long)run->rss_before_kib,
				(unsigned long long)run->rss_after_kib,
				per_conn_kib(run, run->rss_before_kib, run->rss_after_kib),
				(unsigned long long)run->anon_before_kib,
				(unsigned long long)run->anon_after_kib,
				per_conn_kib(run, run->anon_before_kib, run->anon_after_kib));
		if (cfg->pid && run->rss_end_kib)
			fprintf(stderr,
				"  after %.1f s idle: broker RSS %llu KiB = %.0f B/connection "
				"(anonymous: %llu KiB = %.0f B)\n",
				cfg->hold, (unsigned long long)run->rss_end_kib,
				per_conn_kib(run, run->rss_before_kib, run->rss_end_kib),
				(unsigned long long)run->anon_end_kib,
				per_conn_kib(run, run->anon_before_kib, run->anon_end_kib));
		if (run->sys_conn && sys_fresh(run))
			fprintf(stderr, "  broker's %s: %.0f -> %.0f = %.0f B/connection\n",
				cfg->sys_topic, run->sys_first, run->sys_last,
				(run->sys_last - run->sys_first) / run->nconns);
		else if (run->sys_conn)
			fprintf(stderr,
				"  broker's %s: no update after the connections (%llu values)\n",
				cfg->sys_topic, (unsigned long long)run->sys_count);
	}
	free(t.per_pub);
	return 0;
}
