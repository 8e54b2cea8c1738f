/* SPDX-License-Identifier: MIT */
/*
 * Load generator: the shared definitions of bench_loadgen's modules.
 *
 *   bench_loadgen.c     options, the run's phases (connect, publish, drain, stop), exit codes
 *   bench_lg_scen.c     topologies: who publishes where, who subscribes to what, who expects
 *                       which publishers; connection set-up and thread assignment
 *   bench_lg_conn.c     the per-thread loop and the connection state machine: incremental
 *                       receive with eng_decode, batched writes, QoS 1/2 handshakes
 *   bench_lg_tp_kernel.c  transport: kernel TCP sockets under one epoll set per thread
 *   bench_lg_tp_ns.c    transport: Tachyon's own TCP/IP stack (netstack) on a DPDK port,
 *                       no kernel on the data path (bench_lg_tp_ns_none.c without DPDK)
 *   bench_lg_report.c   totals, per-publisher loss/dup/reorder, JSON and the human summary
 *   bench_lg_hist.[ch]  the latency histogram
 *   bench_lg_seq.[ch]   per-publisher sequence tracking
 *
 * Threads: the main thread drives the phases (struct lg_run.phase) and watches the counters;
 * each worker thread (struct lg_thread) owns its connections and everything in them; nothing
 * of a connection is touched by another thread except the counters published with relaxed
 * atomics for the watcher, and the shared-subscription bitmaps (bench_lg_seq.h).
 *
 * Transports: the MQTT and measurement logic (bench_lg_conn.c) is written once over struct
 * lg_transport, which moves bytes between a connection's buffers and a TCP connection and
 * reports what happened through the lg_conn_* calls below. The kernel transport reads into
 * the connection's receive buffer itself; the netstack one gets zero-copy views from the
 * stack and copies them in (lg_conn_input).
 */
#ifndef BENCH_LG_H
#define BENCH_LG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "bench_lg_hist.h"
#include "bench_lg_seq.h"
#include "eng_codec.h"

/* Payload header carried by every message (little-endian, at the start of the payload). */
#define LG_MAGIC 0x4c47544eu /* "NTGL" */
#define LG_PAYLOAD_MIN 24u   /* magic u32, publisher id u32, seq u64, send time ns u64 */
#define LG_SYS_PRIME_S 5.0 /* idle --sys-topic: longest wait for the figure from before the load */

enum lg_topo {
	LG_TOPO_PAIRS = 0,  /* publisher i -> topic i -> subscriber i */
	LG_TOPO_FANIN = 1,  /* every publisher -> one topic -> every subscriber */
	LG_TOPO_FANOUT = 2, /* same wiring as fan-in; the names say which side is many */
	LG_TOPO_WILDCARD =
		3,	    /* publisher i -> <prefix>/w/i/data; subscribers on <prefix>/w/+/data */
	LG_TOPO_SHARED = 4, /* every publisher -> one topic; subscribers in one $share group */
	LG_TOPO_IDLE = 5,   /* connections that only connect (and ping): memory per connection */
	LG_TOPO_STORM = 6,  /* connections opened as fast as allowed: connects per second */
};

enum lg_role {
	LG_PUB = 0,
	LG_SUB = 1,
	LG_IDLE = 2,
};

enum lg_phase {
	LG_PH_CONNECT = 0, /* connections are being set up */
	LG_PH_PUBLISH = 1, /* publishers run */
	LG_PH_DRAIN = 2,   /* publishers stopped; waiting for the last deliveries */
	LG_PH_HOLD = 3,	   /* idle mode: one PINGREQ per connection, then holding them */
	LG_PH_STOP = 4,	   /* disconnect and leave */
};

enum lg_cstate {
	LG_CS_NEW = 0,
	LG_CS_CONNECTING, /* TCP connect in progress */
	LG_CS_WAIT_CONNACK,
	LG_CS_WAIT_SUBACK,
	LG_CS_READY,
	LG_CS_CLOSED,
};

