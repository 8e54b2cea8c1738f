/* SPDX-License-Identifier: MIT */
/*
 * TCP output and timers: building segments (options: MSS, window scale, timestamps), sending
 * what the send and congestion windows allow (Nagle off unless configured), our FIN, ACKs,
 * resets; the receive window we advertise; RFC 6298 round-trip estimation; and the timers of a
 * TCB: retransmission with exponential backoff (RFC 6298 5.4-5.7; go-back-N from snd_una with
 * cwnd = 1 MSS as RFC 5681 3.1 prescribes), zero-window probing (persist), delayed ACK,
 * keepalive, TIME_WAIT and FIN_WAIT_2 expiry.
 *
 * Data leaves by copy: each segment gets a fresh device buffer filled from the send buffer, so
 * a retransmission is the same code as a first transmission.
 */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>

#include "ns_tcp.h"

#define HDRS (NS_ETH_HLEN + NS_IP_HLEN)

uint32_t tcp_ts_now(const struct ns_stack *st)
{
	/* 1 ms clock (RFC 7323 5.4 allows 1 ms .. 1 s), offset by a per-stack secret value. */
	return (uint32_t)(st->now_us / 1000) + ((uint32_t)st->cfg.secret[0] << 24);
}

/*
 * The window to announce. Two rules, both RFC 9293 3.8.6.2.2:
 *  - never move the right edge we announced (rcv_adv) back: the window is at least
 *    rcv_adv - rcv_nxt;
 *  - receiver-side SWS avoidance: move the right edge forward only when it advances by at
 *    least min(rcv_buf / 2, MSS), i.e. keep RCV.NXT + RCV.WND fixed until
 *    RCV.BUFF - RCV.USER - RCV.WND >= min(Fr * RCV.BUFF, Eff.snd.MSS), Fr = 1/2.
 * The second rule is what makes duplicate ACKs duplicates. Each out-of-order segment takes
 * buffer space, and without it every ACK for the hole announced a window a segment smaller
 * than the last; RFC 5681 2 counts an ACK as a duplicate only if "the advertised window in the
 * incoming acknowledgment equals the advertised window in the last incoming acknowledgment",
 * so the sender (ours, or Linux without SACK) never reached three duplicates, never fast
 * retransmitted, and every loss cost a retransmission timeout.
 */
uint32_t tcp_rcv_window(const struct ns_stack *st, const struct ns_tcb *t)
{
	uint32_t used = t->rq_bytes + t->ooo_bytes;
	uint32_t space = st->cfg.rcv_buf > used ? st->cfg.rcv_buf - used : 0;
	if (t->nsegs >= st->cfg.max_segs)
		space = 0;
	uint32_t left = seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
	uint32_t mss = t->mss ? t->mss : 536;
	uint32_t step = st->cfg.rcv_buf / 2 < mss ? st->cfg.rcv_buf / 2 : mss;
	return space >= left + step ? space : left;
}

/* Copies len bytes at offset off (from snd_una) of the send buffer into dst. */
static void sb_copy(const struct ns_tcb *t, uint32_t off, uint32_t len, uint8_t *dst)
{
	const struct ns_chunk *c = t->sb_head;
	if (c)
		off += c->off;
	while (c && off >= c->len) {
		off -= c->len;
		c = c->next;
	}
	while (len) {
		if (!c)
			NS_DIE("send buffer shorter than the segment");
		uint32_t take = c->len - off;
		if (take > len)
			take = len;
		memcpy(dst, c->data + off, take);
		dst += take;
		len -= take;
		off = 0;
		c = c->next;
	}
}

