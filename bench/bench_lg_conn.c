/* SPDX-License-Identifier: MIT */
/*
 * Load generator: the per-thread loop and the connection state machine, over a transport
 * (struct lg_transport: kernel sockets with epoll, or Tachyon's own TCP/IP stack on DPDK).
 *
 * Each worker thread owns its share of the connections. One loop iteration: open connections
 * that are due (all at once for publishers and subscribers; paced and bounded in concurrency
 * for the idle and storm modes) -> fill the publishers' send buffers with what is due -> hand
 * the output of every connection found on the thread's dirty list to the transport (one
 * send per connection per iteration: packets are batched in the send buffer) -> the
 * transport's flush -> the transport's poll, with a nanosecond timeout until the next message
 * is due, which reports received bytes, writability and closes through the lg_conn_* calls.
 * Nothing in an iteration scans every connection (but the keepalive, once a second), so a
 * thread holding 1000 subscribers spends its time on the deliveries, not on the bookkeeping.
 *
 * Receiving: bytes land in the connection's buffer behind what is still undecoded;
 * eng_decode() runs over it until it asks for more (-EAGAIN), and the remainder is moved to
 * the front. The codec's max_packet is the buffer size, so a packet that could never fit is
 * rejected by the codec rather than stalling. If a reply (an acknowledgement) cannot be
 * queued because the send buffer is full and the transport will not take more, decoding stops
 * with the packet still in the buffer and reading is suspended until the transport drains.
 *
 * QoS: a publisher keeps a window of inflight slots; packet ids run 1..65535 and id p lives in
 * slot (p - 1) % window, so a new id is used only once the slot's previous owner completed.
 * An acknowledgement for an id that is not in flight in the right state is a protocol error.
 * A subscriber answers QoS 1 with PUBACK and QoS 2 with PUBREC / PUBCOMP, remembering the
 * QoS 2 ids between PUBLISH and PUBREL so a redelivery is not counted twice.
 *
 * Idle runs: once every connection is up, the hold phase sends one PINGREQ on each and counts
 * the PINGRESPs, so the broker's memory is sampled only after it handled a packet on every
 * connection. With --sys-topic, idle connection 0 also subscribes to the broker's $SYS memory
 * figure and keeps the first and last values (sys_publish).
 *
 * Nothing here allocates after set-up. Every failure goes through lg_fail(), which stops the
 * run: the load generator never continues past an error it saw.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_lg.h"

#define LG_BATCH 256 /* messages per publisher per iteration */

#define role_name lg_conn_role

const char *lg_conn_role(const struct lg_conn *c)
{
	return c->role == LG_PUB ? "publisher" : c->role == LG_SUB ? "subscriber" : "connection";
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Puts c on its thread's dirty list: the loop flushes it before it next waits. */
static void conn_dirty(struct lg_conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		c->th->dirty[c->th->ndirty++] = c;
	}
}

/* Hands what is queued to the transport; stops when it takes no more. 0 or -1 (run failed). */
static int conn_flush(struct lg_conn *c)
{
	const struct lg_transport *tp = c->th->run->tp;

	while (c->out_off < c->out_len) {
		int n = tp->send(c, c->out + c->out_off, c->out_len - c->out_off);
		if (n < 0)
			return -1;
		if (n == 0) {
			c->blocked = true; /* lg_conn_writable() follows */
			return 0;
		}
		c->out_off += (uint32_t)n;
	}
	c->out_off = c->out_len = 0;
	c->blocked = false;
	return 0;
}

/*
 * Makes room for n bytes at the end of the send buffer (compacting, then writing if need be).
 * Returns a pointer to the room, or NULL if the transport is full (caller retries later).
 */
static uint8_t *conn_room(struct lg_conn *c, uint32_t n)
{
	if (c->out_cap - c->out_len >= n)
		return c->out + c->out_len;
	if (c->out_off) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
		if (c->out_cap - c->out_len >= n)
			return c->out + c->out_len;
	}
	if (c->blocked || conn_flush(c))
		return NULL;
	return c->out_cap - c->out_len >= n ? c->out + c->out_len : NULL;
}

