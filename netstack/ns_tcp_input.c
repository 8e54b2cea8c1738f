/* SPDX-License-Identifier: MIT */
/*
 * TCP input: RFC 9293 3.10.7 "SEGMENT ARRIVES", for the listener (passive open, SYN cookies
 * when the backlog is full), SYN_SENT (active open) and the synchronized states, with RFC 5961
 * challenge ACKs for in-window RST/SYN, RFC 7323 window scaling, timestamps and PAWS, RFC 5681
 * slow start / congestion avoidance / fast retransmit, RFC 6582 NewReno recovery, delayed ACKs
 * (every second segment at once, else after delack_ms), and out-of-order queueing.
 *
 * Receive is zero-copy: a segment's payload stays in its device buffer (one hold per queued
 * segment) until the engine has seen it. Out-of-order segments are kept sorted by sequence
 * number and trimmed against their neighbours when inserted, so the queue never overlaps; they
 * move to the in-order queue when the hole before them fills. A FIN that arrives out of order
 * is remembered by its sequence number (fin_ooo) and processed when the hole fills.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include "ns_tcp.h"

struct tcp_opts {
	uint16_t mss;   /* 0: absent */
	int8_t wscale;  /* -1: absent */
	bool ts;
	uint32_t tsval, tsecr;
};

/* Returns 0, or -EINVAL for options that run past the header. */
static int parse_opts(const uint8_t *o, uint32_t len, struct tcp_opts *out)
{
	*out = (struct tcp_opts){.wscale = -1};
	uint32_t i = 0;
	while (i < len) {
		uint8_t kind = o[i];
		if (kind == NS_TCPOPT_EOL)
			break;
		if (kind == NS_TCPOPT_NOP) {
			i++;
			continue;
		}
		if (i + 1 >= len || o[i + 1] < 2 || i + o[i + 1] > len)
			return -EINVAL;
		uint8_t ol = o[i + 1];
		if (kind == NS_TCPOPT_MSS && ol == 4) {
			out->mss = (uint16_t)((o[i + 2] << 8) | o[i + 3]);
		} else if (kind == NS_TCPOPT_WSCALE && ol == 3) {
			out->wscale = (int8_t)(o[i + 2] > 14 ? 14 : o[i + 2]); /* RFC 7323 2.3 */
		} else if (kind == NS_TCPOPT_TS && ol == 10) {
			uint32_t v, e;
			memcpy(&v, o + i + 2, 4);
			memcpy(&e, o + i + 6, 4);
			out->ts = true;
			out->tsval = ntohl(v);
			out->tsecr = ntohl(e);
		}
		i += ol;
	}
	return 0;
}

/* A handshake's RTT sample from the echo of one of our timestamps (RFC 7323 4.1), if the
 * segment carries one from the last minute. Returns whether it gave one. */
static bool rtt_from_echo(struct ns_stack *st, struct ns_tcb *t, const struct tcp_opts *op)
{
	uint32_t r = tcp_ts_now(st) - op->tsecr;

	if (!t->ts_ok || !op->ts || !op->tsecr || r >= 60000)
		return false;
	tcp_rtt_sample(st, t, r * 1000);
	return true;
}

static uint8_t wscale_for(uint32_t buf)
{
	uint8_t s = 0;
	while (s < 14 && (buf >> s) > 65535)
		s++;
	return s;
}

/* Initial window, RFC 5681 3.1 (the RFC 3390 formula). */
static uint32_t initial_cwnd(uint32_t mss)
{
	uint32_t w = 4 * mss;
	uint32_t cap = 2 * mss > 4380 ? 2 * mss : 4380;
	return w < cap ? w : cap;
}

static void established(struct ns_stack *st, struct ns_tcb *t)
{
	tcb_set_state(st, t, TS_ESTABLISHED);
	t->retries = 0;
	t->t_rexmt = 0;
	t->t_keep = st->cfg.keep_idle_ms ? st->now_us + st->cfg.keep_idle_ms * 1000ull : 0;
	st->base.stats.accepted++;
	if (t->user == U_NONE)
		t->user = U_OPEN;
	tcb_note(st, t, N_ACCEPT);
	tcb_timer_sched(st, t);
}

