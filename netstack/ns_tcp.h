/* SPDX-License-Identifier: MIT */
/*
 * TCP internals shared by ns_tcp.c (tables, timers, the connection API), ns_tcp_input.c
 * (segment arrival, RFC 9293 3.10.7) and ns_tcp_output.c (segment building, sending,
 * retransmission). Not for use outside netstack/.
 *
 * Design, invariants and who touches what:
 *
 * - A TCB (struct ns_tcb) is owned by one stack, i.e. one worker thread. It is at once the
 *   engine's connection handle (struct ns_conn is its first member) and the protocol state.
 *   The two lifetimes differ: the engine's handle lives from ACCEPT until the ns_stack_events()
 *   after the one that reported CLOSED (user: U_OPEN .. U_REPORTED -> U_DETACHED); the protocol
 *   state may outlive it (LAST_ACK, TIME_WAIT, a graceful close still draining). A TCB is
 *   freed only when both are over: state == TS_CLOSED and user is U_NONE or U_DETACHED.
 *
 * - Sequence space: snd_una <= snd_nxt <= snd_max (modulo 2^32). The send buffer holds the
 *   bytes from snd_una on (acknowledged bytes are dropped from its head at once); sb_len counts
 *   them, sent or not. Our FIN, once queued, takes the sequence number snd_una + sb_len
 *   (iss + 1 + every byte); fin_seq records it when sent. After an RTO snd_nxt goes back to
 *   snd_una (go-back-N with slow start) while snd_max remembers the highest sent.
 *
 * - Receive: in-order bytes not yet reported wait in rq (held device buffers, zero-copy);
 *   out-of-order segments wait in ooo, sorted by sequence and trimmed so they never overlap.
 *   The window we advertise is rcv_buf minus what rq and ooo hold, never shrinking its right
 *   edge (rcv_adv) once advertised (RFC 9293 3.8.6.2.2).
 *
 * - Timers: each TCB has one absolute deadline per timer (0 = off) and sits in at most one
 *   timer-wheel slot, the one of its earliest deadline (in_wheel/wheel_at). Changing a deadline
 *   calls tcb_timer_sched(); the wheel visits the slot and runs what is due.
 *
 * - Lists: ready (events to report), dirty (output to send at flush), reported (CLOSED
 *   delivered), TIME_WAIT FIFO, all. A flag says whether the TCB is on each list, so linking
 *   is idempotent.
 */
#ifndef NS_TCP_H
#define NS_TCP_H

#include "ns_stack.h"

enum ns_tcp_state {
	TS_CLOSED = 0,
	TS_LISTEN, /* not used for TCBs: the listener is the stack itself */
	TS_SYN_SENT,
	TS_SYN_RECEIVED,
	TS_ESTABLISHED,
	TS_FIN_WAIT_1,
	TS_FIN_WAIT_2,
	TS_CLOSE_WAIT,
	TS_CLOSING,
	TS_LAST_ACK,
	TS_TIME_WAIT,
};

enum ns_tcb_user {
	U_NONE = 0,  /* not yet accepted by the engine (handshake in progress) */
	U_OPEN,      /* the engine holds the handle */
	U_CLOSING,   /* the engine called ns_close(graceful); CLOSED to come */
	U_REPORTED,  /* CLOSED delivered; the handle is valid until the next events call */
	U_DETACHED,  /* the engine is done with it */
};

#define N_ACCEPT 0x1
#define N_WRITABLE 0x2
#define N_CLOSED 0x4

/* A received segment held in a device buffer (zero-copy). */
struct ns_seg {
	struct ns_seg *next;
	struct ns_pkt *pkt;
	const uint8_t *data;
	uint32_t seq;
	uint32_t len;
};

/*
 * Send-buffer chunks (ns_chunk.h) come in two sizes: a buffer that starts empty with a short
 * write (an idle connection's CONNACK or PINGRESP) gets a small chunk, everything else fills
 * 16 KiB ones (issue #6: 100,000 idle connections answered at once). Sizes are allocations,
 * header included.
 */
#define NS_SB_CHUNK_SIZE (16 * 1024)
#define NS_SB_SMALL_SIZE 256
#define NS_SB_CHUNK NS_CHUNK_CAP(NS_SB_CHUNK_SIZE)
#define NS_SB_SMALL NS_CHUNK_CAP(NS_SB_SMALL_SIZE)
#define NS_SB_CHUNK_FREE_MAX 256  /* free chunks kept per stack */
#define NS_SB_SMALL_FREE_MAX 4096