/* Encodes pkt at the end of the send buffer. 1 queued, 0 no room yet, -1 run failed. */
static int conn_queue(struct lg_conn *c, const struct eng_packet *pkt)
{
	int sz = eng_encode_size(pkt, c->codec.version);
	if (sz < 0) {
		lg_fail(c->th->run, "cannot encode %s: %s", eng_ptype_name(pkt->type),
			strerror(-sz));
		return -1;
	}
	uint8_t *p = conn_room(c, (uint32_t)sz);
	if (!p)
		return c->th->run->failed ? -1 : 0;
	int n = eng_encode(pkt, c->codec.version, p, (size_t)sz);
	if (n != sz) {
		lg_fail(c->th->run, "encoding %s returned %d, sized %d", eng_ptype_name(pkt->type),
			n, sz);
		return -1;
	}
	c->out_len += (uint32_t)n;
	conn_dirty(c);
	return 1;
}

static int queue_ack(struct lg_conn *c, uint8_t type, uint16_t pid)
{
	struct eng_packet pkt = {.type = type};
	pkt.u.ack.packet_id = pid;
	return conn_queue(c, &pkt);
}

static int send_connect(struct lg_conn *c)
{
	const struct lg_run *run = c->th->run;
	char id[96];
	uint32_t group = run->cfg.topo == LG_TOPO_PAIRS ? c->idx : 0;
	char r = c->role == LG_PUB ? 'p' : c->role == LG_SUB ? 's' : 'i';
	int n = snprintf(id, sizeof(id), "%c:%u:%s-%u", r, group, run->cfg.run_id, c->idx);

	struct eng_packet pkt = {.type = ENG_CONNECT};
	struct eng_connect *cn = &pkt.u.connect;
	cn->version = run->cfg.version;
	cn->clean_start = true;
	cn->keepalive = run->cfg.keepalive;
	cn->client_id.p = (const uint8_t *)id;
	cn->client_id.len = (uint32_t)n;
	if (run->cfg.version == ENG_V5) {
		cn->props.present = ENG_PBIT(ENG_PROP_RECEIVE_MAXIMUM);
		cn->props.receive_maximum = 65535;
	}
	return conn_queue(c, &pkt) == 1 ? 0 : -1;
}

static int send_subscribe(struct lg_conn *c)
{
	const struct lg_run *run = c->th->run;
	struct eng_sub_entry e = {
		.filter = {(const uint8_t *)c->filter, (uint32_t)strlen(c->filter)},
		.options = run->cfg.sub_qos,
	};
	struct eng_packet pkt = {.type = ENG_SUBSCRIBE};
	pkt.u.subscribe.packet_id = 1;
	pkt.u.subscribe.count = 1;
	pkt.u.subscribe.list = &e;
	return conn_queue(c, &pkt) == 1 ? 0 : -1;
}

/* Opens c's TCP connection through the transport. 0 or -1 (run failed). */
static int conn_open(struct lg_thread *th, struct lg_conn *c, uint64_t now)
{
	const struct lg_cfg *cfg = &th->run->cfg;

	c->state = LG_CS_CONNECTING;
	c->t_connect = now;
	c->t_last_tx = now;
	c->codec.version = cfg->version;
	c->codec.role = ENG_ROLE_CLIENT;
	c->codec.max_packet = c->in_cap;
	c->window = cfg->inflight;
	return th->run->tp->open(th, c);
}

static void conn_ready(struct lg_conn *c, uint64_t now)
{
	struct lg_thread *th = c->th;

	c->state = LG_CS_READY;
	th->ready++;
	if (th->pending)
		th->pending--;
	th->st.connects++;
	/* The $SYS watcher opens alone, before the burst (open_paced): timing it would stretch
	 * the burst's connects/s by however long the broker took to publish its first figure. */
	if (c == th->run->sys_conn)
		return;
	if (!th->st.t_first_connect || c->t_connect < th->st.t_first_connect)
		th->st.t_first_connect = c->t_connect;
	if (now > th->st.t_last_connect)
		th->st.t_last_connect = now;
	lg_hist_record(&th->st.conn_lat, now - c->t_connect);
}