int tcp_send_seg(struct ns_stack *st, struct ns_tcb *t, uint8_t flags, uint32_t seq,
		 uint32_t off, uint32_t len)
{
	uint8_t *f;
	struct ns_pkt *p = st->dev->alloc(st->dev_ctx, &f);
	if (!p) {
		st->xs.tx_nobuf++;
		return -ENOBUFS;
	}
	uint8_t *o = f + HDRS + NS_TCP_HLEN;
	uint32_t ol = 0;
	bool syn = flags & NS_TH_SYN;
	if (syn) {
		uint16_t mss = (uint16_t)(st->cfg.mtu - NS_IP_HLEN - NS_TCP_HLEN);
		o[ol++] = NS_TCPOPT_MSS;
		o[ol++] = 4;
		o[ol++] = (uint8_t)(mss >> 8);
		o[ol++] = (uint8_t)mss;
		bool ws = t->active ? st->cfg.wscale : t->ws_ok;
		if (ws) {
			o[ol++] = NS_TCPOPT_NOP;
			o[ol++] = NS_TCPOPT_WSCALE;
			o[ol++] = 3;
			o[ol++] = t->rcv_wscale;
		}
	}
	bool ts = syn && t->active ? st->cfg.timestamps : t->ts_ok;
	if (ts && !(flags & NS_TH_RST)) {
		uint32_t v = htonl(tcp_ts_now(st)), e = htonl(t->ts_recent);
		o[ol++] = NS_TCPOPT_NOP;
		o[ol++] = NS_TCPOPT_NOP;
		o[ol++] = NS_TCPOPT_TS;
		o[ol++] = 10;
		memcpy(o + ol, &v, 4);
		memcpy(o + ol + 4, &e, 4);
		ol += 8;
	}
	if (len)
		sb_copy(t, off, len, o + ol);

	uint32_t win = tcp_rcv_window(st, t);
	uint32_t shift = syn ? 0 : t->rcv_wscale;
	uint32_t wv = win >> shift;
	if (wv > 65535)
		wv = 65535;
	if ((flags & NS_TH_ACK) && !(flags & NS_TH_RST)) {
		uint32_t edge = t->rcv_nxt + (wv << shift);
		if (seq_gt(edge, t->rcv_adv))
			t->rcv_adv = edge;
	}
	struct ns_tcp_hdr *th = (struct ns_tcp_hdr *)(f + HDRS);
	*th = (struct ns_tcp_hdr){.sport = htons(t->lport), .dport = htons(t->rport),
				  .seq = htonl(seq),
				  .ack = (flags & NS_TH_ACK) ? htonl(t->rcv_nxt) : 0,
				  .off = (uint8_t)(((NS_TCP_HLEN + ol) / 4) << 4), .flags = flags,
				  .win = htons((uint16_t)wv)};
	uint16_t tl = (uint16_t)(NS_TCP_HLEN + ol + len);
	uint32_t sum = ns_csum_pseudo(st->cfg.ip, t->raddr, NS_IPPROTO_TCP, tl);
	th->csum = htons(ns_csum_fold(ns_csum_add(sum, th, tl)));
	ip_build(st, f, t->raddr, NS_IPPROTO_TCP, tl);
	if (flags & NS_TH_ACK) {
		/* this segment carries every ACK we owed */
		t->ack_now = false;
		t->unacked_segs = 0;
		if (t->t_delack) {
			t->t_delack = 0;
			tcb_timer_sched(st, t);
		}
	}
	ip_output(st, p, f, (uint16_t)(HDRS + tl));
	return 0;
}

/*
 * A pure ACK carries SEQ = snd_max, the next new octet, not snd_nxt (as BSD's tcp_output does
 * for segments without data, SYN or FIN). After an RTO snd_nxt goes back to snd_una, and when
 * the peer had in fact received beyond snd_una (only its ACKs were lost), an ACK stamped with
 * the rewound snd_nxt lies below its RCV.NXT: RFC 9293 3.10.7.4 makes a zero-length segment
 * acceptable only if RCV.NXT =< SEG.SEQ < RCV.NXT + RCV.WND, so the peer drops it, and the
 * acknowledgment in it with it. With data flowing both ways (the echo test against Linux)
 * both sides then discarded each other's ACKs and retransmitted under backoff: tens of seconds
 * without progress.
 */
void tcp_send_ack(struct ns_stack *st, struct ns_tcb *t)
{
	tcp_send_seg(st, t, NS_TH_ACK, t->snd_max, 0, 0);
}

void tcp_send_rst(struct ns_stack *st, struct ns_tcb *t)
{
	st->xs.tcp_rst_tx++;
	tcp_send_seg(st, t, NS_TH_RST | NS_TH_ACK, t->snd_nxt, 0, 0);
}

