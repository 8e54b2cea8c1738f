/* SPDX-License-Identifier: MIT */
/*
 * TCP connection management for one stack (one worker core): TCB allocation and the per-core
 * flow table, state bookkeeping and the bounded TIME_WAIT table, the per-core timer wheel,
 * RFC 6528 initial sequence numbers and SYN cookies, and the ns.h connection operations
 * (events, send with back-pressure, close, pause, active open). See ns_tcp.h for the
 * invariants; nothing here is shared with another core, so nothing takes a lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "ns_tcp.h"

#define TCB_BLOCK (NS_BLOCK_BYTES / sizeof(struct ns_tcb))
#define SEG_BLOCK 1024

/* ---- allocation ------------------------------------------------------------------------- */

static int add_block(struct ns_stack *st, void *b)
{
	void **blocks = realloc(st->blocks, (st->nblocks + 1) * sizeof(*blocks));
	if (!blocks)
		return -ENOMEM;
	st->blocks = blocks;
	st->blocks[st->nblocks++] = b;
	return 0;
}

struct ns_tcb *tcb_alloc(struct ns_stack *st)
{
	if (!st->free_tcbs) {
		struct ns_tcb *b = calloc(TCB_BLOCK, sizeof(*b));
		if (!b || add_block(st, b) != 0) {
			free(b);
			return NULL;
		}
		for (int i = (int)TCB_BLOCK - 1; i >= 0; i--) {
			b[i].all_next = st->free_tcbs;
			st->free_tcbs = &b[i];
		}
	}
	struct ns_tcb *t = st->free_tcbs;
	st->free_tcbs = t->all_next;
	memset(t, 0, sizeof(*t));
	t->base.w = &st->base;
	t->all_next = st->all;
	if (st->all)
		st->all->all_prev = t;
	st->all = t;
	return t;
}

struct ns_seg *seg_get(struct ns_stack *st)
{
	if (!st->free_segs) {
		struct ns_seg *b = calloc(SEG_BLOCK, sizeof(*b));
		if (!b || add_block(st, b) != 0) {
			free(b);
			return NULL;
		}
		for (int i = SEG_BLOCK - 1; i >= 0; i--) {
			b[i].next = st->free_segs;
			st->free_segs = &b[i];
		}
	}
	struct ns_seg *s = st->free_segs;
	st->free_segs = s->next;
	s->next = NULL;
	st->segs_held++;
	return s;
}

void seg_put(struct ns_stack *st, struct ns_seg *s)
{
	st->segs_held--;
	s->next = st->free_segs;
	st->free_segs = s;
}

static void seg_list_release(struct ns_stack *st, struct ns_seg *s)
{
	while (s) {
		struct ns_seg *n = s->next;
		st->dev->release(st->dev_ctx, s->pkt);
		seg_put(st, s);
		s = n;
	}
}

/* Drops n acknowledged bytes from the front of the send buffer. */
void sb_drop_front(struct ns_stack *st, struct ns_tcb *t, uint32_t n)
{
	if (n > t->sb_len)
		NS_DIE("acknowledged more than the send buffer holds");
	t->sb_len -= n;
	while (n) {
		struct ns_chunk *c = t->sb_head;
		uint32_t in = c->len - c->off;
		if (n < in) {
			c->off += n;
			break;
		}
		n -= in;
		t->sb_head = c->next;
		ns_chunk_put(&st->chunks, c);
	}
	if (!t->sb_head)
		t->sb_tail = NULL;
}

static void sb_drop_all(struct ns_stack *st, struct ns_tcb *t)
{
	while (t->sb_head) {
		struct ns_chunk *c = t->sb_head;
		t->sb_head = c->next;
		ns_chunk_put(&st->chunks, c);
	}
	t->sb_tail = NULL;
	t->sb_len = 0;
}

/* ---- flow table and lists --------------------------------------------------------------- */

static uint32_t bucket(const struct ns_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport)
{
	return ns_flow_hash(raddr, rport, st->cfg.ip, lport) & st->flow_mask;
}

void tcb_hash_insert(struct ns_stack *st, struct ns_tcb *t)
{
	uint32_t b = bucket(st, t->raddr, t->rport, t->lport);
	t->hnext = st->flows[b];
	st->flows[b] = t;
}

