/* SPDX-License-Identifier: MIT */
/*
 * The kernel-socket backend: one epoll instance and one SO_REUSEPORT listener per worker, so
 * the kernel spreads new connections over the workers and a connection never changes worker.
 *
 * Receive: each ns_poll() reads at most rx_chunk bytes per readable connection into the
 * worker's receive arena and reports views into it; the arena is reused at the next poll
 * (level-triggered epoll brings back whatever was not read). Send: ns_send() copies into a
 * per-connection chain of chunks taken from per-worker free lists; ns_flush() writes each
 * dirty connection with one writev() and arms EPOLLOUT only when the socket is full.
 *
 * Memory: an idle connection holds no buffer, only its struct kconn (allocated in blocks).
 * Chunks come in two sizes (ns_chunk.h, shared with the TCP stack's send buffer): a write that
 * starts an empty queue and fits KCHUNK_SMALL takes a small chunk, anything else a big one.
 * Most writes are acks, CONNACKs, PINGRESPs and small publishes that leave at the next flush,
 * and a burst of them (thousands of CONNACKs or PINGRESPs in one poll) then touches a few
 * hundred bytes per connection instead of a 16 KiB chunk each, which the free list would keep
 * resident afterwards.
 *
 * Connection life: OPEN -> (ns_close graceful with output queued) CLOSING -> (queue drained,
 * shutdown(SHUT_WR)) LINGER -> DEAD. LINGER discards input until the peer closes, so the last
 * bytes sent are not destroyed by a reset caused by unread input. DEAD connections are put
 * on the notes list, report CLOSED at the next poll, then wait one more poll as zombies before
 * their memory is reused (the engine may still hold the handle while handling CLOSED).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ns_chunk.h"
#include "ns_internal.h"

#define KCHUNK_BIG 16384     /* bytes per big chunk, header included (an allocator size class) */
#define KCHUNK_SMALL 512     /* the same for a small chunk */
#define KCHUNK_FREE_MAX 1024 /* chunks of each size kept per worker; more are freed */
#define KEPOLL_BATCH 256
#define KCONN_BLOCK (NS_BLOCK_BYTES / sizeof(struct kconn))
#define KIOV_MAX 64
#define KRX_ARENA_CHUNKS 16 /* receive arena = this many rx_chunks */

enum kstate {
	KS_OPEN,
	KS_CLOSING, /* graceful close: draining output */
	KS_LINGER,  /* output sent and shut down: waiting for the peer's close */
	KS_DEAD,    /* fd closed; CLOSED reported or about to be */
};

enum {
	KNOTE_WRITABLE = 1,
	KNOTE_CLOSED = 2,
};

struct kconn {
	struct ns_conn base;
	int fd;
	uint8_t state;
	uint8_t notes;     /* KNOTE_* to report */
	bool dirty;        /* on the worker's flush list */
	bool want_writable;
	bool paused;
	bool epollout;
	int close_err;
	size_t pending;
	struct ns_chunk *head;
	struct ns_chunk *tail;
	struct kconn *next_dirty;
	struct kconn *next_note;
	struct kconn *prev; /* live list, or free / zombie list (next only) */
	struct kconn *next;
};

struct kworker {
	struct ns_worker base;
	int ep;
	int lfd;
	int evfd;
	atomic_bool wake_pending; /* set by ns_wake(), cleared by the worker: acq_rel exchange */
	uint8_t *rx;
	size_t rx_size;
	size_t rx_used;
	uint32_t nconns;
	struct kconn *live;
	struct kconn *dirty;
	struct kconn *notes;
	struct kconn *notes_tail;
	struct kconn *zombies;
	struct kconn *free_conns;
	void **blocks; /* connection blocks, for destroy */
	size_t nblocks;
	struct ns_chunk_cache chunks; /* output chunks, both sizes */
};

static struct kworker *kw(struct ns_worker *w)
{
	return (struct kworker *)w;
}

static struct kconn *kc(struct ns_conn *c)
{
	return (struct kconn *)c;
}