/* Options, fixed before the threads start. */
struct lg_cfg {
	char host[256];
	/* netstack transport (--dpdk-args): EAL arguments and our first address "A.B.C.D/LEN" */
	char dpdk_args[1024];
	char ns_ip[64];
	double wait_peer; /* netstack: after the run, wait this long for the link to go down */
	char port[16];
	int topo;	  /* enum lg_topo */
	uint8_t version;  /* ENG_V311 or ENG_V5 */
	uint8_t qos;	  /* publish QoS */
	uint8_t sub_qos;  /* subscription QoS */
	uint32_t payload; /* bytes, >= LG_PAYLOAD_MIN */
	uint32_t pubs;
	uint32_t subs;
	uint32_t conns; /* idle / storm connections */
	uint32_t threads;
	double rate;	 /* total msg/s over all publishers; 0: as fast as it goes */
	uint64_t tick_ns; /* fixed rate: sends due within a tick go out in one batch */
	uint64_t count;	 /* messages per publisher; 0: until duration */
	double duration; /* publish phase, seconds */
	double drain;	 /* seconds to wait for the last deliveries */
	double deadline; /* hard limit of the whole run, seconds */
	double connect_timeout;
	double hold;	      /* idle mode: seconds to hold the connections */
	double connect_rate;  /* storm/idle: new connections per second; 0: unlimited */
	uint32_t concurrency; /* storm/idle: handshakes in progress at once */
	uint32_t inflight;    /* QoS 1/2 window per publisher */
	uint32_t src_ips;     /* bind sources src_base .. src_base + N - 1 (IPv4 only) */
	uint32_t src_base;    /* first source address, host order (127.0.0.1) */
	uint16_t keepalive;
	bool strict;	 /* any loss, duplicate or reordering fails the run */
	bool netns_local; /* a 10/8 broker inside this process's own network namespace */
	int pid;	 /* broker pid for memory sampling; 0: none */
	char prefix[64]; /* topic prefix */
	char run_id[32]; /* unique per run: client ids and topics */
	char json_path[512];
	char scenario[64];   /* label copied to the output */
	char sys_topic[128]; /* idle: $SYS topic of the broker's own memory figure; "" none */
	struct sockaddr_storage addr;
	socklen_t addr_len;
};

/* QoS 1/2 publisher inflight slot. */
struct lg_slot {
	uint16_t pid;  /* packet id; 0: free */
	uint8_t state; /* 1: PUBACK/PUBREC awaited, 2: PUBCOMP awaited */
};

struct ns_conn;

struct lg_conn {
	uint8_t role;  /* enum lg_role */
	uint8_t state; /* enum lg_cstate */
	bool blocked;  /* the transport refused output; lg_conn_writable() follows */
	bool dirty;    /* on its thread's dirty list: output queued since the last flush pass */
	bool done;     /* publisher: finished sending and every handshake completed */
	uint32_t idx;  /* index within its role (publisher id, subscriber id, idle number) */
	struct lg_thread *th;

	uint8_t *in; /* receive buffer: [0, in_len) holds bytes not yet decoded */
	uint32_t in_len;
	uint32_t in_cap;
	uint8_t *out; /* send buffer: [out_off, out_len) is still to be written */
	uint32_t out_off;
	uint32_t out_len;
	uint32_t out_cap;

	uint64_t t_connect; /* when connect() was called (ns) */
	uint64_t t_last_tx; /* for keepalive */
	struct eng_codec_ctx codec;

	/* publisher */
	uint64_t sent;	    /* messages written to the out buffer */
	uint64_t completed; /* QoS 0: == sent; QoS 1/2: handshakes completed */
	uint64_t target;    /* messages to send; UINT64_MAX: until duration */
	uint16_t next_pid;
	uint32_t inflight;
	uint32_t window; /* min(--inflight, the broker's Receive Maximum) */
	struct lg_slot *slots;
	uint8_t *payload; /* template; header patched per message */
	const char *topic;
	uint16_t topic_len;

	/* subscriber */
	struct lg_seq *trk; /* trackers for publishers [trk_lo, trk_lo + trk_n) */
	uint32_t trk_lo;
	uint32_t trk_n;
	uint8_t granted;
	uint64_t *qos2_ids; /* QoS 2 packet ids received and not yet released (bitmap) */
	const char *filter;
	uint64_t delivered; /* distinct messages counted for this subscriber */

	/* idle */
	uint8_t ping; /* hold phase: 0 PINGREQ not sent yet, 1 sent, 2 PINGRESP received */

	/* The transport's handle; only the transport in use touches its member. */
	union {
		struct {
			int fd;
			bool epollout; /* EPOLLOUT is armed */
		} k;
		struct {
			struct ns_conn *conn; /* NULL: not open, or its CLOSED was reported */
			uint16_t stack;	      /* which of the thread's stacks (source address) */
			bool paused;	      /* receive paused: no room for a full rx_chunk */
		} ns;
	} tp;
};