static void tcb_hash_remove(struct ns_stack *st, struct ns_tcb *t)
{
	struct ns_tcb **pp = &st->flows[bucket(st, t->raddr, t->rport, t->lport)];
	while (*pp && *pp != t)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = t->hnext;
	t->hnext = NULL;
}

struct ns_tcb *tcb_lookup(struct ns_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport)
{
	for (struct ns_tcb *t = st->flows[bucket(st, raddr, rport, lport)]; t; t = t->hnext)
		if (t->raddr == raddr && t->rport == rport && t->lport == lport)
			return t;
	return NULL;
}

void tcb_ready(struct ns_stack *st, struct ns_tcb *t)
{
	if (t->on_ready)
		return;
	t->on_ready = true;
	t->ready_next = NULL;
	if (st->ready_tail)
		st->ready_tail->ready_next = t;
	else
		st->ready = t;
	st->ready_tail = t;
}

void tcb_note(struct ns_stack *st, struct ns_tcb *t, uint8_t what)
{
	t->notes |= what;
	tcb_ready(st, t);
}

void tcb_dirty(struct ns_stack *st, struct ns_tcb *t)
{
	if (t->on_dirty)
		return;
	t->on_dirty = true;
	t->dirty_next = st->dirty;
	st->dirty = t;
}

static void tw_unlink(struct ns_stack *st, struct ns_tcb *t)
{
	if (t->tw_prev)
		t->tw_prev->tw_next = t->tw_next;
	else
		st->tw_head = t->tw_next;
	if (t->tw_next)
		t->tw_next->tw_prev = t->tw_prev;
	else
		st->tw_tail = t->tw_prev;
	t->tw_prev = t->tw_next = NULL;
}

static bool counted(uint8_t s)
{
	return s != TS_CLOSED && s != TS_TIME_WAIT;
}

void tcb_set_state(struct ns_stack *st, struct ns_tcb *t, uint8_t state)
{
	uint8_t old = t->state;
	if (old == state)
		return;
	if (counted(old) && !counted(state))
		st->nconns--;
	else if (!counted(old) && counted(state))
		st->nconns++;
	if (old == TS_SYN_RECEIVED)
		st->nhalfopen--;
	if (state == TS_SYN_RECEIVED)
		st->nhalfopen++;
	if (old == TS_TIME_WAIT) {
		st->ntw--;
		tw_unlink(st, t);
	}
	t->state = state;
	if (state == TS_CLOSED)
		tcb_hash_remove(st, t);
	/* A graceful close ends for the engine when both FINs have crossed. */
	if ((state == TS_TIME_WAIT || state == TS_CLOSED) &&
	    (t->user == U_OPEN || t->user == U_CLOSING))
		tcb_note(st, t, N_CLOSED);
}

/* ---- timer wheel ------------------------------------------------------------------------ */

static void wheel_unlink(struct ns_stack *st, struct ns_tcb *t)
{
	if (!t->in_wheel)
		return;
	if (t->wheel_prev)
		t->wheel_prev->wheel_next = t->wheel_next;
	else
		st->wheel[((t->wheel_at + 999) / 1000) & (NS_WHEEL_SLOTS - 1)] = t->wheel_next;
	if (t->wheel_next)
		t->wheel_next->wheel_prev = t->wheel_prev;
	t->in_wheel = false;
	t->wheel_prev = t->wheel_next = NULL;
}

static uint64_t earliest(const struct ns_tcb *t)
{
	const uint64_t d[] = {t->t_rexmt, t->t_delack, t->t_persist, t->t_keep, t->t_2msl,
			      t->t_conn};
	uint64_t m = 0;
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		if (d[i] && (!m || d[i] < m))
			m = d[i];
	return m;
}

void tcb_timer_sched(struct ns_stack *st, struct ns_tcb *t)
{
	uint64_t at = earliest(t);
	if (t->in_wheel && at == t->wheel_at)
		return;
	wheel_unlink(st, t);
	if (!at)
		return;
	/* Never into a slot already passed: what is due now runs at the next tick. */
	uint64_t min_at = (st->wheel_tick + 1) * 1000;
	t->wheel_at = at < min_at ? min_at : at;
	uint64_t slot = ((t->wheel_at + 999) / 1000) & (NS_WHEEL_SLOTS - 1);
	t->wheel_next = st->wheel[slot];
	t->wheel_prev = NULL;
	if (t->wheel_next)
		t->wheel_next->wheel_prev = t;
	st->wheel[slot] = t;
	t->in_wheel = true;
}