struct ns_tcb {
	struct ns_conn base; /* must be first: the engine's handle */
	struct ns_tcb *hnext;   /* flow-table chain */
	struct ns_tcb *all_prev, *all_next;
	struct ns_tcb *ready_next;
	struct ns_tcb *dirty_next;
	struct ns_tcb *rep_next;
	struct ns_tcb *tw_prev, *tw_next;
	struct ns_tcb *wheel_prev, *wheel_next;

	uint32_t laddr, raddr; /* network order */
	uint16_t lport, rport; /* host order */
	uint8_t state;         /* enum ns_tcp_state */
	uint8_t user;          /* enum ns_tcb_user */
	uint8_t notes;         /* N_* to report */
	/* flags: one bit each (a per-core object; 16 bytes less per connection than bools) */
	bool on_ready : 1, on_dirty : 1, on_reported : 1, in_wheel : 1;
	bool paused : 1, want_writable : 1, active : 1;
	bool fin_queued : 1;      /* our FIN follows the queued bytes */
	bool fin_sent : 1;        /* fin_seq is valid */
	bool fin_rcvd : 1;
	bool fin_ooo : 1;         /* the peer's FIN arrived out of order; fin_ooo_seq is valid */
	bool ack_now : 1;         /* send an ACK at the next flush */
	bool ts_ok : 1, ws_ok : 1; /* negotiated options */
	bool in_recovery : 1;     /* NewReno fast recovery (RFC 6582) */
	bool rtt_timing : 1;      /* rtt_seq is being timed (no timestamps) */
	bool rto_karn : 1;        /* rto_tsval/rto_high valid: older echoes are no RTT sample */
	bool tlp_armed : 1;       /* t_rexmt is a loss probe timeout (RFC 8985 7), not the RTO */
	bool tlp_out : 1;         /* a probe is outstanding until snd_una reaches tlp_end */
	bool tlp_rexmit : 1;      /* that probe retransmitted (rather than sent new data) */
	int err;               /* for CLOSED */

	/* send side */
	uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd, snd_wl1, snd_wl2, fin_seq;
	uint32_t recover, cwnd, ssthresh;
	uint16_t mss;          /* peer's MSS (what we may send per segment, options excluded) */
	uint8_t snd_wscale, rcv_wscale;
	uint8_t dupacks;
	uint8_t retries;       /* consecutive RTOs (backoff exponent) */
	uint8_t keep_sent;
	uint8_t persist_shift;
	struct ns_chunk *sb_head, *sb_tail; /* sb_head->off: acknowledged bytes at its front */
	uint32_t sb_len;       /* bytes from snd_una on */
	uint32_t rtt_seq;
	uint64_t rtt_start_us;
	uint32_t srtt_us, rttvar_us, rto_us;
	uint32_t ts_recent;    /* RFC 7323 TS.Recent */
	uint32_t rto_tsval;    /* our TSval when the last RTO retransmitted */
	uint32_t rto_high;     /* snd_max at that RTO: past it, rto_karn is cleared */
	uint32_t tlp_end;      /* snd_max after the outstanding loss probe */
	uint32_t tlp_tsval;    /* our TSval in that probe */

	/* receive side */
	uint32_t irs, rcv_nxt, rcv_adv; /* rcv_adv: right edge of the window advertised */
	uint32_t fin_ooo_seq;  /* sequence number of a FIN held out of order */
	struct ns_seg *rq_head, *rq_tail;
	struct ns_seg *ooo;
	uint32_t rq_bytes, ooo_bytes, nsegs;
	uint32_t unacked_segs; /* in-order segments not yet acknowledged (delayed ACK) */

	/* timers: absolute deadlines in microseconds, 0 = off */
	uint64_t t_rexmt, t_delack, t_persist, t_keep, t_2msl, t_conn;
	uint64_t wheel_at;
	uint64_t last_rx_us;
};