/* ---- publishing ---- */

static void pub_finish(struct lg_conn *c)
{
	struct lg_thread *th = c->th;

	c->done = true;
	th->run->pub_sent[c->idx] = c->sent;
	th->pubs_done++;
	/* Pairs with the acquire load in the main thread, which then reads pub_sent[]. */
	atomic_store_explicit(&th->w_pubs_done, th->pubs_done, memory_order_release);
}

/*
 * Queues the messages that are due for publisher c. Returns true if it stopped only because of
 * its per-iteration batch limit (more could go out right away).
 */
static bool pub_fill(struct lg_conn *c, uint64_t now, uint64_t t_start, uint64_t *next_due)
{
	struct lg_run *run = c->th->run;
	const struct lg_cfg *cfg = &run->cfg;
	uint64_t end = t_start + (uint64_t)(cfg->duration * 1e9);
	double r = cfg->rate > 0 ? cfg->rate / cfg->pubs : 0;

	if (c->done || c->state != LG_CS_READY)
		return false;
	if (now >= end && c->target > c->sent)
		c->target = c->sent; /* the publish phase is over */
	if (c->sent >= c->target) {
		if (!c->inflight)
			pub_finish(c);
		return false;
	}

	uint64_t want = c->target - c->sent;
	if (r > 0) {
		uint64_t due = (uint64_t)((double)(now - t_start) * r / 1e9) + 1;
		if (due > c->target)
			due = c->target;
		want = due > c->sent ? due - c->sent : 0;
		uint64_t t_next = t_start + (uint64_t)((double)(c->sent + want) * 1e9 / r);
		/*
		 * One wake-up per message would cost a system call per message at high rates; what
		 * falls due within a tick waits for the next one. Latency counts from the scheduled
		 * time, so the wait is charged to the figures, not hidden.
		 */
		if (t_next < now + cfg->tick_ns)
			t_next = now + cfg->tick_ns;
		if (t_next < *next_due)
			*next_due = t_next;
	}
	if (end < *next_due)
		*next_due = end;
	bool capped = want > LG_BATCH;
	if (capped)
		want = LG_BATCH;

	struct eng_publish pub = {
		.qos = cfg->qos,
		.topic = {(const uint8_t *)c->topic, c->topic_len},
		.payload = {c->payload, cfg->payload},
	};
	uint64_t k;
	for (k = 0; k < want; k++) {
		struct lg_slot *slot = NULL;
		if (cfg->qos) {
			if (c->inflight >= c->window)
				break;
			uint16_t pid = c->next_pid ? c->next_pid : 1;
			slot = &c->slots[(pid - 1u) % c->window];
			if (slot->pid)
				break; /* that slot's handshake is still going */
			pub.packet_id = pid;
		}
		uint8_t head[128];
		int hl = eng_encode_publish_head(&pub, c->codec.version, head, sizeof(head));
		if (hl < 0) {
			lg_fail(run, "cannot encode PUBLISH: %s", strerror(-hl));
			break;
		}
		uint8_t *p = conn_room(c, (uint32_t)hl + cfg->payload);
		if (!p)
			break; /* transport full: lg_conn_writable() follows */
		memcpy(p, head, (size_t)hl);
		uint8_t *pl = p + hl;
		memcpy(pl, c->payload, cfg->payload);
		uint64_t ts = r > 0 ? t_start + (uint64_t)((double)c->sent * 1e9 / r) : now;
		put_le32(pl, LG_MAGIC);
		put_le32(pl + 4, c->idx);
		put_le64(pl + 8, c->sent);
		put_le64(pl + 16, ts);
		c->out_len += (uint32_t)hl + cfg->payload;
		c->sent++;
		c->th->st.pub_sent++;
		if (slot) {
			slot->pid = pub.packet_id;
			slot->state = 1;
			c->inflight++;
			c->next_pid = pub.packet_id == 65535 ? 1 : (uint16_t)(pub.packet_id + 1);
		} else {
			c->completed++;
			c->th->st.pub_completed++;
		}
	}
	if (!k)
		return false;
	conn_dirty(c);
	c->th->st.t_last_send = now;
	c->t_last_tx = now;
	return capped && k == want;
}