void ns_stack_timers(struct ns_stack *st)
{
	uint64_t now_tick = st->now_us / 1000;
	if (st->wheel_tick == 0 || now_tick < st->wheel_tick)
		st->wheel_tick = now_tick ? now_tick - 1 : 0;
	uint64_t ticks = now_tick - st->wheel_tick;
	if (ticks > NS_WHEEL_SLOTS)
		ticks = NS_WHEEL_SLOTS; /* a long pause: every slot once is enough */
	uint64_t first = now_tick - ticks + 1;
	for (uint64_t tick = first; tick <= now_tick; tick++) {
		st->wheel_tick = tick;
		uint64_t slot = tick & (NS_WHEEL_SLOTS - 1);
		struct ns_tcb *list = st->wheel[slot];
		st->wheel[slot] = NULL;
		for (struct ns_tcb *t = list; t; t = t->wheel_next)
			t->in_wheel = false;
		while (list) {
			struct ns_tcb *t = list;
			list = t->wheel_next;
			t->wheel_prev = t->wheel_next = NULL;
			if (t->wheel_at <= st->now_us)
				tcp_timer_run(st, t); /* may free t */
			else
				tcb_timer_sched(st, t); /* another round of the wheel */
		}
	}
	st->wheel_tick = now_tick;
}

/* ---- life and death of a TCB ------------------------------------------------------------ */

static void rcv_queues_release(struct ns_stack *st, struct ns_tcb *t)
{
	seg_list_release(st, t->rq_head);
	seg_list_release(st, t->ooo);
	t->rq_head = t->rq_tail = t->ooo = NULL;
	t->rq_bytes = t->ooo_bytes = t->nsegs = 0;
}

void tcb_maybe_free(struct ns_stack *st, struct ns_tcb *t)
{
	if (t->state != TS_CLOSED || (t->user != U_NONE && t->user != U_DETACHED) ||
	    t->on_ready || t->on_dirty || t->on_reported)
		return;
	wheel_unlink(st, t);
	rcv_queues_release(st, t);
	sb_drop_all(st, t);
	if (t->all_prev)
		t->all_prev->all_next = t->all_next;
	else
		st->all = t->all_next;
	if (t->all_next)
		t->all_next->all_prev = t->all_prev;
	t->all_next = st->free_tcbs;
	st->free_tcbs = t;
}

void tcb_drop(struct ns_stack *st, struct ns_tcb *t, int err)
{
	if (t->state == TS_CLOSED)
		return;
	if (err && (t->user == U_OPEN || t->user == U_CLOSING)) {
		t->err = err;
		t->base.w->stats.errors++;
	}
	rcv_queues_release(st, t);
	sb_drop_all(st, t);
	t->t_rexmt = t->t_delack = t->t_persist = t->t_keep = t->t_2msl = t->t_conn = 0;
	t->fin_rcvd = false;
	tcb_set_state(st, t, TS_CLOSED);
	wheel_unlink(st, t);
	tcb_maybe_free(st, t);
}

void tcb_enter_time_wait(struct ns_stack *st, struct ns_tcb *t)
{
	rcv_queues_release(st, t);
	sb_drop_all(st, t);
	t->t_rexmt = t->t_delack = t->t_persist = t->t_keep = t->t_conn = 0;
	t->t_2msl = st->now_us + 2ull * st->cfg.msl_ms * 1000;
	tcb_set_state(st, t, TS_TIME_WAIT);
	st->ntw++;
	t->tw_next = NULL;
	t->tw_prev = st->tw_tail;
	if (st->tw_tail)
		st->tw_tail->tw_next = t;
	else
		st->tw_head = t;
	st->tw_tail = t;
	tcb_timer_sched(st, t);
	/* Bounded table: the oldest TIME_WAIT gives way (its 4-tuple may be reused early, which
	 * RFC 6191-style ISN/timestamp checks on the peer's side tolerate). */
	while (st->ntw > st->cfg.tw_max) {
		st->xs.tcp_tw_recycled++;
		tcb_drop(st, st->tw_head, 0);
	}
}