static void apply_syn_opts(struct ns_stack *st, struct ns_tcb *t, const struct tcp_opts *op)
{
	t->mss = op->mss ? op->mss : 536; /* RFC 9293 3.7.1 default */
	if (t->mss < 64)
		t->mss = 64;
	if (op->wscale >= 0 && st->cfg.wscale) {
		t->ws_ok = true;
		t->snd_wscale = (uint8_t)op->wscale;
		t->rcv_wscale = wscale_for(st->cfg.rcv_buf);
	} else {
		t->ws_ok = false;
		t->snd_wscale = t->rcv_wscale = 0;
	}
	t->ts_ok = op->ts && st->cfg.timestamps;
	if (t->ts_ok)
		t->ts_recent = op->tsval;
}

/* RFC 9293 3.10.7.2. Returns a TCB to continue with (a SYN cookie completed), or NULL. */
static struct ns_tcb *listen_input(struct ns_stack *st, const struct ns_ip_hdr *ip,
				   const struct ns_tcp_hdr *th, const struct tcp_opts *op,
				   uint32_t seglen)
{
	uint8_t fl = th->flags;
	uint32_t seq = ntohl(th->seq), ack = ntohl(th->ack);
	uint16_t sport = ntohs(th->sport), dport = ntohs(th->dport);

	if (fl & NS_TH_RST)
		return NULL;
	if (fl & NS_TH_ACK) {
		uint16_t mss = 0;
		if (st->cfg.syncookies && !(fl & NS_TH_SYN))
			mss = tcp_cookie_check(st, ip->src, sport, dport, seq - 1, ack - 1);
		if (!mss) {
			if (st->cfg.syncookies && !(fl & NS_TH_SYN))
				st->xs.tcp_syncookies_bad++;
			tcp_send_rst_reply(st, ip, th, seglen);
			return NULL;
		}
		if (st->nconns >= st->cfg.max_conns) {
			st->base.stats.refused++;
			tcp_send_rst_reply(st, ip, th, seglen);
			return NULL;
		}
		struct ns_tcb *t = tcb_alloc(st);
		if (!t) {
			st->base.stats.refused++;
			return NULL;
		}
		st->xs.tcp_syncookies_ok++;
		t->laddr = st->cfg.ip;
		t->raddr = ip->src;
		t->lport = dport;
		t->rport = sport;
		t->irs = seq - 1;
		t->rcv_nxt = t->rcv_adv = seq;
		t->iss = ack - 1;
		t->snd_una = t->snd_nxt = t->snd_max = ack;
		t->snd_wnd = ntohs(th->win); /* no window scaling with cookies */
		t->snd_wl1 = seq;
		t->snd_wl2 = ack;
		t->mss = mss;
		t->rto_us = st->cfg.rto_init_ms * 1000;
		t->cwnd = initial_cwnd(mss);
		t->ssthresh = 0xffffffffu;
		ns_conn_set_peer4(&t->base, &t->raddr, t->rport);
		tcb_hash_insert(st, t);
		t->state = TS_CLOSED;
		established(st, t);
		return t;
	}
	if (!(fl & NS_TH_SYN))
		return NULL;
	if (st->nconns >= st->cfg.max_conns) {
		st->base.stats.refused++;
		tcp_send_rst_reply(st, ip, th, seglen);
		return NULL;
	}
	if (st->nhalfopen >= st->cfg.backlog) {
		if (!st->cfg.syncookies) {
			st->base.stats.refused++;
			return NULL;
		}
		/* Stateless answer: a throw-away TCB only carries the addresses for the builder. */
		struct ns_tcb tmp;
		memset(&tmp, 0, sizeof(tmp));
		tmp.base.w = &st->base;
		tmp.raddr = ip->src;
		tmp.lport = dport;
		tmp.rport = sport;
		tmp.rcv_nxt = seq + 1;
		uint16_t mss = op->mss ? op->mss : 536;
		tmp.iss = tcp_cookie_make(st, ip->src, sport, dport, seq, mss);
		st->xs.tcp_syncookies_tx++;
		tcp_send_seg(st, &tmp, NS_TH_SYN | NS_TH_ACK, tmp.iss, 0, 0);
		return NULL;
	}
	struct ns_tcb *t = tcb_alloc(st);
	if (!t) {
		st->base.stats.refused++;
		return NULL;
	}
	t->laddr = st->cfg.ip;
	t->raddr = ip->src;
	t->lport = dport;
	t->rport = sport;
	t->irs = seq;
	t->rcv_nxt = t->rcv_adv = seq + 1;
	apply_syn_opts(st, t, op);
	t->iss = tcp_isn(st, t->laddr, dport, t->raddr, sport);
	t->snd_una = t->iss;
	t->snd_wnd = ntohs(th->win); /* never scaled in a SYN (RFC 7323 2.2) */
	t->snd_wl1 = seq;
	t->snd_wl2 = t->iss;
	t->rto_us = st->cfg.rto_init_ms * 1000;
	t->cwnd = initial_cwnd(t->mss);
	t->ssthresh = 0xffffffffu;
	t->last_rx_us = st->now_us;
	ns_conn_set_peer4(&t->base, &t->raddr, t->rport);
	tcb_set_state(st, t, TS_SYN_RECEIVED);
	tcb_hash_insert(st, t);
	tcp_send_seg(st, t, NS_TH_SYN | NS_TH_ACK, t->iss, 0, 0);
	t->snd_nxt = t->snd_max = t->iss + 1;
	t->rtt_timing = !t->ts_ok;
	t->rtt_seq = t->iss;
	t->rtt_start_us = st->now_us;
	t->t_rexmt = st->now_us + t->rto_us;
	tcb_timer_sched(st, t);
	return NULL;
}