void tcp_send_rst_reply(struct ns_stack *st, const struct ns_ip_hdr *ip,
			const struct ns_tcp_hdr *th, uint32_t seglen)
{
	/* RFC 9293 3.10.7.1: if the ACK bit is on, <SEQ=SEG.ACK><CTL=RST>; otherwise
	 * <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>. Never answer a RST. */
	if (th->flags & NS_TH_RST)
		return;
	uint8_t *f;
	struct ns_pkt *p = st->dev->alloc(st->dev_ctx, &f);
	if (!p) {
		st->xs.tx_nobuf++;
		return;
	}
	struct ns_tcp_hdr *o = (struct ns_tcp_hdr *)(f + HDRS);
	*o = (struct ns_tcp_hdr){.sport = th->dport, .dport = th->sport, .off = 5 << 4};
	if (th->flags & NS_TH_ACK) {
		o->seq = th->ack;
		o->flags = NS_TH_RST;
	} else {
		o->ack = htonl(ntohl(th->seq) + seglen);
		o->flags = NS_TH_RST | NS_TH_ACK;
	}
	uint32_t sum = ns_csum_pseudo(st->cfg.ip, ip->src, NS_IPPROTO_TCP, NS_TCP_HLEN);
	o->csum = htons(ns_csum_fold(ns_csum_add(sum, o, NS_TCP_HLEN)));
	ip_build(st, f, ip->src, NS_IPPROTO_TCP, NS_TCP_HLEN);
	st->xs.tcp_rst_tx++;
	ip_output(st, p, f, HDRS + NS_TCP_HLEN);
}

static uint32_t mss_eff(const struct ns_stack *st, const struct ns_tcb *t)
{
	uint32_t m = t->mss;
	uint32_t cap = st->cfg.mtu - NS_IP_HLEN - NS_TCP_HLEN;
	if (m > cap)
		m = cap;
	if (t->ts_ok)
		m -= 12;
	return m;
}

void tcp_output(struct ns_stack *st, struct ns_tcb *t)
{
	bool sent = false;
	uint32_t max_before = t->snd_max;
	uint8_t s = t->state;
	bool can_data = s == TS_ESTABLISHED || s == TS_CLOSE_WAIT || s == TS_FIN_WAIT_1 ||
			s == TS_LAST_ACK || s == TS_CLOSING;

	if (can_data) {
		uint32_t mss = mss_eff(st, t);
		/*
		 * RFC 3042 Limited Transmit (RFC 5681 3.2: SHOULD): on the first and second
		 * duplicate ACK send one new segment each, up to cwnd + 2 * SMSS outstanding and
		 * within the peer's window, without changing cwnd. With the small windows that
		 * heavy loss leaves (two or three segments), a loss otherwise cannot produce the
		 * three duplicates fast retransmit needs, and every loss costs an RTO.
		 */
		uint32_t cw = t->cwnd;
		if (t->dupacks && t->dupacks < 3 && !t->in_recovery && t->snd_nxt == t->snd_max)
			cw += t->dupacks * mss;
		uint32_t wnd = t->snd_wnd < cw ? t->snd_wnd : cw;
		for (unsigned guard = 0; guard < 4096; guard++) {
			uint32_t flight = t->snd_nxt - t->snd_una;
			uint32_t off = flight < t->sb_len ? flight : t->sb_len;
			uint32_t avail = t->sb_len - off;
			if (!avail || flight > t->sb_len)
				break;
			uint32_t room = wnd > flight ? wnd - flight : 0;
			uint32_t len = avail < room ? avail : room;
			if (len > mss)
				len = mss;
			if (!len)
				break;
			if (st->cfg.nagle && len < mss && flight)
				break;
			uint8_t fl = NS_TH_ACK | (len == avail ? NS_TH_PSH : 0);
			if (tcp_send_seg(st, t, fl, t->snd_nxt, off, len) != 0)
				break;
			if (!t->ts_ok && !t->rtt_timing && seq_ge(t->snd_nxt, t->snd_max)) {
				t->rtt_timing = true;
				t->rtt_seq = t->snd_nxt;
				t->rtt_start_us = st->now_us;
			}
			t->snd_nxt += len;
			if (seq_gt(t->snd_nxt, t->snd_max)) {
				st->base.stats.tx_bytes += t->snd_nxt - t->snd_max;
				t->snd_max = t->snd_nxt;
			}
			sent = true;
		}
		/* our FIN follows the last byte, once every byte has been sent */
		if (t->fin_queued && t->snd_nxt == t->snd_una + t->sb_len &&
		    (!t->fin_sent || t->snd_nxt == t->fin_seq) &&
		    tcp_send_seg(st, t, NS_TH_FIN | NS_TH_ACK, t->snd_nxt, 0, 0) == 0) {
			t->fin_seq = t->snd_nxt;
			t->fin_sent = true;
			t->snd_nxt++;
			if (seq_gt(t->snd_nxt, t->snd_max))
				t->snd_max = t->snd_nxt;
			sent = true;
		}
		/* RFC 6298 5.1 starts the RTO only when it is off; a loss probe timeout restarts
		 * after new data (RFC 8985 7.2), so it measures from the tail of the flight */
		if (t->snd_nxt != t->snd_una &&
		    (!t->t_rexmt || (t->tlp_armed && seq_gt(t->snd_max, max_before)))) {
			tcp_arm_rexmt(st, t);
			t->t_persist = 0;
		}
		/* zero window with data waiting and nothing in flight: probe it (persist) */
		if (t->snd_wnd == 0 && t->sb_len > t->snd_nxt - t->snd_una &&
		    t->snd_nxt == t->snd_una && !t->t_persist && !t->t_rexmt)
			t->t_persist = st->now_us + t->rto_us;
	}
	if (!sent && t->ack_now)
		tcp_send_ack(st, t);
	tcb_timer_sched(st, t);
}