/* ---- ISN and SYN cookies ---------------------------------------------------------------- */

struct tuple_key {
	uint32_t laddr, raddr;
	uint16_t lport, rport;
	uint32_t extra1, extra2;
};

uint32_t tcp_isn(struct ns_stack *st, uint32_t laddr, uint16_t lport, uint32_t raddr,
		 uint16_t rport)
{
	/* RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), with M a
	 * 4-microsecond timer and F a keyed hash (SipHash). */
	struct tuple_key k = {laddr, raddr, lport, rport, 0, 0};
	return (uint32_t)(st->now_us / 4) + (uint32_t)ns_siphash(st->cfg.secret, &k, sizeof(k));
}

static const uint16_t cookie_mss[8] = {216, 536, 1024, 1200, 1360, 1400, 1440, 1460};
#define COOKIE_PERIOD_US (64ull * 1000000)

static uint32_t cookie_hash(struct ns_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport,
			    uint32_t irs, uint32_t count)
{
	struct tuple_key k = {st->cfg.ip, raddr, lport, rport, irs, count};
	return (uint32_t)(ns_siphash(st->cfg.secret, &k, sizeof(k)) >> 8) & 0xffffff;
}

uint32_t tcp_cookie_make(struct ns_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport,
			 uint32_t irs, uint16_t mss)
{
	/* 5 bits of time (64 s periods), 3 bits of MSS index, 24 bits of keyed hash. */
	uint32_t count = (uint32_t)(st->now_us / COOKIE_PERIOD_US);
	uint32_t idx = 0;
	for (uint32_t i = 0; i < 8; i++)
		if (cookie_mss[i] <= mss)
			idx = i;
	return ((count & 0x1f) << 27) | (idx << 24) |
	       cookie_hash(st, raddr, rport, lport, irs, count);
}

uint16_t tcp_cookie_check(struct ns_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport,
			  uint32_t irs, uint32_t cookie)
{
	uint32_t now = (uint32_t)(st->now_us / COOKIE_PERIOD_US);
	for (uint32_t age = 0; age < 2 && age <= now; age++) {
		uint32_t count = now - age;
		if ((count & 0x1f) != cookie >> 27)
			continue;
		if (cookie_hash(st, raddr, rport, lport, irs, count) == (cookie & 0xffffff))
			return cookie_mss[(cookie >> 24) & 7];
	}
	return 0;
}

/* ---- the ns.h connection operations ------------------------------------------------------ */

static struct ns_tcb *tcb(struct ns_conn *c)
{
	return (struct ns_tcb *)c;
}

int ns_stack_send(struct ns_conn *c, const struct iovec *iov, unsigned iovcnt)
{
	struct ns_tcb *t = tcb(c);
	struct ns_stack *st = tcb_stack(t);
	size_t total = 0;

	if (t->user != U_OPEN || t->fin_queued ||
	    (t->state != TS_ESTABLISHED && t->state != TS_CLOSE_WAIT && t->state != TS_SYN_SENT))
		return -EPIPE;
	for (unsigned i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total > st->cfg.tx_limit || t->sb_len + total > st->cfg.tx_limit) {
		t->want_writable = true;
		st->base.stats.tx_full++;
		return -ENOBUFS;
	}
	if (ns_chunk_append(&st->chunks, &t->sb_head, &t->sb_tail, iov, iovcnt, total) != 0) {
		/* out of memory on the data path: this connection ends */
		tcp_send_rst(st, t);
		tcb_drop(st, t, -ENOMEM);
		return -EPIPE;
	}
	t->sb_len += (uint32_t)total;
	if (total)
		tcb_dirty(st, t);
	return 0;
}