static int pub_ack(struct lg_conn *c, const struct eng_packet *pkt)
{
	struct lg_run *run = c->th->run;
	uint16_t pid = pkt->u.ack.packet_id;
	struct lg_slot *slot = c->slots && pid ? &c->slots[(pid - 1u) % c->window] : NULL;
	uint8_t want_state = pkt->type == ENG_PUBCOMP ? 2 : 1;
	uint8_t want_qos = pkt->type == ENG_PUBACK ? 1 : 2;

	if (!slot || slot->pid != pid || slot->state != want_state || run->cfg.qos != want_qos) {
		lg_fail(run, "publisher %u: %s for packet id %u, which is not awaiting it", c->idx,
			eng_ptype_name(pkt->type), pid);
		return -1;
	}
	if (pkt->u.ack.reason >= 0x80) {
		lg_fail(run, "publisher %u: %s reason 0x%02x (%s)", c->idx,
			eng_ptype_name(pkt->type), pkt->u.ack.reason,
			eng_reason_name(pkt->u.ack.reason));
		return -1;
	}
	if (pkt->type == ENG_PUBREC) {
		int rc = queue_ack(c, ENG_PUBREL, pid);
		if (rc <= 0)
			return rc ? -1 : 1; /* no room: decode it again later */
		slot->state = 2;
		return 0;
	}
	slot->pid = 0;
	slot->state = 0;
	c->inflight--;
	c->completed++;
	c->th->st.pub_completed++;
	return 0;
}

/* ---- subscribing ---- */

static int sub_publish(struct lg_conn *c, const struct eng_packet *pkt, uint64_t now)
{
	struct lg_thread *th = c->th;
	struct lg_run *run = th->run;
	const struct eng_publish *pub = &pkt->u.publish;
	uint8_t want_qos = run->cfg.qos < c->granted ? run->cfg.qos : c->granted;
	bool count = true;

	if (pub->qos != want_qos) {
		lg_fail(run, "subscriber %u: message delivered at QoS %u, expected QoS %u", c->idx,
			pub->qos, want_qos);
		return -1;
	}
	if (pub->payload.len != run->cfg.payload || get_le32(pub->payload.p) != LG_MAGIC) {
		lg_fail(run, "subscriber %u: payload of %u bytes on '%.*s' is not this run's",
			c->idx, pub->payload.len, (int)pub->topic.len, pub->topic.p);
		return -1;
	}
	/* Queue the acknowledgement first: if there is no room, nothing has been counted yet. */
	if (pub->qos) {
		int rc = queue_ack(c, pub->qos == 1 ? ENG_PUBACK : ENG_PUBREC, pub->packet_id);
		if (rc <= 0)
			return rc ? -1 : 1;
	}
	if (pub->qos == 2) {
		uint64_t bit = UINT64_C(1) << (pub->packet_id % 64);
		uint64_t *w = &c->qos2_ids[pub->packet_id / 64];
		if (*w & bit)
			count = false; /* a redelivery before PUBREL: already counted */
		*w |= bit;
	}
	if (!count)
		return 0;

	uint32_t pid = get_le32(pub->payload.p + 4);
	uint64_t seq = get_le64(pub->payload.p + 8);
	uint64_t ts = get_le64(pub->payload.p + 16);
	int kind;
	if (pid < c->trk_lo || pid - c->trk_lo >= c->trk_n) {
		lg_fail(run, "subscriber %u: message from publisher %u, which it does not expect",
			c->idx, pid);
		return -1;
	}
	if (run->shared) {
		kind = lg_seq_shared_record(&run->shared[pid], seq);
		if (kind < 0) {
			lg_fail(run, "subscriber %u: sequence %llu of publisher %u out of range",
				c->idx, (unsigned long long)seq, pid);
			return -1;
		}
	} else {
		kind = lg_seq_record(&c->trk[pid - c->trk_lo], seq);
	}
	th->st.sub_recv++;
	if (kind == LG_SEQ_DUP || kind == LG_SEQ_STALE)
		return 0;
	th->st.sub_unique++;
	c->delivered++;
	lg_hist_record(&th->st.lat, now > ts ? now - ts : 0);
	if (!th->st.t_first_recv)
		th->st.t_first_recv = now;
	th->st.t_last_recv = now;
	return 0;
}