/* RFC 9293 3.10.7.3. */
static void syn_sent_input(struct ns_stack *st, struct ns_tcb *t, const struct ns_ip_hdr *ip,
			   const struct ns_tcp_hdr *th, const struct tcp_opts *op, uint32_t seglen)
{
	uint8_t fl = th->flags;
	uint32_t seq = ntohl(th->seq), ack = ntohl(th->ack);

	if ((fl & NS_TH_ACK) && (seq_le(ack, t->iss) || seq_gt(ack, t->snd_max))) {
		tcp_send_rst_reply(st, ip, th, seglen);
		return;
	}
	if (fl & NS_TH_RST) {
		if (fl & NS_TH_ACK) {
			st->xs.tcp_rst_rx++;
			tcb_drop(st, t, -ECONNREFUSED);
		}
		return;
	}
	if (!(fl & NS_TH_SYN))
		return;
	t->irs = seq;
	t->rcv_nxt = t->rcv_adv = seq + 1;
	apply_syn_opts(st, t, op);
	t->snd_wnd = ntohs(th->win);
	t->snd_wl1 = seq;
	t->snd_wl2 = ack;
	t->cwnd = initial_cwnd(t->mss);
	if (fl & NS_TH_ACK) {
		t->snd_una = ack;
		/* the first RTT sample: from the echo of our SYN's TSval, else from the SYN's
		 * time if it was sent once (Karn) */
		if (!rtt_from_echo(st, t, op) && t->retries == 0)
			tcp_rtt_sample(st, t, (uint32_t)(st->now_us - (t->t_rexmt - t->rto_us)));
		established(st, t);
		tcp_send_ack(st, t);
		return;
	}
	/* simultaneous open */
	tcb_set_state(st, t, TS_SYN_RECEIVED);
	tcp_send_seg(st, t, NS_TH_SYN | NS_TH_ACK, t->iss, 0, 0);
}

/* Queues an out-of-order segment, trimmed against its neighbours. Takes a hold on p. */
static void ooo_insert(struct ns_stack *st, struct ns_tcb *t, struct ns_pkt *p,
		       const uint8_t *data, uint32_t seq, uint32_t len)
{
	struct ns_seg **pp = &t->ooo;
	while (*pp && seq_le((*pp)->seq + (*pp)->len, seq))
		pp = &(*pp)->next;
	struct ns_seg *prev_end = NULL;
	(void)prev_end;
	/* now *pp is the first segment ending after seq: trim our front against it if it starts
	 * before us, our back against it if it starts inside us */
	while (*pp && len) {
		struct ns_seg *n = *pp;
		if (seq_le(n->seq, seq)) {
			uint32_t over = n->seq + n->len - seq;
			if (over >= len) {
				st->xs.tcp_rcv_dup++; /* wholly duplicate */
				return;
			}
			seq += over;
			data += over;
			len -= over;
			pp = &n->next;
			continue;
		}
		if (seq_lt(n->seq, seq + len))
			len = n->seq - seq; /* keep what precedes n; the rest duplicates n or later */
		break;
	}
	if (!len)
		return;
	struct ns_seg *s = seg_get(st);
	if (!s) {
		st->xs.tcp_rcv_drop++;
		return;
	}
	st->dev->hold(st->dev_ctx, p);
	*s = (struct ns_seg){.next = *pp, .pkt = p, .data = data, .seq = seq, .len = len};
	*pp = s;
	t->ooo_bytes += len;
	t->nsegs++;
	st->xs.tcp_ooo_segs++;
}