void ns_stack_close(struct ns_conn *c, bool graceful)
{
	struct ns_tcb *t = tcb(c);
	struct ns_stack *st = tcb_stack(t);

	if (t->user != U_OPEN && !(t->user == U_CLOSING && !graceful))
		return;
	if (!graceful || t->state == TS_SYN_SENT) {
		if (t->state != TS_SYN_SENT && t->state != TS_CLOSED)
			tcp_send_rst(st, t);
		if (t->state == TS_CLOSED)
			tcb_note(st, t, N_CLOSED);
		else
			tcb_drop(st, t, 0);
		return;
	}
	t->user = U_CLOSING;
	t->want_writable = false;
	/* The engine wants no more input: drop what waits and keep acknowledging. */
	seg_list_release(st, t->rq_head);
	t->rq_head = t->rq_tail = NULL;
	t->rq_bytes = 0;
	t->nsegs = 0;
	seg_list_release(st, t->ooo);
	t->ooo = NULL;
	t->ooo_bytes = 0;
	switch (t->state) {
	case TS_ESTABLISHED:
		t->fin_queued = true;
		tcb_set_state(st, t, TS_FIN_WAIT_1);
		break;
	case TS_CLOSE_WAIT:
		t->fin_queued = true;
		tcb_set_state(st, t, TS_LAST_ACK);
		break;
	default:
		break; /* already closing or closed: CLOSED is noted when it ends */
	}
	if (t->state == TS_CLOSED)
		tcb_note(st, t, N_CLOSED);
	tcb_dirty(st, t);
}

void ns_stack_pause_rx(struct ns_conn *c, bool pause)
{
	struct ns_tcb *t = tcb(c);
	struct ns_stack *st = tcb_stack(t);
	if (t->paused == pause || t->user != U_OPEN)
		return;
	t->paused = pause;
	if (pause) {
		st->base.stats.rx_paused++;
	} else if (t->rq_head || t->fin_rcvd) {
		tcb_ready(st, t);
	}
}

const char *ns_stack_tcp_counters(const struct ns_stack_stats *x, char *buf, size_t len)
{
	snprintf(buf, len,
		 "rcv_drop %llu, rcv_dup %llu, retransmits %llu, fast_retransmits %llu, "
		 "rto_fired %llu, tlp_probes %llu, tlp_recoveries %llu, tlp_spurious %llu, "
		 "ooo_segs %llu, dupacks %llu, rst_rx %llu, timeouts %llu",
		 (unsigned long long)x->tcp_rcv_drop, (unsigned long long)x->tcp_rcv_dup,
		 (unsigned long long)x->tcp_retransmits, (unsigned long long)x->tcp_fast_retransmits,
		 (unsigned long long)x->tcp_rto_fired, (unsigned long long)x->tcp_tlp_probes,
		 (unsigned long long)x->tcp_tlp_recoveries, (unsigned long long)x->tcp_tlp_spurious,
		 (unsigned long long)x->tcp_ooo_segs, (unsigned long long)x->tcp_dupacks,
		 (unsigned long long)x->tcp_rst_rx, (unsigned long long)x->tcp_timeouts);
	return buf;
}

size_t ns_stack_pending(const struct ns_conn *c)
{
	return ((const struct ns_tcb *)c)->sb_len;
}

bool ns_stack_has_events(const struct ns_stack *st)
{
	return st->ready != NULL;
}

/* Delivers in-order data up to the per-poll budget; returns events written. */
static unsigned deliver(struct ns_stack *st, struct ns_tcb *t, struct ns_event *ev,
			unsigned room)
{
	uint32_t budget = st->cfg.rx_chunk;
	uint32_t before = tcp_rcv_window(st, t);
	unsigned n = 0;
	while (t->rq_head && n < room && budget) {
		struct ns_seg *s = t->rq_head;
		uint32_t take = s->len < budget ? s->len : budget;
		ev[n++] = (struct ns_event){.type = NS_EV_DATA, .conn = &t->base,
					    .user = t->base.user, .data = s->data, .len = take};
		budget -= take;
		t->rq_bytes -= take;
		st->base.stats.rx_bytes += take;
		if (take < s->len) {
			/* The rest of this segment waits for the next poll. The view must outlive
			 * a reset or close before then: hold the buffer once more for it. */
			struct ns_seg *d = seg_get(st);
			if (d) {
				st->dev->hold(st->dev_ctx, s->pkt);
				d->pkt = s->pkt;
				d->next = st->delivered;
				st->delivered = d;
			}
			s->data += take;
			s->len -= take;
			s->seq += take;
			break;
		}
		t->rq_head = s->next;
		if (!t->rq_head)
			t->rq_tail = NULL;
		t->nsegs--;
		s->next = st->delivered;
		st->delivered = s;
	}
	/* Receiver-side silly window avoidance (RFC 9293 3.8.6.2.2): announce a window that
	 * opened by at least an MSS or half the buffer. */
	uint32_t after = tcp_rcv_window(st, t);
	uint32_t most = 65535u << t->rcv_wscale; /* what the header can say */
	if (after > most)
		after = most;
	if (before > most)
		before = most;
	uint32_t step = st->cfg.rcv_buf / 2 < t->mss ? st->cfg.rcv_buf / 2 : t->mss;
	uint32_t adv = seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
	if (after > before && after >= adv + step) {
		t->ack_now = true;
		tcb_dirty(st, t);
	}
	return n;
}