/*
 * --sys-topic: a value of the broker's own accounting arrives on the watcher (idle connection
 * 0). The first is the retained one, from before the load; the last is kept with its time.
 */
static int sys_publish(struct lg_conn *c, const struct eng_packet *pkt, uint64_t now)
{
	struct lg_run *run = c->th->run;
	const struct eng_publish *pub = &pkt->u.publish;
	char txt[64], *end;

	if (pub->payload.len == 0 || pub->payload.len >= sizeof(txt)) {
		lg_fail(run, "'%s': a payload of %u bytes is not a figure", run->cfg.sys_topic,
			pub->payload.len);
		return -1;
	}
	memcpy(txt, pub->payload.p, pub->payload.len);
	txt[pub->payload.len] = 0;
	double v = strtod(txt, &end);
	if (end == txt) {
		lg_fail(run, "'%s': payload '%s' is not a number", run->cfg.sys_topic, txt);
		return -1;
	}
	if (!run->sys_count++) {
		run->sys_first = v;
		/* pairs with the acquire load in drive(): the others may connect now */
		atomic_store_explicit(&run->sys_primed, true, memory_order_release);
	}
	run->sys_last = v;
	run->t_sys_last = now;
	return 0;
}

/* Handles one decoded packet. 0 done, 1 no room for the reply yet (keep it), -1 failed. */
static int conn_packet(struct lg_conn *c, const struct eng_packet *pkt, uint64_t now)
{
	struct lg_run *run = c->th->run;

	switch (pkt->type) {
	case ENG_CONNACK:
		if (c->state != LG_CS_WAIT_CONNACK)
			break;
		if (pkt->u.connack.reason) {
			lg_fail(run, "%s %u: CONNACK refused the connection: 0x%02x (%s)",
				role_name(c), c->idx, pkt->u.connack.reason,
				eng_reason_name(pkt->u.connack.reason));
			return -1;
		}
		if (pkt->u.connack.props.present & ENG_PBIT(ENG_PROP_RECEIVE_MAXIMUM) &&
		    pkt->u.connack.props.receive_maximum < c->window)
			c->window = pkt->u.connack.props.receive_maximum;
		if (c->role == LG_SUB || c == run->sys_conn) {
			if (send_subscribe(c))
				return -1;
			c->state = LG_CS_WAIT_SUBACK;
		} else {
			conn_ready(c, now);
		}
		return 0;
	case ENG_SUBACK:
		if (c->state != LG_CS_WAIT_SUBACK || pkt->u.suback.packet_id != 1 ||
		    pkt->u.suback.count != 1)
			break;
		c->granted = pkt->u.suback.reasons[0];
		if (c->granted >= 0x80) {
			lg_fail(run, "subscriber %u: SUBACK refused '%s': 0x%02x (%s)", c->idx,
				c->filter, c->granted, eng_reason_name(c->granted));
			return -1;
		}
		if (c->granted > 2) {
			lg_fail(run, "subscriber %u: SUBACK granted QoS %u", c->idx, c->granted);
			return -1;
		}
		conn_ready(c, now);
		return 0;
	case ENG_PUBLISH:
		if (c == run->sys_conn && pkt->u.publish.qos == 0)
			return sys_publish(c, pkt, now);
		if (c->role != LG_SUB || (c->state != LG_CS_READY && c->state != LG_CS_WAIT_SUBACK))
			break;
		return sub_publish(c, pkt, now);
	case ENG_PUBACK:
	case ENG_PUBREC:
	case ENG_PUBCOMP:
		if (c->role != LG_PUB)
			break;
		return pub_ack(c, pkt);
	case ENG_PUBREL: {
		if (c->role != LG_SUB || !c->qos2_ids)
			break;
		int rc = queue_ack(c, ENG_PUBCOMP, pkt->u.ack.packet_id);
		if (rc <= 0)
			return rc ? -1 : 1;
		c->qos2_ids[pkt->u.ack.packet_id / 64] &=
			~(UINT64_C(1) << (pkt->u.ack.packet_id % 64));
		return 0;
	}
	case ENG_PINGRESP:
		if (c->ping == 1) {
			c->ping = 2;
			c->th->pongs++;
		}
		return 0;
	case ENG_DISCONNECT:
		lg_fail(run, "%s %u: broker sent DISCONNECT: 0x%02x (%s)", role_name(c), c->idx,
			pkt->u.disconnect.reason, eng_reason_name(pkt->u.disconnect.reason));
		return -1;
	default:
		break;
	}
	lg_fail(run, "%s %u: unexpected %s from the broker (connection state %u)", role_name(c),
		c->idx, eng_ptype_name(pkt->type), c->state);
	return -1;
}

