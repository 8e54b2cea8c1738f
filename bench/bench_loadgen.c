/* SPDX-License-Identifier: MIT */
/*
 * bench_loadgen: the MQTT load generator of the side-by-side benchmark suite.
 *
 * Drives any MQTT 3.1.1 or 5.0 broker on a host:port with many connections across threads
 * (kernel sockets with epoll; or, with --dpdk-args, Tachyon's own TCP/IP stack on a DPDK
 * net_memif/net_ring port, for kernel-free runs against tachyond --backend dpdk), in one of
 * the topologies of bench_lg_scen.c, at QoS 0, 1 or 2 with full handshakes,
 * at a fixed total rate or as fast as the broker takes it; or opens many connections to
 * measure connects per second (storm) and memory per idle connection (idle, with --pid).
 * Every payload carries publisher id, sequence number and send time; subscribers report
 * delivered msg/s, latency percentiles, and losses, duplicates and reorderings per publisher.
 *
 * Phases (main thread): CONNECT (every connection up, subscriptions acknowledged) -> PUBLISH
 * (until --count or --duration) -> DRAIN (until every expected delivery arrived or --drain
 * elapsed) -> STOP. Every phase is bounded, and --deadline bounds the whole run.
 *
 * Output: one JSON object on stdout (or --json FILE) and a human summary on stderr.
 * Exit status: 0 a valid run; 1 a protocol error, a lost connection, a timeout or any other
 * failure (the JSON then says "ok": false with the error and carries no figures); 2 bad usage;
 * 3 the broker broke a delivery guarantee (QoS 1/2 loss, QoS 2 duplicates, or any anomaly with
 * --strict): the JSON carries the anomaly counts but no throughput or latency.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_lg.h"

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

uint64_t lg_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void lg_fail(struct lg_run *run, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&fail_lock);
	if (!atomic_load_explicit(&run->failed, memory_order_relaxed)) {
		va_start(ap, fmt);
		vsnprintf(run->error, sizeof(run->error), fmt, ap);
		va_end(ap);
		atomic_store_explicit(&run->failed, 1, memory_order_release);
	}
	pthread_mutex_unlock(&fail_lock);
	atomic_store_explicit(&run->phase, LG_PH_STOP, memory_order_release);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_loadgen [options]\n"
		"  -H, --host HOST          broker address (default 127.0.0.1; loopback only)\n"
		"      --netns-local        also accept a 10.x.y.z broker address, only when this\n"
		"                           process runs in a network namespace of its own\n"
		"  -p, --port PORT          broker port (default 1883)\n"
		"  -t, --topology T         pairs|fanin|fanout|wildcard|shared|idle|storm (pairs)\n"
		"  -V, --mqtt V             3 (3.1.1) or 5 (default 5)\n"
		"  -q, --qos Q              publish QoS 0..2 (default 0)\n"
		"      --sub-qos Q          subscription QoS (default: the publish QoS)\n"
		"  -s, --payload BYTES      payload size, >= %u (default 32)\n"
		"  -P, --pubs N             publishers (pairs: also the subscribers) (default 1)\n"
		"  -S, --subs N             subscribers (default 1)\n"
		"  -c, --conns N            idle/storm connections (default 1000)\n"
		"  -T, --threads N          threads (default 2)\n"
		"  -r, --rate R             total msg/s over all publishers; 0 = as fast as it "
		"goes\n"
		"      --tick US            fixed rate: a publisher wakes at most once per US\n"
		"                           microseconds and sends what is due (default 50)\n"
		"  -n, --count N            messages per publisher (default: until --duration)\n"
		"  -d, --duration S         publish phase length (default 5)\n"
		"      --drain S            wait for the last deliveries (default 5)\n"
		"      --deadline S         hard limit for the whole run (default: sum of phases + "
		"30)\n"
		"      --connect-timeout S  all connections ready within S (default 30)\n"
		"      --hold S             idle: hold the connections for S seconds (default 5)\n"
		"      --connect-rate R     idle/storm: new connections per second (0 = "
		"unlimited)\n"
		"      --concurrency N      idle/storm: handshakes in progress at once (default "
		"256)\n"
		"      --inflight N         QoS 1/2 window per publisher (default 64)\n"
		"      --src-ips N          bind sources 127.0.0.1..N for >28k connections (IPv4)\n"
		"      --src-base A.B.C.D   first source address for --src-ips (default 127.0.0.1;\n"
		"                           10.x.y.z with --netns-local)\n"
		"      --dpdk-args \"EAL\"   netstack transport: Tachyon's TCP/IP stack on the\n"
		"                           first DPDK port of these EAL arguments, which must be\n"
		"                           a net_memif or net_ring device; one queue pair per\n"
		"                           thread (the broker then runs as many workers)\n"
		"      --ip A.B.C.D/LEN     netstack: our address (--src-ips N: N addresses from\n"
		"                           it, one stack each, for >28k connections); --host is\n"
		"                           then the broker's address on that link\n"
		"      --wait-peer S        netstack: after the run, keep the link up until the\n"
		"                           broker's end goes down (at most S s; stop the broker\n"
		"                           then: a DPDK 22.11 memif server whose client leaves\n"
		"                           while it polls can crash)\n"
		"      --keepalive S        MQTT keepalive (default 60)\n"
		"      --pid PID            broker pid: its CPU time while publishing, its memory\n"
		"                           per connection (idle)\n"
		"      --sys-topic T        idle: also read the broker's own memory figure from\n"
		"                           the $SYS topic T (e.g. $SYS/broker/heap/current)\n"
		"      --strict             any loss, duplicate or reordering fails the run\n"
		"      --prefix P           topic prefix (default lg)\n"
		"      --scenario NAME      label written to the output\n"
		"      --json FILE          write the JSON result to FILE instead of stdout\n",
		LG_PAYLOAD_MIN);
}

enum {
	OPT_SUBQOS = 256,
	OPT_DRAIN,
	OPT_DEADLINE,
	OPT_CTIMEOUT,
	OPT_HOLD,
	OPT_CRATE,
	OPT_CONC,
	OPT_INFLIGHT,
	OPT_SRCIPS,
	OPT_SRCBASE,
	OPT_KA,
	OPT_PID,
	OPT_STRICT,
	OPT_PREFIX,
	OPT_SCEN,
	OPT_JSON,
	OPT_SYS,
	OPT_TICK,
	OPT_NETNS,
	OPT_DPDK,
	OPT_NSIP,
	OPT_WAITPEER,
};

static const struct option long_opts[] = {
	{"host", required_argument, NULL, 'H'},
	{"port", required_argument, NULL, 'p'},
	{"topology", required_argument, NULL, 't'},
	{"mqtt", required_argument, NULL, 'V'},
	{"qos", required_argument, NULL, 'q'},
	{"sub-qos", required_argument, NULL, OPT_SUBQOS},
	{"payload", required_argument, NULL, 's'},
	{"pubs", required_argument, NULL, 'P'},
	{"subs", required_argument, NULL, 'S'},
	{"conns", required_argument, NULL, 'c'},
	{"threads", required_argument, NULL, 'T'},
	{"rate", required_argument, NULL, 'r'},
	{"count", required_argument, NULL, 'n'},
	{"duration", required_argument, NULL, 'd'},
	{"drain", required_argument, NULL, OPT_DRAIN},
	{"tick", required_argument, NULL, OPT_TICK},
	{"netns-local", no_argument, NULL, OPT_NETNS},
	{"dpdk-args", required_argument, NULL, OPT_DPDK},
	{"ip", required_argument, NULL, OPT_NSIP},
	{"wait-peer", required_argument, NULL, OPT_WAITPEER},
	{"deadline", required_argument, NULL, OPT_DEADLINE},
	{"connect-timeout", required_argument, NULL, OPT_CTIMEOUT},
	{"hold", required_argument, NULL, OPT_HOLD},
	{"connect-rate", required_argument, NULL, OPT_CRATE},
	{"concurrency", required_argument, NULL, OPT_CONC},
	{"inflight", required_argument, NULL, OPT_INFLIGHT},
	{"src-ips", required_argument, NULL, OPT_SRCIPS},
	{"src-base", required_argument, NULL, OPT_SRCBASE},
	{"keepalive", required_argument, NULL, OPT_KA},
	{"pid", required_argument, NULL, OPT_PID},
	{"strict", no_argument, NULL, OPT_STRICT},
	{"prefix", required_argument, NULL, OPT_PREFIX},
	{"scenario", required_argument, NULL, OPT_SCEN},
	{"json", required_argument, NULL, OPT_JSON},
	{"sys-topic", required_argument, NULL, OPT_SYS},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int num(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

#define NUM_OPT(field, lo, hi, type)                                                            \
	do {                                                                                    \
		double v_;                                                                      \
		if (num(optarg, lo, hi, &v_)) {                                                 \
			fprintf(stderr, "bench_loadgen: --%s: '%s' is not in [%g, %g]\n",       \
				long_opts[idx_of(c)].name, optarg, (double)(lo), (double)(hi)); \
			return -EINVAL;                                                         \
		}                                                                               \
		cfg->field = (type)v_;                                                          \
	} while (0)

static int idx_of(int c)
{
	for (int i = 0; long_opts[i].name; i++)
		if (long_opts[i].val == c)
			return i;
	return 0;
}

/*
 * True when this process runs in a network namespace made with `ip netns add` (one of those
 * bound under /var/run/netns), where a 10/8 address is a virtual link a script created. The
 * initial namespace is never one of them.
 */