/* ---- ns_tcp.c ---- */
struct ns_tcb *tcb_alloc(struct ns_stack *st);
void tcb_hash_insert(struct ns_stack *st, struct ns_tcb *t);
struct ns_tcb *tcb_lookup(struct ns_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport);
void tcb_set_state(struct ns_stack *st, struct ns_tcb *t, uint8_t state);
void tcb_note(struct ns_stack *st, struct ns_tcb *t, uint8_t what);
void tcb_ready(struct ns_stack *st, struct ns_tcb *t);
void tcb_dirty(struct ns_stack *st, struct ns_tcb *t);
void tcb_timer_sched(struct ns_stack *st, struct ns_tcb *t);
/* The connection is over: to TS_CLOSED, queues dropped, CLOSED noted if the engine holds it. */
void tcb_drop(struct ns_stack *st, struct ns_tcb *t, int err);
void tcb_maybe_free(struct ns_stack *st, struct ns_tcb *t);
void tcb_enter_time_wait(struct ns_stack *st, struct ns_tcb *t);
struct ns_seg *seg_get(struct ns_stack *st);
void seg_put(struct ns_stack *st, struct ns_seg *s);
void sb_drop_front(struct ns_stack *st, struct ns_tcb *t, uint32_t n);
uint32_t tcp_isn(struct ns_stack *st, uint32_t laddr, uint16_t lport, uint32_t raddr,
		 uint16_t rport);
uint32_t tcp_cookie_make(struct ns_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport,
			 uint32_t irs, uint16_t mss);
/* Returns the MSS encoded in a valid cookie, 0 if invalid. */
uint16_t tcp_cookie_check(struct ns_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport,
			  uint32_t irs, uint32_t cookie);

/* ---- ns_tcp_input.c ---- */
void tcp_input(struct ns_stack *st, struct ns_pkt *p, const struct ns_ip_hdr *ip,
	       const uint8_t *seg, uint32_t len, unsigned rx_flags);

/* ---- ns_tcp_output.c ---- */
/* Sends one segment: flags, seq, data [off, off+len) of the send buffer (off from snd_una). */
int tcp_send_seg(struct ns_stack *st, struct ns_tcb *t, uint8_t flags, uint32_t seq,
		 uint32_t off, uint32_t len);
/* Sends whatever the windows allow, our FIN, and an ACK if one is owed. */
void tcp_output(struct ns_stack *st, struct ns_tcb *t);
void tcp_send_ack(struct ns_stack *st, struct ns_tcb *t);
/* A RST answering a segment with no connection (RFC 9293 3.10.7.1). */
void tcp_send_rst_reply(struct ns_stack *st, const struct ns_ip_hdr *ip,
			const struct ns_tcp_hdr *th, uint32_t seglen);
void tcp_send_rst(struct ns_stack *st, struct ns_tcb *t);
uint32_t tcp_rcv_window(const struct ns_stack *st, const struct ns_tcb *t);
void tcp_timer_run(struct ns_stack *st, struct ns_tcb *t);
/* (Re)starts the retransmission timer: a tail loss probe timeout where RFC 8985 7.2 allows
 * one, else the RTO. Outstanding data required; call tcb_timer_sched() after. */
void tcp_arm_rexmt(struct ns_stack *st, struct ns_tcb *t);
/* An ACK advanced snd_una: ends a loss probe episode it covers (RFC 8985 7.4). ts: the ACK
 * carried a timestamp, tsecr its echo. Returns whether cwnd was reduced for a repaired loss. */
bool tcp_tlp_acked(struct ns_stack *st, struct ns_tcb *t, uint32_t ack, bool ts, uint32_t tsecr);
void tcp_rtt_sample(struct ns_stack *st, struct ns_tcb *t, uint32_t rtt_us);
/* RTO from SRTT and RTTVAR (RFC 6298 2.3), clamped to [rto_min, rto_max]: drops any backoff. */
void tcp_rto_update(struct ns_stack *st, struct ns_tcb *t);
uint32_t tcp_ts_now(const struct ns_stack *st);

/* ---- ns_ip.c ---- */
/* Routes, resolves and transmits an IPv4 packet whose IP header is built; takes ownership. */
void ip_output(struct ns_stack *st, struct ns_pkt *p, uint8_t *frame, uint16_t len);
/* Releases packets held for ARP resolution. */
void ns_stack_arp_fini(struct ns_stack *st);
/* Fills the IP header (at frame + 14) for a payload of plen bytes. */
void ip_build(struct ns_stack *st, uint8_t *frame, uint32_t dst, uint8_t proto, uint16_t plen);

/* Sequence-space comparisons (RFC 9293 3.4). */
static inline bool seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static inline bool seq_le(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) <= 0;
}

static inline bool seq_gt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) > 0;
}

static inline bool seq_ge(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) >= 0;
}

static inline struct ns_stack *tcb_stack(const struct ns_tcb *t)
{
	return (struct ns_stack *)t->base.w;
}

#endif /* NS_TCP_H */