/* Decodes what is buffered. 0, or -1 when the run failed. */
int lg_conn_decode(struct lg_conn *c, uint64_t now)
{
	struct lg_run *run = c->th->run;
	uint32_t off = 0;
	int rc = 0;

	while (off < c->in_len) {
		struct eng_packet pkt;
		struct eng_decode_err err;
		int n = eng_decode(&c->codec, c->in + off, c->in_len - off, &pkt, &err);
		if (n == -EAGAIN)
			break;
		if (n < 0) {
			lg_fail(run, "%s %u: protocol error from the broker in %s: %s (0x%02x %s)",
				role_name(c), c->idx,
				err.type ? eng_ptype_name(err.type) : "header",
				err.what ? err.what : "?", err.reason, eng_reason_name(err.reason));
			return -1;
		}
		rc = conn_packet(c, &pkt, now);
		if (rc < 0)
			return -1;
		if (rc > 0)
			break; /* reply did not fit: keep the packet until writable */
		off += (uint32_t)n;
	}
	if (off) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	return 0;
}

int lg_conn_input(struct lg_conn *c, const uint8_t *data, uint32_t len, uint64_t now)
{
	while (len) {
		uint32_t room = c->in_cap - c->in_len;
		uint32_t k = len < room ? len : room;
		if (!k) {
			/* The transport keeps its deliveries within the room (bench_lg_tp_ns.c
			 * pauses receiving first); getting here is a bug, never a silent drop. */
			lg_fail(c->th->run, "%s %u: receive buffer full with %u bytes undelivered",
				role_name(c), c->idx, len);
			return -1;
		}
		memcpy(c->in + c->in_len, data, k);
		c->in_len += k;
		data += k;
		len -= k;
		uint32_t before = c->in_len;
		if (lg_conn_decode(c, now))
			return -1;
		if (len && c->in_len == before && c->in_len == c->in_cap) {
			lg_fail(c->th->run, "%s %u: receive buffer full with %u bytes undelivered",
				role_name(c), c->idx, len);
			return -1;
		}
	}
	return 0;
}

int lg_conn_established(struct lg_conn *c, uint64_t now)
{
	(void)now;
	c->state = LG_CS_WAIT_CONNACK;
	if (send_connect(c))
		return -1;
	return conn_flush(c);
}

int lg_conn_writable(struct lg_conn *c, uint64_t now)
{
	if (conn_flush(c))
		return -1;
	/* Packets held back for lack of room can be answered now. */
	if (c->in_len && lg_conn_decode(c, now))
		return -1;
	return 0;
}