static bool in_own_netns(void)
{
	struct stat self, st;
	struct dirent *e;
	bool found = false;
	DIR *d;

	if (stat("/proc/self/ns/net", &self))
		return false;
	d = opendir("/var/run/netns");
	if (!d)
		return false;
	while (!found && (e = readdir(d))) {
		char path[300];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/var/run/netns/%s", e->d_name);
		found = !stat(path, &st) && st.st_ino == self.st_ino && st.st_dev == self.st_dev;
	}
	closedir(d);
	return found;
}

static int resolve(struct lg_cfg *cfg)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	int rc = getaddrinfo(cfg->host, cfg->port, &hints, &ai);

	if (rc) {
		fprintf(stderr, "bench_loadgen: %s:%s: %s\n", cfg->host, cfg->port,
			gai_strerror(rc));
		return -EINVAL;
	}
	memcpy(&cfg->addr, ai->ai_addr, ai->ai_addrlen);
	cfg->addr_len = ai->ai_addrlen;
	freeaddrinfo(ai);
	/* Loopback only: this tool must never load a network by accident. */
	if (cfg->addr.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&cfg->addr;
		uint32_t net8 = ntohl(a->sin_addr.s_addr) >> 24;
		if (net8 == 10 && cfg->netns_local) {
			if (!in_own_netns()) {
				fprintf(stderr, "bench_loadgen: --netns-local: this process is not in a "
						"namespace made by ip netns add; refusing %s\n",
					cfg->host);
				return -EINVAL;
			}
			if (((cfg->src_base + cfg->src_ips - 1) >> 24) != 10) {
				fprintf(stderr, "bench_loadgen: --netns-local: the source addresses must "
						"be in 10.0.0.0/8 (--src-base)\n");
				return -EINVAL;
			}
			return 0;
		}
		if (net8 != 127 || ((cfg->src_base + cfg->src_ips - 1) >> 24) != 127)
			goto not_loopback;
	} else if (cfg->addr.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&cfg->addr;
		if (!IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			goto not_loopback;
	}
	return 0;
not_loopback:
	fprintf(stderr, "bench_loadgen: %s is not a loopback address; refusing to load it\n",
		cfg->host);
	return -EINVAL;
}