static void drop_output(struct kworker *w, struct kconn *c)
{
	while (c->head) {
		struct ns_chunk *ch = c->head;
		c->head = ch->next;
		ns_chunk_put(&w->chunks, ch);
	}
	c->tail = NULL;
	c->pending = 0;
}

static void set_interest(struct kworker *w, struct kconn *c)
{
	struct epoll_event ev = {.data.ptr = c};
	if (!c->paused)
		ev.events |= EPOLLIN | EPOLLRDHUP;
	if (c->epollout)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
		NS_DIE("epoll_ctl(MOD) failed on a live connection");
}

static void note(struct kworker *w, struct kconn *c, uint8_t what)
{
	if (!c->notes) {
		c->next_note = NULL;
		if (w->notes_tail)
			w->notes_tail->next_note = c;
		else
			w->notes = c;
		w->notes_tail = c;
	}
	c->notes |= what;
}

/* Closes the socket now; CLOSED is reported at the next poll. */
static void conn_dead(struct kworker *w, struct kconn *c, int err)
{
	if (c->state == KS_DEAD)
		return;
	close(c->fd); /* also removes it from the epoll set */
	c->fd = -1;
	c->state = KS_DEAD;
	c->close_err = err;
	drop_output(w, c);
	/* unlink from the live list */
	if (c->prev)
		c->prev->next = c->next;
	else
		w->live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	w->nconns--;
	w->base.stats.closed++;
	if (err)
		w->base.stats.errors++;
	note(w, c, KNOTE_CLOSED);
}

static struct kconn *conn_alloc(struct kworker *w)
{
	if (!w->free_conns) {
		void **blocks = realloc(w->blocks, (w->nblocks + 1) * sizeof(*blocks));
		if (!blocks)
			return NULL;
		w->blocks = blocks;
		struct kconn *b = calloc(KCONN_BLOCK, sizeof(*b));
		if (!b)
			return NULL;
		w->blocks[w->nblocks++] = b;
		for (int i = (int)KCONN_BLOCK - 1; i >= 0; i--) {
			b[i].next = w->free_conns;
			w->free_conns = &b[i];
		}
	}
	struct kconn *c = w->free_conns;
	w->free_conns = c->next;
	memset(c, 0, sizeof(*c));
	c->base.w = &w->base;
	return c;
}

static void set_peer(struct ns_conn *c, const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)ss;
		ns_conn_set_peer4(c, &a->sin_addr, ntohs(a->sin_port));
	} else {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)ss;
		ns_conn_set_peer6(c, &a->sin6_addr, ntohs(a->sin6_port));
	}
}

/* Accepts while there is room for events; level-triggered epoll brings back the rest. */
static unsigned do_accept(struct kworker *w, struct ns_event *ev, unsigned room)
{
	unsigned n = 0;
	while (n < room) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(w->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				w->base.stats.errors++; /* EMFILE and the like: counted, retried */
			break;
		}
		struct kconn *c = w->nconns < w->base.t->cfg.max_conns ? conn_alloc(w) : NULL;
		if (!c) {
			close(fd);
			w->base.stats.refused++;
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		c->state = KS_OPEN;
		set_peer(&c->base, &ss);
		struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
			close(fd);
			c->next = w->free_conns;
			w->free_conns = c;
			w->base.stats.errors++;
			continue;
		}
		c->next = w->live;
		if (w->live)
			w->live->prev = c;
		w->live = c;
		w->nconns++;
		w->base.stats.accepted++;
		ev[n++] = (struct ns_event){.type = NS_EV_ACCEPT, .conn = &c->base};
	}
	return n;
}