static void rq_append(struct ns_tcb *t, struct ns_seg *s)
{
	s->next = NULL;
	if (t->rq_tail)
		t->rq_tail->next = s;
	else
		t->rq_head = s;
	t->rq_tail = s;
	t->rq_bytes += s->len;
	t->rcv_nxt += s->len;
}

/* Moves out-of-order segments that now follow rcv_nxt to the in-order queue. */
static void ooo_drain(struct ns_stack *st, struct ns_tcb *t)
{
	while (t->ooo && seq_le(t->ooo->seq, t->rcv_nxt)) {
		struct ns_seg *s = t->ooo;
		t->ooo = s->next;
		t->ooo_bytes -= s->len;
		uint32_t over = t->rcv_nxt - s->seq;
		if (over >= s->len) {
			st->dev->release(st->dev_ctx, s->pkt);
			seg_put(st, s);
			t->nsegs--;
			continue;
		}
		s->seq += over;
		s->data += over;
		s->len -= over;
		if (t->user == U_OPEN) {
			rq_append(t, s);
		} else {
			t->rcv_nxt += s->len;
			st->dev->release(st->dev_ctx, s->pkt);
			seg_put(st, s);
			t->nsegs--;
		}
	}
}

/* Payload and FIN of an acceptable segment in ESTABLISHED, FIN_WAIT_1 or FIN_WAIT_2. */
static void data_input(struct ns_stack *st, struct ns_tcb *t, struct ns_pkt *p,
		       const uint8_t *data, uint32_t seq, uint32_t plen, bool fin)
{
	uint32_t wnd = tcp_rcv_window(st, t);
	if (seq_lt(seq, t->rcv_nxt)) {
		uint32_t d = t->rcv_nxt - seq;
		if (d > plen) {
			d = plen; /* only a FIN (or nothing) is new */
		}
		data += d;
		plen -= d;
		seq += d;
	}
	if (seq_gt(seq + plen, t->rcv_nxt + wnd)) {
		uint32_t keep = seq_gt(t->rcv_nxt + wnd, seq) ? t->rcv_nxt + wnd - seq : 0;
		plen = keep;
		fin = false; /* the FIN lies beyond the window */
		st->xs.tcp_rcv_drop++;
		t->ack_now = true;
	}
	if ((plen || fin) && seq != t->rcv_nxt) {
		/* Out of order. The FIN is remembered with its sequence number (RFC 9293 3.10.7.4
		 * lets a receiver hold segments beyond RCV.NXT for later processing; the FIN is
		 * part of one): dropping it cost the peer a retransmission timeout at the very end
		 * of every transfer whose last segments were reordered or followed a loss. */
		if (plen) {
			if (t->nsegs >= st->cfg.max_segs)
				st->xs.tcp_rcv_drop++;
			else
				ooo_insert(st, t, p, data, seq, plen);
		}
		if (fin) {
			t->fin_ooo = true;
			t->fin_ooo_seq = seq + plen;
		}
		/* RFC 5681 4.2: "A TCP receiver SHOULD send an immediate duplicate ACK when an
		 * out-of-order segment arrives." One per segment, now: the flag below coalesced
		 * all that a receive burst brought into a single ACK at flush, and a sender needs
		 * three duplicates to fast retransmit (RFC 5681 3.2). */
		tcp_send_ack(st, t);
		return;
	}
	if (plen) {
		if (t->user != U_OPEN) {
			/* the engine closed: acknowledge and discard */
			t->rcv_nxt += plen;
			ooo_drain(st, t);
			t->ack_now = true;
		} else {
			struct ns_seg *s = t->nsegs < st->cfg.max_segs ? seg_get(st) : NULL;
			if (!s) {
				st->xs.tcp_rcv_drop++;
				t->ack_now = true;
				return;
			}
			st->dev->hold(st->dev_ctx, p);
			*s = (struct ns_seg){.pkt = p, .data = data, .seq = seq, .len = plen};
			t->nsegs++;
			bool filled = t->ooo != NULL;
			rq_append(t, s);
			ooo_drain(st, t);
			tcb_ready(st, t);
			/* RFC 5681 4.2 / RFC 9293 3.8.6.3: ACK at least every second full segment,
			 * at once when a hole was filled, else within delack_ms */
			if (filled || ++t->unacked_segs >= 2) {
				t->ack_now = true;
			} else if (!t->t_delack) {
				t->t_delack = st->now_us + st->cfg.delack_ms * 1000ull;
				tcb_timer_sched(st, t);
			}
		}
	}
	if (t->fin_ooo && !fin) {
		/* the hole before a FIN held out of order has filled: process it now */
		if (t->fin_ooo_seq == t->rcv_nxt)
			fin = true;
		else if (seq_lt(t->fin_ooo_seq, t->rcv_nxt))
			t->fin_ooo = false; /* data beyond the peer's own FIN: forget it */
		if (fin) {
			seq = t->rcv_nxt;
			plen = 0;
		}
	}
	if (fin && seq + plen == t->rcv_nxt) {
		t->fin_ooo = false;
		t->rcv_nxt++;
		t->ack_now = true;
		switch (t->state) {
		case TS_ESTABLISHED:
			t->fin_rcvd = true;
			tcb_set_state(st, t, TS_CLOSE_WAIT);
			tcb_ready(st, t);
			break;
		case TS_FIN_WAIT_1:
			tcp_send_ack(st, t);
			if (t->fin_sent && seq_gt(t->snd_una, t->fin_seq))
				tcb_enter_time_wait(st, t);
			else
				tcb_set_state(st, t, TS_CLOSING);
			break;
		case TS_FIN_WAIT_2:
			tcp_send_ack(st, t);
			tcb_enter_time_wait(st, t);
			break;
		default:
			break;
		}
	}
	if (t->ack_now)
		tcb_dirty(st, t);
}