int lg_conn_lost(struct lg_conn *c, int err)
{
	struct lg_run *run = c->th->run;
	bool connecting = c->state == LG_CS_CONNECTING;

	c->state = LG_CS_CLOSED;
	if (atomic_load_explicit(&run->phase, memory_order_relaxed) == LG_PH_STOP)
		return 0;
	if (connecting)
		lg_fail(run, "%s %u: connect to %s:%s failed: %s", role_name(c), c->idx,
			run->cfg.host, run->cfg.port, strerror(err ? -err : ECONNRESET));
	else
		lg_fail(run, "%s %u: the broker %s the connection (%s)", role_name(c), c->idx,
			err ? "broke" : "closed", err ? strerror(-err) : "EOF");
	return -1;
}

static void thread_publish_counters(struct lg_thread *th)
{
	/* Relaxed: the watcher only compares them with targets; the join orders the totals. */
	atomic_store_explicit(&th->w_ready, th->ready, memory_order_relaxed);
	atomic_store_explicit(&th->w_unique, th->st.sub_unique, memory_order_relaxed);
	atomic_store_explicit(&th->w_sent, th->st.pub_sent, memory_order_relaxed);
	atomic_store_explicit(&th->w_connects, th->st.connects, memory_order_relaxed);
	atomic_store_explicit(&th->w_pongs, th->pongs, memory_order_relaxed);
}

/*
 * Idle hold phase: one PINGREQ per connection, so the broker has read, parsed and answered
 * something on every connection after its CONNACK before its memory is sampled. Connections
 * whose send buffer is full are retried on the next iteration.
 */
static void ping_all(struct lg_thread *th, uint64_t now)
{
	bool all = true;

	for (uint32_t k = 0; k < th->nconns; k++) {
		struct lg_conn *c = th->conns[k];
		if (c->ping || c->state != LG_CS_READY)
			continue;
		struct eng_packet pkt = {.type = ENG_PINGREQ};
		int rc = conn_queue(c, &pkt);
		if (rc < 0)
			return;
		if (rc == 0) {
			all = false;
			continue;
		}
		c->ping = 1;
		c->t_last_tx = now;
	}
	th->pings_queued = all;
}

/* Storm / idle: opens what the concurrency and rate limits allow. */
static int open_paced(struct lg_thread *th, uint64_t now, uint64_t t0, uint64_t *next_due)
{
	struct lg_run *run = th->run;
	const struct lg_cfg *cfg = &run->cfg;
	uint32_t conc = cfg->concurrency / cfg->threads;
	double rate = cfg->connect_rate / cfg->threads;
	uint32_t allowed = th->nconns;

	if (conc < 1)
		conc = 1;
	if (run->sys_conn) {
		/* pairs with the release store in drive(), which wrote t_open before it */
		if (!atomic_load_explicit(&run->sys_gate, memory_order_acquire)) {
			/* only the watcher until its first value is in (struct lg_run) */
			if (th->next_open == 0 && th->nconns && th->conns[0] == run->sys_conn) {
				if (conn_open(th, run->sys_conn, now))
					return -1;
				th->next_open = 1;
				th->pending++;
			}
			return 0;
		}
		t0 = atomic_load_explicit(&run->t_open, memory_order_relaxed);
	}
	if (rate > 0) {
		uint64_t a = (uint64_t)((double)(now - t0) * rate / 1e9) + 1;
		allowed = a < th->nconns ? (uint32_t)a : th->nconns;
		uint64_t t_next = t0 + (uint64_t)((double)allowed * 1e9 / rate);
		if (allowed < th->nconns && t_next < *next_due)
			*next_due = t_next;
	}
	while (th->next_open < allowed && th->pending < conc) {
		if (conn_open(th, th->conns[th->next_open], now))
			return -1;
		th->next_open++;
		th->pending++;
	}
	return 0;
}

static void keepalive(struct lg_thread *th, uint64_t now)
{
	uint64_t ka = (uint64_t)th->run->cfg.keepalive * 500000000ull; /* half the keepalive */

	for (uint32_t k = 0; ka && k < th->nconns; k++) {
		struct lg_conn *c = th->conns[k];
		if (c->state != LG_CS_READY || now - c->t_last_tx < ka)
			continue;
		struct eng_packet pkt = {.type = ENG_PINGREQ};
		if (conn_queue(c, &pkt) == 1)
			c->t_last_tx = now;
	}
}