/* Per-thread results, merged by the main thread after the join. */
struct lg_stats {
	uint64_t pub_sent;
	uint64_t pub_completed;
	uint64_t sub_recv;   /* every PUBLISH received by subscribers */
	uint64_t sub_unique; /* distinct ones */
	uint64_t t_first_recv;
	uint64_t t_last_recv;
	uint64_t t_last_send;
	uint64_t connects; /* CONNACKs received */
	uint64_t t_first_connect;
	uint64_t t_last_connect;
	struct lg_hist lat;	 /* publish latency, ns */
	struct lg_hist conn_lat; /* connect() to CONNACK (and SUBACK for subscribers), ns */
};

struct lg_run;

struct lg_thread {
	int id;
	void *tp; /* the transport's per-thread state (thread_init .. thread_fini) */
	struct lg_run *run;
	struct lg_conn **conns; /* owned by the run; this thread's share */
	uint32_t nconns;
	/*
	 * The loop's per-iteration work is proportional to what happened, not to the connections:
	 * publishers are filled from pubs[], and only the connections on dirty[] are flushed
	 * (with 1000 subscribers a scan of every connection per epoll wake-up would cost more
	 * than the deliveries it handles).
	 */
	struct lg_conn **pubs; /* this thread's publishers */
	uint32_t npubs;
	struct lg_conn **dirty; /* connections with output queued since the last flush pass */
	uint32_t ndirty;
	uint32_t next_open; /* storm/idle: next of conns[] to open */
	uint32_t pending;   /* storm/idle: handshakes in progress */
	uint32_t ready;	    /* connections of this thread that are READY */
	uint32_t pubs_done;
	uint32_t pongs;	   /* idle: connections whose hold-phase PINGREQ was answered */
	bool pings_queued; /* idle: every connection of this thread has its PINGREQ queued */
	struct lg_stats st;
	/* published for the watcher (relaxed stores by this thread, relaxed loads by main) */
	_Atomic uint64_t w_ready;
	_Atomic uint64_t w_pubs_done;
	_Atomic uint64_t w_unique;
	_Atomic uint64_t w_sent;
	_Atomic uint64_t w_connects;
	_Atomic uint64_t w_pongs;
	_Atomic int w_exited;
};

struct lg_transport;

struct lg_run {
	struct lg_cfg cfg;
	const struct lg_transport *tp;
	void *tp_ctx; /* the transport's process-wide state (setup .. teardown) */
	_Atomic int phase;	  /* enum lg_phase; written by main (release), read by workers */
	_Atomic uint64_t t_start; /* publish phase start (ns); set before phase goes PUBLISH */
	_Atomic int failed;	  /* first error wins (see lg_fail) */
	char error[512];
	struct lg_conn *conns; /* pubs, then subs, then idle connections */
	uint32_t nconns;
	struct lg_thread *th;
	char **topics;		      /* per publisher */
	char **filters;		      /* per subscriber */
	uint64_t *pub_sent;	      /* per publisher, final; written by the owner before done */
	struct lg_seq_shared *shared; /* per publisher, shared-subscription topology only */
	uint64_t shared_cap;
	uint64_t expected;	  /* deliveries expected, computed after publishing */
	double publish_s;	  /* actual publish phase length */
	uint64_t rss_before_kib;  /* broker VmRSS before the first connection */
	uint64_t rss_after_kib;	  /* ... once every connection has done CONNECT and PINGREQ */
	uint64_t anon_before_kib; /* the same for RssAnon (heap and other anonymous pages) */
	uint64_t anon_after_kib;
	uint64_t rss_end_kib;     /* ... and at the end of the hold, when idle longer than 1 s */
	uint64_t anon_end_kib;
	double connect_s; /* time to open every connection */
	double ping_s;	  /* idle: from all connected to every PINGRESP received */
	/*
	 * CPU time over the publish and drain phases (seconds): this process's, and the
	 * broker's with --pid (-1: unknown). Shows which side ran out of CPU.
	 */
	double cpu_wall_s;
	double cpu_self_s;
	double cpu_broker_s;
	uint64_t t_connected; /* when every connection was ready (ns) */
	uint64_t t_pinged;    /* idle: when the last PINGRESP arrived (ns) */
	/*
	 * --sys-topic: the broker's own figure, as published on that topic. The watcher is idle
	 * connection 0 (thread 0 writes these; main reads them after the join): the first value
	 * (the retained one, from before the load) and the last, with its arrival time. Brokers
	 * publish such a figure when it changes (Mosquitto: every sys_interval), so the last
	 * value counts if it came after every connection was up: had the pings changed it, the
	 * hold (longer than the interval) would have brought a newer one.
	 */
	struct lg_conn *sys_conn;
	/*
	 * The watcher connects alone and the others wait until its first value is in (sys_gate,
	 * released by main once sys_primed, which thread 0 releases at that value, or after
	 * LG_SYS_PRIME_S without one: then sys_late and no broker figure is reported), so that
	 * value is the broker's before any of the load. Connection times count from t_open.
	 */
	_Atomic bool sys_primed;
	_Atomic bool sys_gate;
	bool sys_late;
	_Atomic uint64_t t_open;
	uint64_t sys_count;
	double sys_first;
	double sys_last;
	uint64_t t_sys_last;
};