/* ACK processing in the synchronized states; returns false when the segment is finished. */
static bool ack_input(struct ns_stack *st, struct ns_tcb *t, const struct ns_tcp_hdr *th,
		      const struct tcp_opts *op, uint32_t seq, uint32_t plen)
{
	uint32_t ack = ntohl(th->ack);
	uint32_t wnd = (uint32_t)ntohs(th->win) << t->snd_wscale;
	uint32_t mss = t->mss - (t->ts_ok ? 12 : 0);

	if (t->state == TS_SYN_RECEIVED) {
		if (!seq_gt(ack, t->snd_una) || seq_gt(ack, t->snd_max))
			return false; /* caller answers with a RST */
		/* The first RTT sample (RFC 6298 2.2): with timestamps the echo of our SYN-ACK's
		 * TSval (RFC 7323 4.1; unambiguous even after a retransmitted SYN-ACK), else the
		 * timed SYN-ACK if it was not retransmitted (Karn) */
		if (!rtt_from_echo(st, t, op) && t->rtt_timing && !t->retries)
			tcp_rtt_sample(st, t, (uint32_t)(st->now_us - t->rtt_start_us));
		t->rtt_timing = false;
		t->snd_una = ack;
		t->snd_wnd = wnd;
		t->snd_wl1 = seq;
		t->snd_wl2 = ack;
		established(st, t);
	}
	if (seq_gt(ack, t->snd_max)) {
		t->ack_now = true; /* acknowledges something not yet sent */
		tcb_dirty(st, t);
		return false;
	}
	if (seq_gt(ack, t->snd_una)) {
		uint32_t acked = ack - t->snd_una;
		uint32_t data = acked < t->sb_len ? acked : t->sb_len;
		if (t->ts_ok && op->ts && op->tsecr) {
			/*
			 * RFC 7323 4.1 RTTM: TSecr gives a sample when SND.UNA advances. But Karn's
			 * ambiguity (RFC 6298 3) returns after a timeout: when the original segment
			 * arrived and only its ACK was lost, the receiver answers our
			 * retransmission as a duplicate, outside its window, and RFC 7323 5.3 (R2
			 * before R3) makes it echo the TS.Recent of the *original* transmission.
			 * The "RTT" is then the whole backed-off RTO; fed to RFC 6298 (2.3) it
			 * inflates RTTVAR and the next RTO, whose next lost ACK yields a larger
			 * sample still: under heavy loss the RTO ratchets up to rto_max and the
			 * transfer stalls. So an echo older than the TSval of our last timeout
			 * retransmission is no sample; one from a later transmission is
			 * unambiguous.
			 *
			 * Such an ACK still proves the path delivers, and under sustained loss the
			 * ACKs of post-timeout data are often lost before they can give a sample:
			 * had the backoff been kept until then (RFC 6298, note after 5.7), recovery
			 * after recovery would double it again and again (seen as 0.8, 1.6, ... 51
			 * s with progress in between). So it collapses to the RFC 6298 (2.3) value
			 * of the unpolluted SRTT/RTTVAR, which is what Linux and BSD reach too,
			 * through a sample from this very echo that we refuse to take.
			 */
			uint32_t r = tcp_ts_now(st) - op->tsecr;
			bool stale = t->rto_karn && seq_lt(op->tsecr, t->rto_tsval);
			if (r < 60000 && !stale)
				tcp_rtt_sample(st, t, r * 1000);
			else if (stale && t->srtt_us)
				tcp_rto_update(st, t);
			/* all that preceded the timeout is acknowledged: echoes are fresh again */
			if (t->rto_karn && seq_ge(ack, t->rto_high))
				t->rto_karn = false;
		} else if (t->rtt_timing && seq_gt(ack, t->rtt_seq)) {
			tcp_rtt_sample(st, t, (uint32_t)(st->now_us - t->rtt_start_us));
			t->rtt_timing = false;
		}
		sb_drop_front(st, t, data);
		t->snd_una = ack;
		if (seq_lt(t->snd_nxt, t->snd_una))
			t->snd_nxt = t->snd_una;
		t->retries = 0;
		if (tcp_tlp_acked(st, t, ack, op->ts, op->tsecr)) {
			/* a loss the probe repaired: cwnd was just reduced, not grown by this ACK */
		} else if (t->in_recovery) {
			if (seq_ge(ack, t->recover)) {
				/* RFC 6582 3.2 (3): full acknowledgment */
				uint32_t flight = t->snd_max - t->snd_una;
				t->cwnd = t->ssthresh < flight + mss ? t->ssthresh : flight + mss;
				t->in_recovery = false;
				t->dupacks = 0;
			} else {
				/* partial acknowledgment: retransmit the next hole, deflate */
				uint32_t len = t->sb_len < mss ? t->sb_len : mss;
				if (len) {
					st->xs.tcp_fast_retransmits++;
					tcp_send_seg(st, t, NS_TH_ACK, t->snd_una, 0, len);
				}
				t->cwnd = t->cwnd > acked ? t->cwnd - acked + mss : mss;
			}
		} else {
			t->dupacks = 0;
			if (t->cwnd < t->ssthresh)
				t->cwnd += acked < mss ? acked : mss; /* slow start */
			else
				t->cwnd += mss * mss / t->cwnd ? mss * mss / t->cwnd : 1;
		}
		if (t->snd_una == t->snd_max) {
			t->t_rexmt = 0;
			t->tlp_armed = false;
		} else {
			tcp_arm_rexmt(st, t); /* the RTO in recovery; a probe timeout where allowed */
		}
		if (t->want_writable && t->sb_len <= st->cfg.tx_limit / 2) {
			t->want_writable = false;
			tcb_note(st, t, N_WRITABLE);
		}
		tcb_dirty(st, t);
	} else if (ack == t->snd_una && plen == 0 && !(th->flags & (NS_TH_SYN | NS_TH_FIN)) &&
		   wnd == t->snd_wnd && t->snd_max != t->snd_una) {
		/* RFC 5681 2 "DUPLICATE ACKNOWLEDGMENT" */
		st->xs.tcp_dupacks++;
		t->dupacks++;
		if (t->dupacks == 3 && !t->in_recovery) {
			uint32_t flight = t->snd_max - t->snd_una;
			t->ssthresh = flight / 2 > 2 * mss ? flight / 2 : 2 * mss;
			t->recover = t->snd_max;
			t->in_recovery = true;
			t->rtt_timing = false;
			uint32_t len = t->sb_len < mss ? t->sb_len : mss;
			st->xs.tcp_fast_retransmits++;
			if (len)
				tcp_send_seg(st, t, NS_TH_ACK, t->snd_una, 0, len);
			else if (t->fin_sent)
				tcp_send_seg(st, t, NS_TH_FIN | NS_TH_ACK, t->fin_seq, 0, 0);
			t->cwnd = t->ssthresh + 3 * mss;
			t->t_rexmt = st->now_us + t->rto_us;
			t->tlp_armed = false;
		} else if (t->dupacks > 3 && t->in_recovery) {
			t->cwnd += mss; /* inflate; new data goes at flush */
			tcb_dirty(st, t);
		} else if (t->dupacks < 3 && !t->in_recovery) {
			tcb_dirty(st, t); /* limited transmit: see tcp_output */
		}
	}
	/* window update (RFC 9293 3.10.7.4, fifth check) */
	if (seq_lt(t->snd_wl1, seq) || (t->snd_wl1 == seq && seq_le(t->snd_wl2, ack))) {
		bool opened = wnd > t->snd_wnd;
		t->snd_wnd = wnd;
		t->snd_wl1 = seq;
		t->snd_wl2 = ack;
		if (wnd && t->t_persist) {
			t->t_persist = 0;
			t->persist_shift = 0;
		}
		if (opened)
			tcb_dirty(st, t);
	}
	bool fin_acked = t->fin_sent && seq_gt(t->snd_una, t->fin_seq);
	switch (t->state) {
	case TS_FIN_WAIT_1:
		if (fin_acked) {
			tcb_set_state(st, t, TS_FIN_WAIT_2);
			if (st->cfg.fin_wait2_ms)
				t->t_conn = st->now_us + st->cfg.fin_wait2_ms * 1000ull;
		}
		break;
	case TS_CLOSING:
		if (fin_acked) {
			tcb_enter_time_wait(st, t);
			return false;
		}
		break;
	case TS_LAST_ACK:
		if (fin_acked) {
			tcb_drop(st, t, 0);
			return false;
		}
		break;
	default:
		break;
	}
	tcb_timer_sched(st, t);
	return true;
}