/* A connection the transport has open (whatever its MQTT state). */
static bool conn_live(const struct lg_conn *c)
{
	return c->state != LG_CS_NEW && c->state != LG_CS_CLOSED;
}

static void thread_close(struct lg_thread *th, bool graceful)
{
	const struct lg_transport *tp = th->run->tp;

	for (uint32_t k = 0; k < th->nconns; k++) {
		struct lg_conn *c = th->conns[k];
		if (!conn_live(c))
			continue;
		bool mqtt = graceful && c->state == LG_CS_READY;
		if (mqtt) {
			struct eng_packet pkt = {.type = ENG_DISCONNECT};
			if (conn_queue(c, &pkt) == 1 && !c->blocked)
				conn_flush(c);
		}
		tp->close(c, mqtt);
		c->state = LG_CS_CLOSED;
	}
	tp->flush(th);
}

void *lg_thread_main(void *arg)
{
	struct lg_thread *th = arg;
	struct lg_run *run = th->run;
	const struct lg_cfg *cfg = &run->cfg;
	const struct lg_transport *tp = run->tp;
	bool paced = cfg->topo == LG_TOPO_IDLE || cfg->topo == LG_TOPO_STORM;
	uint64_t t0 = lg_now_ns(), last_ka = t0;
	int phase = LG_PH_CONNECT;
	bool up = false;

	lg_hist_init(&th->st.lat);
	lg_hist_init(&th->st.conn_lat);
	if (tp->thread_init(th))
		goto out;
	up = true;
	if (!paced) {
		for (uint32_t k = 0; k < th->nconns; k++)
			if (conn_open(th, th->conns[k], t0))
				goto out;
		th->next_open = th->nconns;
	}

	for (;;) {
		/* Pairs with the release store of the phase by the main thread. */
		phase = atomic_load_explicit(&run->phase, memory_order_acquire);
		if (phase == LG_PH_STOP || atomic_load_explicit(&run->failed, memory_order_relaxed))
			break;
		uint64_t now = lg_now_ns();
		uint64_t next_due = now + 10000000ull; /* look at the phase every 10 ms at least */
		bool busy = false;

		if (paced && th->next_open < th->nconns && open_paced(th, now, t0, &next_due))
			break;
		if (phase == LG_PH_HOLD && !th->pings_queued)
			ping_all(th, now);
		if (phase == LG_PH_PUBLISH || phase == LG_PH_DRAIN) {
			uint64_t ts = atomic_load_explicit(&run->t_start, memory_order_relaxed);
			for (uint32_t k = 0; k < th->npubs; k++)
				busy |= pub_fill(th->pubs[k], now, ts, &next_due);
		}
		/* A blocked connection is flushed by its lg_conn_writable() instead. */
		for (uint32_t k = 0; k < th->ndirty; k++) {
			struct lg_conn *c = th->dirty[k];
			c->dirty = false;
			if (c->out_len > c->out_off && !c->blocked && conn_live(c) && conn_flush(c))
				break;
		}
		th->ndirty = 0;
		tp->flush(th);
		if (atomic_load_explicit(&run->failed, memory_order_relaxed))
			break;
		thread_publish_counters(th);

		uint64_t to = 0;
		if (!busy && next_due > now)
			to = next_due - now;
		if (tp->poll(th, to))
			goto out;
		now = lg_now_ns();
		if (now - last_ka > 1000000000ull) {
			keepalive(th, now);
			last_ka = now;
		}
	}
out:
	thread_publish_counters(th);
	if (up) {
		thread_close(th, phase == LG_PH_STOP && !atomic_load(&run->failed));
		tp->thread_fini(th);
	}
	atomic_store_explicit(&th->w_exited, 1, memory_order_release);
	return NULL;
}