/* Writes as much queued output as the socket takes, with one writev(). */
static void flush_conn(struct kworker *w, struct kconn *c)
{
	struct iovec iov[KIOV_MAX];
	unsigned n = 0;

	for (struct ns_chunk *ch = c->head; ch && n < KIOV_MAX; ch = ch->next)
		iov[n++] = (struct iovec){ch->data + ch->off, ch->len - ch->off};
	if (n) {
		ssize_t wr = writev(c->fd, iov, (int)n);
		w->base.stats.tx_calls++;
		if (wr < 0) {
			if (errno != EAGAIN && errno != EINTR) {
				conn_dead(w, c, -errno);
				return;
			}
			wr = 0;
		}
		w->base.stats.tx_bytes += (uint64_t)wr;
		c->pending -= (size_t)wr;
		while (wr > 0) {
			struct ns_chunk *ch = c->head;
			size_t in = ch->len - ch->off;
			if ((size_t)wr < in) {
				ch->off += (uint32_t)wr;
				break;
			}
			wr -= (ssize_t)in;
			c->head = ch->next;
			ns_chunk_put(&w->chunks, ch);
		}
		if (!c->head)
			c->tail = NULL;
	}
	bool need_out = c->pending > 0;
	if (need_out != c->epollout) {
		c->epollout = need_out;
		set_interest(w, c);
	}
	if (c->want_writable && c->pending <= w->base.t->cfg.tx_limit / 2) {
		c->want_writable = false;
		note(w, c, KNOTE_WRITABLE);
	}
	if (c->pending == 0 && c->state == KS_CLOSING) {
		shutdown(c->fd, SHUT_WR);
		c->state = KS_LINGER;
	}
}

/* Reads once from a readable connection; returns the events produced (0 or 1). */
static unsigned do_read(struct kworker *w, struct kconn *c, struct ns_event *ev)
{
	uint32_t chunk = w->base.t->cfg.rx_chunk;
	if (w->rx_size - w->rx_used < chunk)
		return 0; /* arena full: level-triggered epoll reports it again next poll */
	uint8_t *buf = w->rx + w->rx_used;
	ssize_t r = recv(c->fd, buf, chunk, 0);
	w->base.stats.rx_calls++;
	if (r > 0) {
		w->base.stats.rx_bytes += (uint64_t)r;
		if (c->state != KS_OPEN)
			return 0; /* closing: the engine no longer wants input */
		w->rx_used += (size_t)r;
		*ev = (struct ns_event){.type = NS_EV_DATA, .conn = &c->base, .user = c->base.user,
					.data = buf, .len = (uint32_t)r};
		return 1;
	}
	if (r == 0)
		conn_dead(w, c, 0);
	else if (errno != EAGAIN && errno != EINTR)
		conn_dead(w, c, -errno);
	return 0;
}

/* Reports queued notes; a CLOSED connection then waits one poll as a zombie. */
static unsigned drain_notes(struct kworker *w, struct ns_event *ev, unsigned max)
{
	unsigned n = 0;
	while (w->notes && n < max) {
		struct kconn *c = w->notes;
		if ((c->notes & KNOTE_WRITABLE) && !(c->notes & KNOTE_CLOSED)) {
			ev[n++] = (struct ns_event){.type = NS_EV_WRITABLE, .conn = &c->base,
						    .user = c->base.user};
			c->notes &= (uint8_t)~KNOTE_WRITABLE;
		} else if (c->notes & KNOTE_CLOSED) {
			ev[n++] = (struct ns_event){.type = NS_EV_CLOSED, .conn = &c->base,
						    .user = c->base.user, .err = c->close_err};
			c->notes = 0;
			c->next = w->zombies;
			w->zombies = c;
		}
		if (c->notes == 0) {
			w->notes = c->next_note;
			if (!w->notes)
				w->notes_tail = NULL;
		}
	}
	return n;
}