static int parse_args(int argc, char **argv, struct lg_cfg *cfg)
{
	int c, sub_qos = -1;
	double deadline = 0;

	snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
	snprintf(cfg->port, sizeof(cfg->port), "1883");
	snprintf(cfg->prefix, sizeof(cfg->prefix), "lg");
	cfg->version = ENG_V5;
	cfg->payload = 32;
	cfg->pubs = 1;
	cfg->subs = 1;
	cfg->conns = 1000;
	cfg->threads = 2;
	cfg->duration = 5;
	cfg->drain = 5;
	cfg->tick_ns = 50000;
	cfg->connect_timeout = 30;
	cfg->hold = 5;
	cfg->concurrency = 256;
	cfg->inflight = 64;
	cfg->src_ips = 1;
	cfg->src_base = 0x7f000001u;
	cfg->keepalive = 60;

	while ((c = getopt_long(argc, argv, "H:p:t:V:q:s:P:S:c:T:r:n:d:h", long_opts, NULL)) !=
	       -1) {
		switch (c) {
		case 'H':
			snprintf(cfg->host, sizeof(cfg->host), "%s", optarg);
			break;
		case 'p':
			snprintf(cfg->port, sizeof(cfg->port), "%s", optarg);
			break;
		case 't':
			cfg->topo = lg_topo_parse(optarg);
			if (cfg->topo < 0) {
				fprintf(stderr, "bench_loadgen: unknown topology '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case 'V': {
			double v;
			if (num(optarg, 3, 5, &v) || v == 4) {
				fprintf(stderr, "bench_loadgen: --mqtt is 3 (3.1.1) or 5\n");
				return -EINVAL;
			}
			cfg->version = v == 3 ? ENG_V311 : ENG_V5;
			break;
		}
		case 'q':
			NUM_OPT(qos, 0, 2, uint8_t);
			break;
		case OPT_SUBQOS: {
			double v;
			if (num(optarg, 0, 2, &v)) {
				fprintf(stderr, "bench_loadgen: --sub-qos is 0..2\n");
				return -EINVAL;
			}
			sub_qos = (int)v;
			break;
		}
		case 's':
			NUM_OPT(payload, LG_PAYLOAD_MIN, 1 << 20, uint32_t);
			break;
		case 'P':
			NUM_OPT(pubs, 1, 1000000, uint32_t);
			break;
		case 'S':
			NUM_OPT(subs, 1, 1000000, uint32_t);
			break;
		case 'c':
			NUM_OPT(conns, 1, 10000000, uint32_t);
			break;
		case 'T':
			NUM_OPT(threads, 1, 256, uint32_t);
			break;
		case 'r':
			NUM_OPT(rate, 0, 1e9, double);
			break;
		case 'n':
			NUM_OPT(count, 1, 1e12, uint64_t);
			break;
		case 'd':
			NUM_OPT(duration, 0.01, 86400, double);
			break;
		case OPT_DRAIN:
			NUM_OPT(drain, 0, 3600, double);
			break;
		case OPT_DPDK:
			snprintf(cfg->dpdk_args, sizeof(cfg->dpdk_args), "%s", optarg);
			break;
		case OPT_NSIP:
			snprintf(cfg->ns_ip, sizeof(cfg->ns_ip), "%s", optarg);
			break;
		case OPT_WAITPEER:
			NUM_OPT(wait_peer, 0, 3600, double);
			break;
		case OPT_NETNS:
			cfg->netns_local = true;
			break;
		case OPT_TICK: {
			double us;
			if (num(optarg, 0, 1e6, &us)) {
				fprintf(stderr, "bench_loadgen: --tick is 0..1000000 microseconds\n");
				return -EINVAL;
			}
			cfg->tick_ns = (uint64_t)(us * 1e3);
			break;
		}
		case OPT_DEADLINE:
			if (num(optarg, 1, 86400, &deadline)) {
				fprintf(stderr, "bench_loadgen: --deadline is 1..86400 seconds\n");
				return -EINVAL;
			}
			break;
		case OPT_CTIMEOUT:
			NUM_OPT(connect_timeout, 0.1, 3600, double);
			break;
		case OPT_HOLD:
			NUM_OPT(hold, 0, 86400, double);
			break;
		case OPT_CRATE:
			NUM_OPT(connect_rate, 0, 1e9, double);
			break;
		case OPT_CONC:
			NUM_OPT(concurrency, 1, 1000000, uint32_t);
			break;
		case OPT_INFLIGHT:
			NUM_OPT(inflight, 1, 65535, uint32_t);
			break;
		case OPT_SRCBASE: {
			struct in_addr a;
			if (inet_pton(AF_INET, optarg, &a) != 1) {
				fprintf(stderr, "bench_loadgen: --src-base: '%s' is not an IPv4 address\n",
					optarg);
				return -EINVAL;
			}
			cfg->src_base = ntohl(a.s_addr);
			break;
		}
		case OPT_SRCIPS:
			NUM_OPT(src_ips, 1, 65000, uint32_t);
			break;
		case OPT_KA:
			NUM_OPT(keepalive, 0, 65535, uint16_t);
			break;
		case OPT_PID:
			NUM_OPT(pid, 1, 1 << 30, int);
			break;
		case OPT_STRICT:
			cfg->strict = true;
			break;
		case OPT_PREFIX:
			snprintf(cfg->prefix, sizeof(cfg->prefix), "%s", optarg);
			break;
		case OPT_SCEN:
			snprintf(cfg->scenario, sizeof(cfg->scenario), "%s", optarg);
			break;
		case OPT_JSON:
			snprintf(cfg->json_path, sizeof(cfg->json_path), "%s", optarg);
			break;
		case OPT_SYS:
			snprintf(cfg->sys_topic, sizeof(cfg->sys_topic), "%s", optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bench_loadgen: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	cfg->sub_qos = sub_qos < 0 ? cfg->qos : (uint8_t)sub_qos;
	if (cfg->topo == LG_TOPO_FANOUT && cfg->pubs > 1 && cfg->subs == 1)
		fprintf(stderr, "bench_loadgen: note: fanout with several publishers and one "
				"subscriber is a fan-in\n");
	if (!cfg->scenario[0])
		snprintf(cfg->scenario, sizeof(cfg->scenario), "%s-qos%u-%uB",
			 lg_topo_name(cfg->topo), cfg->qos, cfg->payload);
	/* Idle runs have two phases bounded by --connect-timeout: connecting and the pings. */
	cfg->deadline = deadline > 0 ? deadline
				     : 2 * cfg->connect_timeout + cfg->duration + 2 * cfg->drain +
					       cfg->hold + 30;
	snprintf(cfg->run_id, sizeof(cfg->run_id), "%08lx",
		 (unsigned long)((lg_now_ns() ^ ((uint64_t)getpid() << 20)) & 0xffffffffu));
	if (cfg->dpdk_args[0] || cfg->ns_ip[0]) {
		/* The netstack transport checks the device instead (bench_lg_tp_ns.c): only
		 * links inside this host. */
		if (!cfg->dpdk_args[0] || !cfg->ns_ip[0]) {
			fprintf(stderr, "bench_loadgen: --dpdk-args and --ip go together\n");
			return -EINVAL;
		}
		return 0;
	}
	return resolve(cfg);
}

/*
 * VmRSS and RssAnon of pid in KiB (0 if unknown). RssAnon is the heap and other anonymous
 * memory: what per-connection state costs, without the file pages (code, libraries) that
 * VmRSS also counts and that the first connections fault in once.
 */
static void rss_kib(int pid, uint64_t *rss, uint64_t *anon)
{
	char path[64], line[256];
	unsigned long v;

	*rss = *anon = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %lu kB", &v) == 1)
			*rss = v;
		else if (sscanf(line, "RssAnon: %lu kB", &v) == 1)
			*anon = v;
	}
	fclose(f);
}

/* CPU seconds used by this process so far. */
static double self_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system, every thread) used by pid so far; -1 if unknown. */
static double pid_cpu_s(int pid)
{
	char path[64], buf[1024];
	unsigned long long ut, st;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* The command name may hold spaces and parentheses: the fields follow the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

enum { W_READY, W_PUBS_DONE, W_UNIQUE, W_PONGS };

static uint64_t sum_counter(struct lg_run *run, int which, memory_order mo)
{
	uint64_t s = 0;
	for (uint32_t t = 0; t < run->cfg.threads; t++) {
		struct lg_thread *th = &run->th[t];
		_Atomic uint64_t *p = which == W_READY	     ? &th->w_ready
				      : which == W_PUBS_DONE ? &th->w_pubs_done
				      : which == W_PONGS     ? &th->w_pongs
							     : &th->w_unique;
		s += atomic_load_explicit(p, mo);
	}
	return s;
}

#define SUM(run, which) sum_counter(run, which, memory_order_relaxed)

static const char *const phase_names[] = {"connect", "publish", "drain", "hold", "stop"};

/*
 * Sleeps in 1 ms steps until done() says so, the run fails, or until (then: 1). The hard
 * deadline makes the run fail.
 */
static int wait_until(struct lg_run *run, uint64_t until, uint64_t hard,
		      bool (*done)(struct lg_run *))
{
	struct timespec ms = {0, 1000000};

	for (;;) {
		if (atomic_load_explicit(&run->failed, memory_order_acquire))
			return -1;
		if (done && done(run))
			return 0;
		uint64_t now = lg_now_ns();
		if (now >= hard) {
			lg_fail(run, "hard deadline of %.1f s reached in the %s phase",
				run->cfg.deadline, phase_names[atomic_load(&run->phase)]);
			return -1;
		}
		if (now >= until)
			return 1;
		nanosleep(&ms, NULL);
	}
}

static bool sys_primed(struct lg_run *run)
{
	/* pairs with the release store in sys_publish(): sys_first is written */
	return atomic_load_explicit(&run->sys_primed, memory_order_acquire);
}

static bool all_ready(struct lg_run *run)
{
	return SUM(run, W_READY) == run->nconns;
}

static bool pubs_done(struct lg_run *run)
{
	/* Pairs with the release store in pub_finish(): pub_sent[] is then complete. */
	return sum_counter(run, W_PUBS_DONE, memory_order_acquire) == run->cfg.pubs;
}

static bool all_ponged(struct lg_run *run)
{
	return SUM(run, W_PONGS) == run->nconns;
}

static bool all_delivered(struct lg_run *run)
{
	return SUM(run, W_UNIQUE) >= run->expected;
}

static void raise_nofile(uint64_t need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < need + 64) {
		rl.rlim_cur = need + 64 > rl.rlim_max ? rl.rlim_max : need + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void drive(struct lg_run *run)
{
	const struct lg_cfg *cfg = &run->cfg;
	uint64_t t0 = lg_now_ns();
	uint64_t hard = t0 + (uint64_t)(cfg->deadline * 1e9);
	bool paced = cfg->topo == LG_TOPO_IDLE || cfg->topo == LG_TOPO_STORM;
	int rc;

	if (run->sys_conn) {
		rc = wait_until(run, t0 + (uint64_t)(LG_SYS_PRIME_S * 1e9), hard, sys_primed);
		if (rc < 0)
			return;
		run->sys_late = rc > 0; /* no figure from before the load: none is reported */
		t0 = lg_now_ns();
		atomic_store_explicit(&run->t_open, t0, memory_order_relaxed);
		/* pairs with the acquire load in open_paced() */
		atomic_store_explicit(&run->sys_gate, true, memory_order_release);
	}
	rc = wait_until(run, t0 + (uint64_t)(cfg->connect_timeout * 1e9), hard, all_ready);
	if (rc > 0)
		lg_fail(run, "only %llu of %u connections were ready after %.1f s",
			(unsigned long long)SUM(run, W_READY), run->nconns, cfg->connect_timeout);
	if (rc)
		return;
	run->t_connected = lg_now_ns();
	run->connect_s = (double)(run->t_connected - t0) / 1e9;

	if (paced) {
		if (cfg->topo == LG_TOPO_IDLE) {
			/*
			 * Every connection sends one PINGREQ and waits for its PINGRESP, so the
			 * broker has handled a packet on each after CONNACK; then the broker gets
			 * a moment to settle, its memory is sampled, and the rest is held.
			 */
			uint64_t t = lg_now_ns();
			atomic_store_explicit(&run->phase, LG_PH_HOLD, memory_order_release);
			rc = wait_until(run, t + (uint64_t)(cfg->connect_timeout * 1e9), hard,
					all_ponged);
			if (rc > 0)
				lg_fail(run,
					"only %llu of %u connections had their PINGREQ answered "
					"after %.1f s",
					(unsigned long long)SUM(run, W_PONGS), run->nconns,
					cfg->connect_timeout);
			if (rc)
				return;
			run->t_pinged = lg_now_ns();
			run->ping_s = (double)(run->t_pinged - t) / 1e9;
			/* for scripts that sample several generators' broker at once */
			fprintf(stderr, "holding %u connections (every PINGREQ answered)\n",
				run->nconns);
			t = run->t_pinged;
			double settle = cfg->hold < 1 ? cfg->hold : 1;
			if (wait_until(run, t + (uint64_t)(settle * 1e9), hard, NULL) < 0)
				return;
			if (cfg->pid)
				rss_kib(cfg->pid, &run->rss_after_kib, &run->anon_after_kib);
			if (wait_until(run, t + (uint64_t)(cfg->hold * 1e9), hard, NULL) < 0)
				return;
			/* again once idle for the whole hold: the allocator has had time to return
			 * what the connect burst freed (jemalloc decays dirty pages over ~10 s) */
			if (cfg->pid && cfg->hold > settle)
				rss_kib(cfg->pid, &run->rss_end_kib, &run->anon_end_kib);
		}
		atomic_store_explicit(&run->phase, LG_PH_STOP, memory_order_release);
		return;
	}

	double self0 = self_cpu_s(), broker0 = cfg->pid ? pid_cpu_s(cfg->pid) : -1;
	uint64_t ts = lg_now_ns();
	atomic_store_explicit(&run->t_start, ts, memory_order_relaxed);
	/* Pairs with the acquire load of the phase in the workers: they then see t_start. */
	atomic_store_explicit(&run->phase, LG_PH_PUBLISH, memory_order_release);

	uint64_t pub_end = ts + (uint64_t)((cfg->duration + cfg->drain) * 1e9);
	rc = wait_until(run, pub_end, hard, pubs_done);
	if (rc > 0)
		lg_fail(run,
			"publishers did not finish: %llu of %u done %.1f s after the publish "
			"phase ended (QoS handshakes not completed by the broker)",
			(unsigned long long)SUM(run, W_PUBS_DONE), cfg->pubs, cfg->drain);
	if (rc)
		return;
	run->publish_s = (double)(lg_now_ns() - ts) / 1e9;
	run->expected = lg_scen_expected(run);
	atomic_store_explicit(&run->phase, LG_PH_DRAIN, memory_order_release);
	rc = wait_until(run, lg_now_ns() + (uint64_t)(cfg->drain * 1e9), hard, all_delivered);
	if (rc < 0)
		return;
	run->cpu_wall_s = (double)(lg_now_ns() - ts) / 1e9;
	run->cpu_self_s = self_cpu_s() - self0;
	double broker1 = cfg->pid ? pid_cpu_s(cfg->pid) : -1;
	run->cpu_broker_s = broker0 >= 0 && broker1 >= 0 ? broker1 - broker0 : -1;
	atomic_store_explicit(&run->phase, LG_PH_STOP, memory_order_release);
}

int main(int argc, char **argv)
{
	static struct lg_run run;
	uint32_t started = 0;
	int code = 1, rc;

	if (parse_args(argc, argv, &run.cfg))
		return 2;
	run.tp = run.cfg.dpdk_args[0] ? &lg_tp_ns : &lg_tp_kernel;
	rc = lg_scen_setup(&run);
	if (rc) {
		fprintf(stderr, "bench_loadgen: set-up failed: %s\n", strerror(-rc));
		goto out_teardown;
	}
	char err[256] = "";
	rc = run.tp->setup(&run, err, sizeof(err));
	if (rc) {
		lg_fail(&run, "%s transport: %s", run.tp->name, err);
		lg_report_failure(&run);
		goto out_teardown;
	}
	raise_nofile(run.nconns);
	if (run.cfg.pid)
		rss_kib(run.cfg.pid, &run.rss_before_kib, &run.anon_before_kib);

	atomic_init(&run.phase, LG_PH_CONNECT);
	pthread_t tids[256];
	for (; started < run.cfg.threads; started++) {
		rc = pthread_create(&tids[started], NULL, lg_thread_main, &run.th[started]);
		if (rc) {
			lg_fail(&run, "pthread_create: %s", strerror(rc));
			break;
		}
	}
	if (started == run.cfg.threads)
		drive(&run);
	else
		lg_fail(&run, "could not start the threads");
	for (uint32_t t = 0; t < started; t++)
		pthread_join(tids[t], NULL);

	if (atomic_load(&run.failed)) {
		lg_report_failure(&run);
		code = 1;
	} else {
		code = lg_report(&run);
	}
	run.tp->teardown(&run);
out_teardown:
	lg_scen_teardown(&run);
	return code;
}