void tcp_rtt_sample(struct ns_stack *st, struct ns_tcb *t, uint32_t r)
{
	/* RFC 6298 2.2 and 2.3 (alpha 1/8, beta 1/4, G = 1 ms), clamped to [rto_min, rto_max] */
	if (!t->srtt_us) {
		t->srtt_us = r ? r : 1;
		t->rttvar_us = r / 2;
	} else {
		uint32_t d = t->srtt_us > r ? t->srtt_us - r : r - t->srtt_us;
		t->rttvar_us = (3 * t->rttvar_us + d) / 4;
		t->srtt_us = (7 * t->srtt_us + r) / 8;
		if (!t->srtt_us)
			t->srtt_us = 1;
	}
	tcp_rto_update(st, t);
}

void tcp_rto_update(struct ns_stack *st, struct ns_tcb *t)
{
	/* RFC 6298 (2.3): RTO = SRTT + max(G, K * RTTVAR), K = 4 */
	uint64_t k = 4ull * t->rttvar_us;
	uint64_t rto = t->srtt_us + (k > 1000 ? k : 1000);
	if (rto < st->cfg.rto_min_ms * 1000ull)
		rto = st->cfg.rto_min_ms * 1000ull;
	if (rto > st->cfg.rto_max_ms * 1000ull)
		rto = st->cfg.rto_max_ms * 1000ull;
	t->rto_us = (uint32_t)rto;
}

/*
 * Tail loss probe (RFC 8985 section 7). Without it, losing the last segments of a flight
 * leaves nothing to produce duplicate ACKs and only the RTO (200 ms at least) recovers: the
 * typical loss of a burst that overflowed a queue while the receiver was descheduled. A probe
 * timeout (PTO) of about two round trips runs instead of the RTO while the connection is not
 * in recovery; when it fires, one segment goes out (new data if the peer's window allows,
 * else the last segment sent again), so an ACK comes back: it acknowledges everything if only
 * the tail was lost, or shows the hole to the usual fast retransmit. One probe per episode:
 * the RTO is armed behind it, and the next probe waits for an ACK of new data.
 *
 * The stack has no SACK, so no DSACK tells (RFC 8985 7.4.1) whether a retransmitted probe
 * repaired a loss or duplicated a segment that had arrived late. Timestamps tell instead, as
 * in Eifel detection (RFC 3522): the ACK that first covers the probe echoes the TSval of the
 * segment that made it, and an echo older than the probe's TSval means the original got
 * there; the probe was needless and cwnd stays. Only otherwise (or without timestamps) does
 * the congestion response of fast recovery follow (7.4.2). This matters on a shared host: a
 * receiver descheduled for longer than the PTO draws a probe per connection, and without the
 * check each one halved cwnd (seen: 516 halvings in a 5 s memif run, 0 losses).
 *
 * PTO = 2 * SRTT, plus WCDelAckT (200 ms) when one segment is in flight (the peer may
 * delay its ACK) or 2 ms otherwise, and at least TLP_MIN_US: on a shared host a receiver
 * descheduled for a few milliseconds is no loss. A PTO not shorter than the RTO is not armed.
 */
#define TLP_WCDELACK_US 200000u
#define TLP_MIN_US 10000u