static unsigned k_poll(struct ns_worker *base, struct ns_event *ev, unsigned max, int timeout_ms)
{
	struct kworker *w = kw(base);
	struct epoll_event eevs[KEPOLL_BATCH];
	unsigned n = 0;

	/* Zombies' CLOSED was reported by the previous poll: reuse them, unless the flush list
	 * still holds one (the engine did not flush since), in which case it waits a round. */
	struct kconn *keep = NULL;
	while (w->zombies) {
		struct kconn *c = w->zombies;
		w->zombies = c->next;
		if (c->dirty) {
			c->next = keep;
			keep = c;
		} else {
			c->next = w->free_conns;
			w->free_conns = c;
		}
	}
	w->zombies = keep;
	w->rx_used = 0; /* the previous poll's views expire here */
	if (max == 0)
		return 0;

	n += drain_notes(w, ev, max);
	if (n)
		timeout_ms = 0;
	/* Room for at least two events per epoll event (WRITABLE and DATA). */
	unsigned room = max - n;
	int want = (int)(room / 2 ? room / 2 : 1);
	if (want > KEPOLL_BATCH)
		want = KEPOLL_BATCH;
	if (room == 0)
		return n;
	int ne = epoll_wait(w->ep, eevs, want, timeout_ms);
	for (int i = 0; i < ne; i++) {
		void *p = eevs[i].data.ptr;
		if (p == &w->lfd) {
			n += do_accept(w, ev + n, max - n);
			continue;
		}
		if (p == &w->evfd) {
			uint64_t v;
			if (read(w->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				w->base.stats.errors++;
			/* pairs with the acq_rel exchange in k_wake() */
			atomic_store_explicit(&w->wake_pending, false, memory_order_release);
			continue;
		}
		struct kconn *c = p;
		if (c->state == KS_DEAD)
			continue; /* closed earlier in this batch */
		if (eevs[i].events & EPOLLOUT)
			flush_conn(w, c);
		if (c->state != KS_DEAD && (eevs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP |
							       EPOLLERR)) && n < max)
			n += do_read(w, c, ev + n);
	}
	if (n < max)
		n += drain_notes(w, ev + n, max - n); /* closes and WRITABLEs of this round */
	return n;
}

static int k_send(struct ns_conn *base, const struct iovec *iov, unsigned iovcnt)
{
	struct kconn *c = kc(base);
	struct kworker *w = kw(base->w);
	size_t total = 0;

	if (c->state != KS_OPEN)
		return -EPIPE;
	for (unsigned i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (c->pending + total > w->base.t->cfg.tx_limit) {
		c->want_writable = true;
		w->base.stats.tx_full++;
		return -ENOBUFS;
	}
	if (ns_chunk_append(&w->chunks, &c->head, &c->tail, iov, iovcnt, total) != 0) {
		/* out of memory on the data path: the connection cannot continue */
		conn_dead(w, c, -ENOMEM);
		return -EPIPE;
	}
	c->pending += total;
	if (!c->dirty && total) {
		c->dirty = true;
		c->next_dirty = w->dirty;
		w->dirty = c;
	}
	return 0;
}

static void k_flush(struct ns_worker *base)
{
	struct kworker *w = kw(base);
	while (w->dirty) {
		struct kconn *c = w->dirty;
		w->dirty = c->next_dirty;
		c->dirty = false;
		if (c->state == KS_OPEN || c->state == KS_CLOSING)
			flush_conn(w, c);
	}
}

static void k_close(struct ns_conn *base, bool graceful)
{
	struct kconn *c = kc(base);
	struct kworker *w = kw(base->w);

	if (c->state == KS_DEAD)
		return;
	if (!graceful) {
		conn_dead(w, c, 0);
		return;
	}
	if (c->state != KS_OPEN)
		return;
	c->state = KS_CLOSING;
	c->want_writable = false;
	if (c->pending == 0) {
		shutdown(c->fd, SHUT_WR);
		c->state = KS_LINGER;
	}
}

static void k_pause_rx(struct ns_conn *base, bool pause)
{
	struct kconn *c = kc(base);
	if (c->state == KS_DEAD || c->paused == pause)
		return;
	c->paused = pause;
	if (pause)
		base->w->stats.rx_paused++;
	set_interest(kw(base->w), c);
}

static size_t k_pending(const struct ns_conn *base)
{
	return ((const struct kconn *)base)->pending;
}

static void k_wake(struct ns_worker *base)
{
	struct kworker *w = kw(base);
	/* acq_rel: pairs with the release store in k_poll(); one write per sleep */
	if (!atomic_exchange_explicit(&w->wake_pending, true, memory_order_acq_rel)) {
		uint64_t one = 1;
		if (write(w->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			NS_DIE("eventfd write failed");
	}
}

static void k_destroy(struct ns_transport *t)
{
	for (unsigned i = 0; i < t->nworkers; i++) {
		struct kworker *w = kw(t->workers[i]);
		if (!w)
			continue;
		while (w->live)
			conn_dead(w, w->live, 0);
		ns_chunk_cache_fini(&w->chunks);
		for (size_t b = 0; b < w->nblocks; b++)
			free(w->blocks[b]);
		free(w->blocks);
		free(w->rx);
		if (w->lfd >= 0)
			close(w->lfd);
		if (w->evfd >= 0)
			close(w->evfd);
		if (w->ep >= 0)
			close(w->ep);
		free(w);
	}
	free(t->workers);
	free(t);
}

static const struct ns_ops kernel_ops = {
	.destroy = k_destroy,
	.poll = k_poll,
	.send = k_send,
	.flush = k_flush,
	.close = k_close,
	.pause_rx = k_pause_rx,
	.pending = k_pending,
	.wake = k_wake,
};

/* A non-blocking SO_REUSEPORT listener on addr:port; returns the fd or -errno. */
static int open_listener(const struct ns_config *cfg, uint16_t port, char *err, size_t errlen)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	struct sockaddr_in *a4 = (struct sockaddr_in *)(void *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)(void *)&ss;

	if (inet_pton(AF_INET, cfg->bind, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		sl = sizeof(*a4);
	} else if (inet_pton(AF_INET6, cfg->bind, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		sl = sizeof(*a6);
	} else {
		snprintf(err, errlen, "bind address '%s' is not a numeric IPv4/IPv6 address",
			 cfg->bind);
		return -EINVAL;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, cfg->backlog) != 0) {
		int e = errno;
		snprintf(err, errlen, "listen on %s:%u: %s", cfg->bind, port, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

static uint16_t bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)(void *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
}

static int worker_init(struct ns_transport *t, unsigned idx, char *err, size_t errlen)
{
	struct kworker *w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	t->workers[idx] = &w->base;
	w->base.t = t;
	w->base.idx = idx;
	w->lfd = w->evfd = -1;
	ns_chunk_cache_init(&w->chunks, KCHUNK_SMALL, KCHUNK_BIG, KCHUNK_FREE_MAX, KCHUNK_FREE_MAX);
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->rx_size = (size_t)t->cfg.rx_chunk * KRX_ARENA_CHUNKS;
	w->rx = malloc(w->rx_size);
	if (w->ep < 0 || w->evfd < 0 || !w->rx) {
		snprintf(err, errlen, "worker %u: %s", idx, strerror(errno ? errno : ENOMEM));
		return -ENOMEM;
	}
	int fd = open_listener(&t->cfg, t->port, err, errlen);
	if (fd < 0)
		return fd;
	w->lfd = fd;
	if (t->port == 0)
		t->port = bound_port(fd); /* the other workers share the ephemeral port */
	struct epoll_event le = {.events = EPOLLIN, .data.ptr = &w->lfd};
	struct epoll_event ee = {.events = EPOLLIN, .data.ptr = &w->evfd};
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lfd, &le) != 0 ||
	    epoll_ctl(w->ep, EPOLL_CTL_ADD, w->evfd, &ee) != 0) {
		snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

struct ns_transport *ns_kernel_create(const struct ns_config *cfg, char *err, size_t errlen)
{
	struct ns_transport *t = calloc(1, sizeof(*t));
	if (!t)
		goto fail_alloc;
	t->ops = &kernel_ops;
	t->cfg = *cfg;
	t->port = cfg->port;
	t->workers = calloc(cfg->workers, sizeof(*t->workers));
	if (!t->workers)
		goto fail_workers;
	t->nworkers = cfg->workers;
	for (unsigned i = 0; i < cfg->workers; i++)
		if (worker_init(t, i, err, errlen) != 0)
			goto fail_init;
	return t;

fail_init:
	k_destroy(t);
	return NULL;
fail_workers:
	free(t);
fail_alloc:
	snprintf(err, errlen, "out of memory");
	return NULL;
}