/* ---- bench_lg_scen.c ---- */
/* Builds topics, filters, connections and their thread assignment; 0 or -errno. */
int lg_scen_setup(struct lg_run *run);
void lg_scen_teardown(struct lg_run *run);
/* Deliveries expected once every publisher's final count is known. */
uint64_t lg_scen_expected(const struct lg_run *run);
const char *lg_topo_name(int topo);
int lg_topo_parse(const char *s);

/* ---- bench_lg_conn.c ---- */
/* Worker thread body; arg is its struct lg_thread. */
void *lg_thread_main(void *arg);

/*
 * What a transport reports, from the thread owning c. Each returns 0, or -1 when the run
 * failed (lg_fail was called; the transport stops dispatching).
 */
/* The TCP connection is established: CONNECT goes out. */
int lg_conn_established(struct lg_conn *c, uint64_t now);
/* The transport appended bytes to c->in (in_len grew): decode them. */
int lg_conn_decode(struct lg_conn *c, uint64_t now);
/* Bytes received as a view (borrowed for the call): copied into c->in and decoded. */
int lg_conn_input(struct lg_conn *c, const uint8_t *data, uint32_t len, uint64_t now);
/* Output refused earlier can go now: flush, then answer packets held for lack of room. */
int lg_conn_writable(struct lg_conn *c, uint64_t now);
/* The connection is gone (err 0: orderly close by the peer, else -errno). A failure unless
 * the run is stopping. */
int lg_conn_lost(struct lg_conn *c, int err);
/* "publisher", "subscriber" or "connection", for messages. */
const char *lg_conn_role(const struct lg_conn *c);

/* ---- transports (bench_lg_tp_*.c) ---- */
/*
 * Threading: setup and teardown run on the main thread before the workers start and after
 * they joined; everything else runs on the thread owning the connection or thread. Calls
 * returning int give 0, or -1 after lg_fail().
 */
struct lg_transport {
	const char *name;
	/* Process-wide set-up (devices, pools); -errno with a message in err. */
	int (*setup)(struct lg_run *run, char *err, size_t errlen);
	void (*teardown)(struct lg_run *run);
	int (*thread_init)(struct lg_thread *th);
	/* Closes what is still open (after close() on each live connection) and frees. */
	void (*thread_fini)(struct lg_thread *th);
	/* Starts c's TCP connection; lg_conn_established() or lg_conn_lost() follows. */
	int (*open)(struct lg_thread *th, struct lg_conn *c);
	/* Takes up to len bytes: returns how many (> 0), 0 when it takes none now (then
	 * lg_conn_writable() follows), or -1. The bytes may leave only at flush(). */
	int (*send)(struct lg_conn *c, const uint8_t *p, uint32_t len);
	/* End of a loop iteration: transmit what send() took. */
	void (*flush)(struct lg_thread *th);
	/* Waits up to timeout_ns for something to happen and reports it through lg_conn_*. */
	int (*poll)(struct lg_thread *th, uint64_t timeout_ns);
	/* Closes c (graceful: what was sent goes out first); nothing is reported after. */
	void (*close)(struct lg_conn *c, bool graceful);
};

extern const struct lg_transport lg_tp_kernel;
extern const struct lg_transport lg_tp_ns; /* setup fails with -ENOTSUP without DPDK */

/* ---- bench_lg_report.c ---- */
/* Writes the result (JSON to stdout or cfg.json_path, summary to stderr); returns the exit code. */
int lg_report(struct lg_run *run);
/* Writes the failure object (JSON) and the message; no figures. */
void lg_report_failure(struct lg_run *run);

/* ---- bench_loadgen.c ---- */
/* Records the run's first error (printf-style) and moves the run to STOP. Any thread. */
void lg_fail(struct lg_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t lg_now_ns(void);

#endif /* BENCH_LG_H */