void tcp_arm_rexmt(struct ns_stack *st, struct ns_tcb *t)
{
	uint8_t s = t->state;
	t->tlp_armed = false;
	t->t_rexmt = st->now_us + t->rto_us;
	if (!st->cfg.tlp || t->tlp_out || t->in_recovery || t->retries || !t->srtt_us ||
	    (s != TS_ESTABLISHED && s != TS_CLOSE_WAIT && s != TS_FIN_WAIT_1 && s != TS_CLOSING &&
	     s != TS_LAST_ACK))
		return;
	uint64_t pto = 2ull * t->srtt_us;
	pto += t->snd_max - t->snd_una <= mss_eff(st, t) ? TLP_WCDELACK_US : 2000u;
	if (pto < TLP_MIN_US)
		pto = TLP_MIN_US;
	if (pto >= t->rto_us)
		return;
	t->t_rexmt = st->now_us + pto;
	t->tlp_armed = true;
}

bool tcp_tlp_acked(struct ns_stack *st, struct ns_tcb *t, uint32_t ack, bool ts, uint32_t tsecr)
{
	if (!t->tlp_out || seq_lt(ack, t->tlp_end))
		return false;
	t->tlp_out = false;
	if (!t->tlp_rexmit)
		return false;
	if (t->ts_ok && ts && seq_lt(tsecr, t->tlp_tsval)) {
		st->xs.tcp_tlp_spurious++; /* the original arrived: nothing was lost */
		return false;
	}
	/* RFC 8985 7.4.2: a loss the probe repaired; respond as to a fast recovery (RFC 5681
	 * (4) with the flight being the window in use) */
	uint32_t mss = mss_eff(st, t);
	st->xs.tcp_tlp_recoveries++;
	t->ssthresh = t->cwnd / 2 > 2 * mss ? t->cwnd / 2 : 2 * mss;
	t->cwnd = t->ssthresh;
	return true;
}

static void tlp_fire(struct ns_stack *st, struct ns_tcb *t)
{
	uint32_t mss = mss_eff(st, t);
	uint32_t fin = t->fin_sent && seq_gt(t->snd_max, t->fin_seq) ? 1 : 0;
	uint32_t data_out = t->snd_max - t->snd_una - fin; /* bytes sent, not acknowledged */
	uint32_t flight = t->snd_nxt - t->snd_una;

	t->tlp_armed = false;
	t->tlp_tsval = tcp_ts_now(st); /* what tcp_send_seg() stamps on the probe */
	st->xs.tcp_tlp_probes++;
	/* RFC 8985 7.3: new data if there is some and the receive window has room for it */
	if (t->snd_nxt == t->snd_max && !fin && t->sb_len > data_out && t->snd_wnd > flight) {
		uint32_t len = t->sb_len - data_out;
		if (len > mss)
			len = mss;
		if (len > t->snd_wnd - flight)
			len = t->snd_wnd - flight;
		uint8_t fl = NS_TH_ACK | (len == t->sb_len - data_out ? NS_TH_PSH : 0);
		if (tcp_send_seg(st, t, fl, t->snd_nxt, data_out, len) == 0) {
			t->snd_nxt += len;
			st->base.stats.tx_bytes += len;
			t->snd_max = t->snd_nxt;
		}
		t->tlp_rexmit = false;
	} else if (data_out) {
		/* else the last segment sent, again */
		uint32_t len = data_out < mss ? data_out : mss;
		tcp_send_seg(st, t, NS_TH_ACK | NS_TH_PSH, t->snd_una + data_out - len,
			     data_out - len, len);
		t->tlp_rexmit = true;
	} else if (fin) {
		tcp_send_seg(st, t, NS_TH_FIN | NS_TH_ACK, t->fin_seq, 0, 0);
		t->tlp_rexmit = true;
	}
	t->tlp_out = true;
	t->tlp_end = t->snd_max;
	t->rtt_timing = false; /* Karn: the probe may be a retransmission */
	t->t_rexmt = st->now_us + t->rto_us;
}