unsigned ns_stack_events(struct ns_stack *st, struct ns_event *ev, unsigned max)
{
	unsigned n = 0;

	seg_list_release(st, st->delivered);
	st->delivered = NULL;
	while (st->reported) {
		struct ns_tcb *t = st->reported;
		st->reported = t->rep_next;
		t->on_reported = false;
		t->user = U_DETACHED;
		tcb_maybe_free(st, t);
	}

	struct ns_tcb *again = NULL, *again_tail = NULL;
	while (st->ready && n < max) {
		struct ns_tcb *t = st->ready;
		unsigned room = max - n;
		if (room < 3 && t->rq_head)
			break; /* keep the order ACCEPT, DATA, WRITABLE, CLOSED for the next call */
		st->ready = t->ready_next;
		if (!st->ready)
			st->ready_tail = NULL;
		t->on_ready = false;

		/* ACCEPT is its connection's last event in a batch: the engine names the user
		 * while handling it, and the connection's DATA and CLOSED must carry that user
		 * (ns.h), so they wait for the next call. The data is not lost and its order is
		 * kept; it is what the kernel backend does, where a new socket's first read is
		 * in the poll after its accept. */
		bool accepted = false;
		if (t->notes & N_ACCEPT) {
			t->notes &= (uint8_t)~N_ACCEPT;
			if (t->user == U_OPEN) {
				ev[n++] = (struct ns_event){.type = NS_EV_ACCEPT, .conn = &t->base};
				accepted = true;
			}
		}
		if (!accepted && t->user == U_OPEN && !t->paused && t->rq_head && n < max)
			n += deliver(st, t, ev + n, max - n);
		if (!accepted && (t->notes & N_WRITABLE) && n < max) {
			t->notes &= (uint8_t)~N_WRITABLE;
			if (t->user == U_OPEN)
				ev[n++] = (struct ns_event){.type = NS_EV_WRITABLE, .conn = &t->base,
							    .user = t->base.user};
		}
		bool eof = t->fin_rcvd && !t->rq_head && t->user == U_OPEN;
		if (!accepted && ((t->notes & N_CLOSED) || eof) && n < max &&
		    (t->user == U_OPEN || t->user == U_CLOSING)) {
			t->notes = 0;
			ev[n++] = (struct ns_event){.type = NS_EV_CLOSED, .conn = &t->base,
						    .user = t->base.user, .err = t->err};
			st->base.stats.closed++;
			t->user = U_REPORTED;
			t->on_reported = true;
			t->rep_next = st->reported;
			st->reported = t;
			if (t->state == TS_CLOSE_WAIT) {
				/* The peer closed and the engine is told: close our side too,
				 * after the output still queued. */
				t->fin_queued = true;
				tcb_set_state(st, t, TS_LAST_ACK);
				tcb_dirty(st, t);
			}
		}
		bool more = (t->notes && t->user != U_REPORTED && t->user != U_DETACHED) ||
			    (t->user == U_OPEN && !t->paused && (t->rq_head || t->fin_rcvd));
		if (more) {
			/* next call: appended after this loop so one call cannot spin on it */
			t->on_ready = true;
			t->ready_next = NULL;
			if (again_tail)
				again_tail->ready_next = t;
			else
				again = t;
			again_tail = t;
		} else {
			t->notes = 0;
			tcb_maybe_free(st, t);
		}
	}
	if (again) {
		if (st->ready_tail)
			st->ready_tail->ready_next = again;
		else
			st->ready = again;
		st->ready_tail = again_tail;
	}
	return n;
}