static void challenge_ack(struct ns_stack *st, struct ns_tcb *t)
{
	st->xs.tcp_challenge_acks++;
	tcp_send_ack(st, t);
}

void tcp_input(struct ns_stack *st, struct ns_pkt *p, const struct ns_ip_hdr *ip,
	       const uint8_t *seg, uint32_t len, unsigned rx_flags)
{
	if (len < NS_TCP_HLEN) {
		st->xs.tcp_bad++;
		return;
	}
	const struct ns_tcp_hdr *th = (const struct ns_tcp_hdr *)seg;
	uint32_t hl = (uint32_t)(th->off >> 4) * 4;
	if (hl < NS_TCP_HLEN || hl > len) {
		st->xs.tcp_bad++;
		return;
	}
	if (!(rx_flags & NS_RXF_L4_CSUM_OK)) {
		uint32_t sum = ns_csum_pseudo(ip->src, ip->dst, NS_IPPROTO_TCP, (uint16_t)len);
		if (ns_csum_fold(ns_csum_add(sum, seg, len)) != 0) {
			st->xs.tcp_csum_bad++;
			return;
		}
	}
	struct tcp_opts op;
	if (parse_opts(seg + NS_TCP_HLEN, hl - NS_TCP_HLEN, &op) != 0) {
		st->xs.tcp_bad++;
		return;
	}
	uint8_t fl = th->flags;
	const uint8_t *data = seg + hl;
	uint32_t plen = len - hl;
	uint32_t seq = ntohl(th->seq);
	uint32_t seglen = plen + !!(fl & NS_TH_SYN) + !!(fl & NS_TH_FIN);
	uint16_t sport = ntohs(th->sport), dport = ntohs(th->dport);

	struct ns_tcb *t = tcb_lookup(st, ip->src, sport, dport);
	if (!t) {
		if (!st->cfg.listen_port || dport != st->cfg.listen_port) {
			st->xs.tcp_no_listener++;
			tcp_send_rst_reply(st, ip, th, seglen);
			return;
		}
		t = listen_input(st, ip, th, &op, seglen);
		if (!t)
			return;
		/* a SYN cookie completed: the ACK may carry data; go on below */
	}
	t->last_rx_us = st->now_us;
	t->keep_sent = 0;
	if (t->state == TS_SYN_SENT) {
		syn_sent_input(st, t, ip, th, &op, seglen);
		return;
	}
	if (t->state == TS_SYN_RECEIVED && (fl & NS_TH_SYN) && !(fl & NS_TH_ACK) &&
	    seq == t->irs) {
		tcp_send_seg(st, t, NS_TH_SYN | NS_TH_ACK, t->iss, 0, 0); /* our SYN-ACK was lost */
		return;
	}

	/* RFC 7323 5.3 PAWS: a timestamp older than TS.Recent marks an old duplicate. */
	if (t->ts_ok && op.ts && !(fl & NS_TH_RST) && seq_lt(op.tsval, t->ts_recent) &&
	    t->state != TS_SYN_RECEIVED) {
		st->xs.tcp_rcv_dup++;
		tcp_send_ack(st, t);
		return;
	}

	/* first check: sequence number acceptable (RFC 9293 3.10.7.4, the four cases) */
	uint32_t wnd = tcp_rcv_window(st, t);
	bool ok;
	if (seglen == 0)
		ok = wnd == 0 ? seq == t->rcv_nxt
			      : seq_ge(seq, t->rcv_nxt) && seq_lt(seq, t->rcv_nxt + wnd);
	else
		ok = wnd != 0 && ((seq_ge(seq, t->rcv_nxt) && seq_lt(seq, t->rcv_nxt + wnd)) ||
				  (seq_ge(seq + seglen - 1, t->rcv_nxt) &&
				   seq_lt(seq + seglen - 1, t->rcv_nxt + wnd)));
	if (!ok) {
		if (!(fl & NS_TH_RST)) {
			if (t->state == TS_TIME_WAIT && (fl & NS_TH_FIN)) {
				/* a retransmitted FIN: acknowledge again, restart 2 MSL */
				t->t_2msl = st->now_us + 2ull * st->cfg.msl_ms * 1000;
				tcb_timer_sched(st, t);
			}
			/* wholly before RCV.NXT: a duplicate (a retransmission whose original
			 * arrived); else beyond the window: dropped */
			if (plen && seq_le(seq + seglen, t->rcv_nxt))
				st->xs.tcp_rcv_dup++;
			else if (plen)
				st->xs.tcp_rcv_drop++;
			tcp_send_ack(st, t);
		}
		return;
	}
	/* second check: RST (RFC 5961 3.2: exact match resets, in-window gets a challenge) */
	if (fl & NS_TH_RST) {
		if (seq != t->rcv_nxt) {
			challenge_ack(st, t);
			return;
		}
		st->xs.tcp_rst_rx++;
		if (t->state == TS_SYN_RECEIVED && t->user == U_NONE)
			tcb_drop(st, t, 0); /* back to LISTEN: nobody was told about it */
		else
			tcb_drop(st, t, t->state == TS_TIME_WAIT || t->state == TS_LAST_ACK ||
						t->state == TS_CLOSING ? 0 : -ECONNRESET);
		return;
	}
	/* fourth check: SYN in a synchronized state (RFC 5961 4.2: challenge ACK) */
	if (fl & NS_TH_SYN) {
		challenge_ack(st, t);
		return;
	}
	if (!(fl & NS_TH_ACK))
		return;
	/* RFC 7323 4.3: remember the newest timestamp of in-sequence segments */
	if (t->ts_ok && op.ts && seq_le(seq, t->rcv_nxt) && seq_ge(op.tsval, t->ts_recent))
		t->ts_recent = op.tsval;
	if (t->state == TS_TIME_WAIT) {
		if (fl & NS_TH_FIN) {
			tcp_send_ack(st, t);
			t->t_2msl = st->now_us + 2ull * st->cfg.msl_ms * 1000;
			tcb_timer_sched(st, t);
		}
		return;
	}
	uint8_t before = t->state;
	if (!ack_input(st, t, th, &op, seq, plen)) {
		if (before == TS_SYN_RECEIVED && t->state == TS_SYN_RECEIVED)
			tcp_send_rst_reply(st, ip, th, seglen);
		return;
	}
	switch (t->state) {
	case TS_ESTABLISHED:
	case TS_FIN_WAIT_1:
	case TS_FIN_WAIT_2:
		data_input(st, t, p, data, seq, plen, fl & NS_TH_FIN);
		break;
	default:
		/* CLOSE_WAIT, CLOSING, LAST_ACK: the peer's FIN is in; a retransmitted one is
		 * acknowledged again */
		if (fl & NS_TH_FIN) {
			t->ack_now = true;
			tcb_dirty(st, t);
		}
		break;
	}
}