static void on_rto(struct ns_stack *st, struct ns_tcb *t)
{
	st->xs.tcp_rto_fired++;
	t->tlp_out = false;
	if (++t->retries > st->cfg.max_retries) {
		st->xs.tcp_timeouts++;
		if (t->state != TS_SYN_SENT)
			tcp_send_rst(st, t);
		tcb_drop(st, t, t->state == TS_SYN_SENT ? -ETIMEDOUT : -ETIMEDOUT);
		return;
	}
	uint64_t rto = (uint64_t)t->rto_us * 2; /* RFC 6298 5.5 */
	if (rto > st->cfg.rto_max_ms * 1000ull)
		rto = st->cfg.rto_max_ms * 1000ull;
	t->rto_us = (uint32_t)rto;
	t->rtt_timing = false; /* Karn: no sample from a retransmitted segment */
	/* the timestamp counterpart (see ack_input): echoes older than this are ambiguous */
	t->rto_karn = true;
	t->rto_tsval = tcp_ts_now(st);
	t->rto_high = t->snd_max;
	t->t_rexmt = st->now_us + t->rto_us;
	st->xs.tcp_retransmits++;
	if (t->state == TS_SYN_SENT) {
		tcp_send_seg(st, t, NS_TH_SYN, t->iss, 0, 0);
		tcb_timer_sched(st, t);
		return;
	}
	if (t->state == TS_SYN_RECEIVED) {
		tcp_send_seg(st, t, NS_TH_SYN | NS_TH_ACK, t->iss, 0, 0);
		tcb_timer_sched(st, t);
		return;
	}
	/* RFC 5681 (4): ssthresh = max(FlightSize / 2, 2 * SMSS), cwnd = 1 SMSS; RFC 6582:
	 * recover = highest sent; leave fast recovery. */
	uint32_t mss = mss_eff(st, t);
	uint32_t flight = t->snd_max - t->snd_una;
	t->ssthresh = flight / 2 > 2 * mss ? flight / 2 : 2 * mss;
	t->cwnd = mss;
	t->recover = t->snd_max;
	t->in_recovery = false;
	t->dupacks = 0;
	t->snd_nxt = t->snd_una;
	/* a window closed by the peer is probed by the persist timer, not by retransmissions;
	 * a retransmission still goes out once so the peer re-announces its window */
	uint32_t wnd = t->snd_wnd;
	if (!wnd)
		t->snd_wnd = 1;
	tcp_output(st, t);
	t->snd_wnd = wnd;
}

void tcp_timer_run(struct ns_stack *st, struct ns_tcb *t)
{
	uint64_t now = st->now_us;

	if (t->t_2msl && now >= t->t_2msl) {
		t->t_2msl = 0;
		tcb_drop(st, t, 0);
		return;
	}
	if (t->t_conn && now >= t->t_conn) {
		/* FIN_WAIT_2 without the peer's FIN: give up quietly */
		t->t_conn = 0;
		tcb_drop(st, t, 0);
		return;
	}
	if (t->t_rexmt && now >= t->t_rexmt) {
		if (t->tlp_armed) {
			tlp_fire(st, t);
		} else {
			on_rto(st, t);
			if (t->state == TS_CLOSED)
				return;
		}
	}
	if (t->t_persist && now >= t->t_persist) {
		st->xs.tcp_persist_probes++;
		/* an old sequence number with no data: the peer answers with its window */
		tcp_send_seg(st, t, NS_TH_ACK, t->snd_una - 1, 0, 0);
		if (t->persist_shift < 10)
			t->persist_shift++;
		uint64_t d = (uint64_t)t->rto_us << t->persist_shift;
		if (d > st->cfg.rto_max_ms * 1000ull)
			d = st->cfg.rto_max_ms * 1000ull;
		t->t_persist = now + d;
	}
	if (t->t_delack && now >= t->t_delack) {
		t->t_delack = 0;
		st->xs.tcp_delayed_acks++;
		tcp_send_ack(st, t);
	}
	if (t->t_keep && now >= t->t_keep) {
		uint64_t idle = st->cfg.keep_idle_ms * 1000ull;
		t->t_keep = 0;
		if (t->state != TS_ESTABLISHED && t->state != TS_CLOSE_WAIT) {
			/* no keepalive in other states */
		} else if (!t->keep_sent && now - t->last_rx_us < idle) {
			t->t_keep = t->last_rx_us + idle;
		} else if (t->keep_sent >= st->cfg.keep_probes) {
			st->xs.tcp_timeouts++;
			tcp_send_rst(st, t);
			tcb_drop(st, t, -ETIMEDOUT);
			return;
		} else {
			st->xs.tcp_keepalive_probes++;
			t->keep_sent++;
			tcp_send_seg(st, t, NS_TH_ACK, t->snd_una - 1, 0, 0);
			t->t_keep = now + st->cfg.keep_intvl_ms * 1000ull;
		}
	}
	tcb_timer_sched(st, t);
}