void ns_stack_flush(struct ns_stack *st)
{
	while (st->dirty) {
		struct ns_tcb *t = st->dirty;
		st->dirty = t->dirty_next;
		t->on_dirty = false;
		if (t->state != TS_CLOSED && t->state != TS_TIME_WAIT)
			tcp_output(st, t);
		tcb_maybe_free(st, t);
	}
}

int ns_stack_connect(struct ns_stack *st, uint32_t raddr, uint16_t rport, struct ns_conn **out)
{
	if (st->nconns >= st->cfg.max_conns)
		return -EMFILE;
	uint16_t lport = 0;
	/* RFC 6056 3.3.3-like: a random seed (getrandom() at init), a keyed hash of the
	 * destination, and a per-stack counter, so successive connections start apart and an
	 * observer cannot predict the next port from the clock */
	struct {
		uint32_t raddr;
		uint16_t rport, pad;
	} dst = {raddr, rport, 0};
	uint32_t r = st->port_seed + st->port_count++ +
		     (uint32_t)ns_siphash(st->cfg.secret, &dst, sizeof(dst));
	/* With several workers on one device, only a port whose flow this core owns will see
	 * the answers (ns_steer.c): about one candidate in steer_workers qualifies, so the walk
	 * is longer by that factor. */
	unsigned tries = 256 * (st->cfg.steer_workers > 1 ? st->cfg.steer_workers : 1u);
	for (unsigned i = 0; i < tries && !lport; i++) {
		uint16_t cand = (uint16_t)(32768 + (r + i * 7919) % 28232);
		if (cand == st->cfg.listen_port || tcb_lookup(st, raddr, rport, cand))
			continue;
		if (st->cfg.steer_workers > 1 &&
		    ns_steer_owner(ns_rss_hash(st->cfg.ip, raddr, cand, rport), st->cfg.steer_mask,
				   st->cfg.steer_workers) != st->cfg.steer_self)
			continue;
		lport = cand;
	}
	if (!lport)
		return -EADDRNOTAVAIL;
	struct ns_tcb *t = tcb_alloc(st);
	if (!t)
		return -ENOMEM;
	t->laddr = st->cfg.ip;
	t->raddr = raddr;
	t->lport = lport;
	t->rport = rport;
	t->active = true;
	t->user = U_OPEN;
	t->iss = tcp_isn(st, t->laddr, lport, raddr, rport);
	t->snd_una = t->snd_nxt = t->snd_max = t->iss;
	t->mss = 536;
	t->rto_us = st->cfg.rto_init_ms * 1000;
	t->cwnd = 10 * 1460;
	t->ssthresh = 0xffffffffu;
	if (st->cfg.wscale) {
		while (t->rcv_wscale < 14 && (st->cfg.rcv_buf >> t->rcv_wscale) > 65535)
			t->rcv_wscale++;
	}
	ns_conn_set_peer4(&t->base, &raddr, rport);
	tcb_set_state(st, t, TS_SYN_SENT);
	tcb_hash_insert(st, t);
	tcp_send_seg(st, t, NS_TH_SYN, t->iss, 0, 0);
	t->snd_nxt = t->snd_max = t->iss + 1;
	t->t_rexmt = st->now_us + t->rto_us;
	tcb_timer_sched(st, t);
	*out = &t->base;
	return 0;
}

void ns_stack_fini(struct ns_stack *st)
{
	seg_list_release(st, st->delivered);
	st->delivered = NULL;
	for (struct ns_tcb *t = st->all; t; t = t->all_next) {
		rcv_queues_release(st, t);
		sb_drop_all(st, t);
	}
	ns_stack_arp_fini(st);
	ns_chunk_cache_fini(&st->chunks);
	for (size_t i = 0; i < st->nblocks; i++)
		free(st->blocks[i]);
	free(st->blocks);
	free(st->flows);
	st->blocks = NULL;
	st->nblocks = 0;
	st->flows = NULL;
	st->all = st->ready = st->ready_tail = st->dirty = st->reported = NULL;
	st->free_tcbs = NULL;
	st->free_segs = NULL;
}
