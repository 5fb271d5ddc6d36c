/*
 * loadgen: a small HTTP/1.1 load generator for the berth benchmarks.
 *
 *   loadgen load  [options] PATH...   keep-alive connections cycling PATHs
 *   loadgen storm [options] PATH...   C clients each fetching every PATH once
 *
 * A PATH may carry its own method as a prefix: "HEAD:/v2/x/manifests/v1".
 * Every run prints one line of key=value pairs on stdout.
 *
 * Connections are non-blocking sockets spread over a few worker threads,
 * each with its own epoll set. Every loop is bounded by a deadline, and the
 * load mode also by a maximum request count shared by all threads.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PATHS    65536
#define MAX_HEADERS  16
#define MAX_THREADS  16
#define MAX_CONNS    4096
#define BUF_SIZE     (64 * 1024)
#define HDR_MAX      (32 * 1024)
#define SCRATCH_SIZE (256 * 1024)

/* Latency histogram: exact below 1024 us, then 512 buckets per power of 2. */
#define HIST_LINEAR  1024
#define HIST_MAX_EXP 40
#define HIST_BUCKETS (HIST_LINEAR + (HIST_MAX_EXP - 10 + 1) * 512)

enum mode { MODE_LOAD, MODE_STORM };

enum cstate {
	CS_IDLE,
	CS_CONNECTING,
	CS_SENDING,
	CS_HEADERS,
	CS_BODY_LEN,
	CS_BODY_EOF,
	CS_CHUNK_SIZE,
	CS_CHUNK_EXT,
	CS_CHUNK_DATA,
	CS_CHUNK_CRLF,
	CS_TRAILER,
	CS_NOBODY,
	CS_DONE,
};

struct req {
	char *text;
	size_t len;
	int head;
	const char *path;
	char method[16];
};

struct stats {
	uint64_t responses;
	uint64_t s2xx, s3xx, s4xx, s5xx, other;
	uint64_t conn_err;
	uint64_t timeouts;
	uint64_t connects;
	uint64_t bytes;
	uint64_t clen;
	uint64_t hist[HIST_BUCKETS];
	uint64_t lat_max;
	int first_bad_status;
};

struct conn {
	int fd;
	enum cstate state;
	const struct req *rq;
	size_t woff;
	size_t blen;
	char *buf;
	uint64_t t_req;
	uint64_t t_done;
	uint64_t left;
	uint64_t chunk;
	int keepalive;
	int step; /* storm: index in the script; load: next path index */
	int failed;
	int linelen;
	int status;
};

struct worker {
	pthread_t tid;
	int ep;
	struct conn *conns;
	int nconns;
	int active;
	struct stats st;
	uint64_t t_end;
	char scratch[SCRATCH_SIZE];
};

static struct {
	enum mode mode;
	struct sockaddr_in addr;
	char hostport[128];
	struct req reqs[MAX_PATHS];
	int nreqs;
	const char *headers[MAX_HEADERS];
	int nheaders;
	const char *method;
	int conns;
	int threads;
	double duration;
	uint64_t max_requests;
	uint64_t max_errors;
	int rounds;
	const char *label;
	uint64_t deadline;
	uint64_t issued;
	uint64_t errors;
	int abort;
} g = {
        .method = "GET",
        .conns = 64,
        .threads = 2,
        .duration = 10.0,
        .max_requests = 100000000ull,
        .max_errors = 1000,
        .rounds = 3,
        .label = "-",
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int
hist_bucket(uint64_t us)
{
	int e;

	if (us < HIST_LINEAR)
		return (int)us;
	e = 63 - __builtin_clzll(us);
	if (e > HIST_MAX_EXP)
		return HIST_BUCKETS - 1;
	return HIST_LINEAR + (e - 10) * 512 + (int)((us >> (e - 9)) - 512);
}

static uint64_t
hist_value(int b)
{
	int e, m;

	if (b < HIST_LINEAR)
		return (uint64_t)b;
	e = (b - HIST_LINEAR) / 512 + 10;
	m = (b - HIST_LINEAR) % 512 + 512;
	return (uint64_t)m << (e - 9);
}

static uint64_t
hist_quantile(const uint64_t *h, uint64_t n, double q)
{
	uint64_t want, seen = 0;
	int b;

	if (n == 0)
		return 0;
	want = (uint64_t)(q * (double)n);
	if (want >= n)
		want = n - 1;
	for (b = 0; b < HIST_BUCKETS; b++) {
		seen += h[b];
		if (seen > want)
			return hist_value(b);
	}
	return hist_value(HIST_BUCKETS - 1);
}

static void
stats_add(struct stats *to, const struct stats *from)
{
	int b;

	to->responses += from->responses;
	to->s2xx += from->s2xx;
	to->s3xx += from->s3xx;
	to->s4xx += from->s4xx;
	to->s5xx += from->s5xx;
	to->other += from->other;
	to->conn_err += from->conn_err;
	to->timeouts += from->timeouts;
	to->connects += from->connects;
	to->bytes += from->bytes;
	to->clen += from->clen;
	for (b = 0; b < HIST_BUCKETS; b++)
		to->hist[b] += from->hist[b];
	if (from->lat_max > to->lat_max)
		to->lat_max = from->lat_max;
	if (!to->first_bad_status)
		to->first_bad_status = from->first_bad_status;
}

static void
note_error(void)
{
	if (__atomic_add_fetch(&g.errors, 1, __ATOMIC_RELAXED) > g.max_errors)
		__atomic_store_n(&g.abort, 1, __ATOMIC_RELAXED);
}

static void
conn_close(struct worker *w, struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->blen = 0;
}

/* The connection is finished for good: no more requests on it. */
static void
conn_retire(struct worker *w, struct conn *c)
{
	conn_close(w, c);
	if (c->state != CS_DONE) {
		c->state = CS_DONE;
		c->t_done = now_ns();
		w->active--;
	}
}

static int
conn_open(struct worker *w, struct conn *c)
{
	struct epoll_event ev;
	int one = 1;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	w->st.connects++;
	if (connect(fd, (struct sockaddr *)&g.addr, sizeof(g.addr)) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	ev.events = EPOLLOUT;
	ev.data.ptr = c;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		return -1;
	}
	c->fd = fd;
	c->state = CS_CONNECTING;
	return 0;
}

static void conn_next(struct worker *w, struct conn *c);

/* A request failed at the connection level (refused, reset, bad framing). */
static void
conn_fail(struct worker *w, struct conn *c)
{
	w->st.conn_err++;
	note_error();
	conn_close(w, c);
	if (g.mode == MODE_STORM) {
		c->failed = 1;
		conn_retire(w, c);
		return;
	}
	c->state = CS_IDLE;
	conn_next(w, c);
}

static void
want_events(struct worker *w, struct conn *c, uint32_t events)
{
	struct epoll_event ev;

	ev.events = events;
	ev.data.ptr = c;
	epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void
conn_send(struct worker *w, struct conn *c)
{
	ssize_t n;

	for (int i = 0; i < 64 && c->woff < c->rq->len; i++) {
		n = write(c->fd, c->rq->text + c->woff, c->rq->len - c->woff);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			want_events(w, c, EPOLLOUT);
			return;
		}
		if (n <= 0) {
			conn_fail(w, c);
			return;
		}
		c->woff += (size_t)n;
	}
	if (c->woff < c->rq->len) {
		want_events(w, c, EPOLLOUT);
		return;
	}
	if (c->state == CS_SENDING) {
		c->state = CS_HEADERS;
		c->blen = 0;
	}
}

/* Picks the next request for the connection, or retires it. */
static void
conn_next(struct worker *w, struct conn *c)
{
	uint64_t t = now_ns();

	if (__atomic_load_n(&g.abort, __ATOMIC_RELAXED) || t >= g.deadline) {
		if (g.mode == MODE_STORM && c->step < g.nreqs)
			c->failed = 1;
		conn_retire(w, c);
		return;
	}
	if (g.mode == MODE_STORM) {
		if (c->step >= g.nreqs) {
			conn_retire(w, c);
			return;
		}
		c->rq = &g.reqs[c->step++];
	} else {
		if (__atomic_fetch_add(&g.issued, 1, __ATOMIC_RELAXED) >=
		    g.max_requests) {
			conn_retire(w, c);
			return;
		}
		c->rq = &g.reqs[c->step];
		c->step = (c->step + 1) % g.nreqs;
	}
	c->woff = 0;
	c->blen = 0;
	if (c->fd < 0) {
		if (conn_open(w, c) < 0) {
			conn_fail(w, c);
			return;
		}
		c->t_req = t;
		return; /* the request goes out once connected */
	}
	c->t_req = t;
	c->state = CS_SENDING;
	conn_send(w, c);
}

static void
record_response(struct worker *w, struct conn *c, int status)
{
	uint64_t us = (now_ns() - c->t_req) / 1000;

	w->st.responses++;
	w->st.hist[hist_bucket(us)]++;
	if (us > w->st.lat_max)
		w->st.lat_max = us;
	if (status >= 200 && status < 300) {
		w->st.s2xx++;
		return;
	}
	if (status >= 300 && status < 400)
		w->st.s3xx++;
	else if (status >= 400 && status < 500)
		w->st.s4xx++;
	else if (status >= 500 && status < 600)
		w->st.s5xx++;
	else
		w->st.other++;
	if (!w->st.first_bad_status)
		w->st.first_bad_status = status;
	c->failed = 1;
	note_error();
}

static void
response_done(struct worker *w, struct conn *c)
{
	record_response(w, c, c->status);
	if (!c->keepalive)
		conn_close(w, c);
	else if (c->fd >= 0)
		want_events(w, c, EPOLLIN);
	c->state = CS_IDLE;
	if (g.mode == MODE_STORM && c->failed) {
		conn_retire(w, c);
		return;
	}
	conn_next(w, c);
}

static int
header_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n && strncasecmp(line, name, n) == 0 && line[n] == ':';
}

static int
value_has(const char *v, size_t len, const char *word)
{
	size_t n = strlen(word);

	for (size_t i = 0; i + n <= len; i++)
		if (strncasecmp(v + i, word, n) == 0)
			return 1;
	return 0;
}

/*
 * Parses the status line and headers in c->buf[0..hlen). Sets the body
 * state. Returns the status code, or -1 on a malformed response.
 */
static int
parse_headers(struct worker *w, struct conn *c, size_t hlen)
{
	const char *p = c->buf, *end = c->buf + hlen;
	int status, http10, chunked = 0, have_len = 0, close_hdr = 0,
	                    ka_hdr = 0;
	uint64_t clen = 0;

	if (hlen < 12 || strncmp(p, "HTTP/1.", 7) != 0 ||
	    !isdigit((unsigned char)p[9]))
		return -1;
	http10 = p[7] == '0';
	status = atoi(p + 9);
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *v;
		size_t len;

		if (!eol)
			break;
		len = (size_t)(eol - p);
		v = memchr(p, ':', len);
		if (v) {
			size_t vlen = len - (size_t)(v + 1 - p);

			if (header_is(p, len, "content-length")) {
				clen = strtoull(v + 1, NULL, 10);
				have_len = 1;
			} else if (header_is(p, len, "transfer-encoding")) {
				chunked = value_has(v + 1, vlen, "chunked");
			} else if (header_is(p, len, "connection")) {
				close_hdr = value_has(v + 1, vlen, "close");
				ka_hdr = value_has(v + 1, vlen, "keep-alive");
			}
		}
		p = eol + 1;
	}
	c->keepalive = close_hdr ? 0 : (http10 ? ka_hdr : 1);
	if (have_len)
		w->st.clen += clen;
	if (c->rq->head || status / 100 == 1 || status == 204 ||
	    status == 304) {
		c->state = CS_NOBODY; /* no body: caller finishes */
		return status;
	}
	if (chunked) {
		c->state = CS_CHUNK_SIZE;
		c->chunk = 0;
	} else if (have_len) {
		c->state = CS_BODY_LEN;
		c->left = clen;
	} else {
		c->state = CS_BODY_EOF;
		c->keepalive = 0;
	}
	return status;
}

/*
 * Consumes body bytes. Returns 1 when the response is complete, 0 when more
 * is needed, -1 on bad framing.
 */
static int
consume_body(struct worker *w, struct conn *c, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		switch (c->state) {
		case CS_BODY_LEN: {
			size_t take = n - i;

			if (take > c->left)
				take = (size_t)c->left;
			c->left -= take;
			w->st.bytes += take;
			i += take;
			if (c->left == 0)
				return i == n ? 1 : -1;
			break;
		}
		case CS_BODY_EOF: w->st.bytes += n - i; return 0;
		case CS_CHUNK_SIZE: {
			int ch = (unsigned char)p[i++];

			if (isxdigit(ch)) {
				if (c->chunk >> 56)
					return -1;
				c->chunk =
				        c->chunk * 16 +
				        (uint64_t)(isdigit(ch) ? ch - '0'
				                               : (tolower(ch) -
				                                  'a' + 10));
			} else if (ch == ';' || ch == '\r' || ch == ' ') {
				c->state = CS_CHUNK_EXT;
			} else if (ch == '\n') {
				goto chunk_line_done;
			} else {
				return -1;
			}
			break;
		}
		case CS_CHUNK_EXT:
			if (p[i++] != '\n')
				break;
		chunk_line_done:
			if (c->chunk == 0) {
				c->state = CS_TRAILER;
				c->linelen = 0;
			} else {
				c->state = CS_CHUNK_DATA;
				c->left = c->chunk;
			}
			break;
		case CS_CHUNK_DATA: {
			size_t take = n - i;

			if (take > c->left)
				take = (size_t)c->left;
			c->left -= take;
			w->st.bytes += take;
			i += take;
			if (c->left == 0)
				c->state = CS_CHUNK_CRLF;
			break;
		}
		case CS_CHUNK_CRLF:
			if (p[i++] == '\n') {
				c->state = CS_CHUNK_SIZE;
				c->chunk = 0;
			}
			break;
		case CS_TRAILER:
			if (p[i] == '\n') {
				if (c->linelen == 0) {
					return i + 1 == n ? 1 : -1;
				}
				c->linelen = 0;
			} else if (p[i] != '\r') {
				c->linelen++;
			}
			i++;
			break;
		default: return -1;
		}
	}
	if (c->state == CS_BODY_LEN && c->left == 0)
		return 1;
	return 0;
}

static void
conn_read(struct worker *w, struct conn *c)
{
	ssize_t n;
	int r;

	if (c->state == CS_IDLE || c->state == CS_SENDING) {
		/* Unsolicited data or EOF on an idle keep-alive connection. */
		char tmp[256];

		n = read(c->fd, tmp, sizeof(tmp));
		if (n <= 0 && !(n < 0 && errno == EAGAIN))
			conn_fail(w, c);
		return;
	}
	if (c->state == CS_HEADERS) {
		char *eoh;

		n = read(c->fd, c->buf + c->blen, BUF_SIZE - c->blen - 1);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			conn_fail(w, c);
			return;
		}
		c->blen += (size_t)n;
		c->buf[c->blen] = '\0';
		eoh = memmem(c->buf, c->blen, "\r\n\r\n", 4);
		if (!eoh) {
			if (c->blen > HDR_MAX)
				conn_fail(w, c);
			return;
		}
		c->status = parse_headers(w, c, (size_t)(eoh + 4 - c->buf));
		if (c->status < 0) {
			conn_fail(w, c);
			return;
		}
		{
			size_t hl = (size_t)(eoh + 4 - c->buf);
			size_t rest = c->blen - hl;

			c->blen = 0;
			if (c->state == CS_NOBODY) {
				if (rest) {
					conn_fail(w, c);
					return;
				}
				response_done(w, c);
				return;
			}
			r = rest ? consume_body(w, c, eoh + 4, rest)
			         : (c->state == CS_BODY_LEN && c->left == 0);
		}
		goto judge;
	}
	/*
	 * Body bytes go to the worker's scratch buffer. A full read means more
	 * is probably queued, so read again before going back to epoll.
	 */
	for (int i = 0; i < 64; i++) {
		n = read(c->fd, w->scratch, SCRATCH_SIZE);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == 0 && c->state == CS_BODY_EOF) {
			c->keepalive = 0;
			response_done(w, c);
			return;
		}
		if (n <= 0) {
			conn_fail(w, c);
			return;
		}
		r = consume_body(w, c, w->scratch, (size_t)n);
		if (r != 0 || n < SCRATCH_SIZE)
			break;
	}
judge:
	if (r < 0) {
		conn_fail(w, c);
		return;
	}
	if (r == 1)
		response_done(w, c);
}

static void
conn_event(struct worker *w, struct conn *c, uint32_t events)
{
	if (c->state == CS_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
		    err) {
			conn_fail(w, c);
			return;
		}
		c->state = CS_SENDING;
		want_events(w, c, EPOLLIN);
		conn_send(w, c);
		return;
	}
	if ((events & EPOLLOUT) && c->state == CS_SENDING) {
		want_events(w, c, EPOLLIN);
		conn_send(w, c);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		conn_read(w, c);
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[64];

	for (int i = 0; i < w->nconns; i++)
		conn_next(w, &w->conns[i]);
	while (w->active > 0) {
		uint64_t t = now_ns();
		int n, ms;

		if (t >= g.deadline ||
		    __atomic_load_n(&g.abort, __ATOMIC_RELAXED))
			break;
		ms = (int)((g.deadline - t) / 1000000) + 1;
		if (ms > 50)
			ms = 50;
		n = epoll_wait(w->ep, evs, 64, ms);
		for (int i = 0; i < n; i++)
			conn_event(w, evs[i].data.ptr, evs[i].events);
	}
	w->t_end = now_ns();
	/* Abandon what is still in flight: counted as not completed. */
	for (int i = 0; i < w->nconns; i++) {
		struct conn *c = &w->conns[i];

		if (c->state != CS_DONE) {
			if (g.mode == MODE_STORM) {
				c->failed = 1;
				w->st.timeouts++;
			}
			conn_retire(w, c);
		}
	}
	return NULL;
}

/*
 * Runs one batch of connections to completion or deadline. Returns the
 * elapsed wall time in ns, merges stats into *st and counts failed clients.
 */
static uint64_t
run_batch(struct stats *st, int *failed_clients, uint64_t *storm_end)
{
	struct worker *ws;
	struct conn *cs;
	char *bufs;
	int nt = g.threads < g.conns ? g.threads : g.conns;
	uint64_t start, end = 0;

	ws = calloc((size_t)nt, sizeof(*ws));
	cs = calloc((size_t)g.conns, sizeof(*cs));
	bufs = malloc((size_t)g.conns * BUF_SIZE);
	if (!ws || !cs || !bufs) {
		fprintf(stderr, "loadgen: out of memory\n");
		exit(1);
	}
	for (int i = 0; i < g.conns; i++) {
		cs[i].fd = -1;
		cs[i].state = CS_IDLE;
		cs[i].buf = bufs + (size_t)i * BUF_SIZE;
		cs[i].step = g.mode == MODE_STORM ? 0 : i % g.nreqs;
	}
	for (int t = 0, first = 0; t < nt; t++) {
		int n = g.conns / nt + (t < g.conns % nt);

		ws[t].conns = cs + first;
		ws[t].nconns = n;
		ws[t].active = n;
		first += n;
		ws[t].ep = epoll_create1(EPOLL_CLOEXEC);
		if (ws[t].ep < 0) {
			perror("loadgen: epoll_create1");
			exit(1);
		}
	}
	start = now_ns();
	for (int t = 0; t < nt; t++)
		if (pthread_create(&ws[t].tid, NULL, worker_run, &ws[t]) != 0) {
			fprintf(stderr, "loadgen: pthread_create failed\n");
			exit(1);
		}
	for (int t = 0; t < nt; t++) {
		pthread_join(ws[t].tid, NULL);
		stats_add(st, &ws[t].st);
		if (ws[t].t_end > end)
			end = ws[t].t_end;
		close(ws[t].ep);
	}
	if (storm_end) {
		uint64_t last = start;

		for (int i = 0; i < g.conns; i++)
			if (cs[i].t_done > last)
				last = cs[i].t_done;
		*storm_end = last;
	}
	for (int i = 0; i < g.conns; i++)
		if (cs[i].failed)
			(*failed_clients)++;
	free(bufs);
	free(cs);
	free(ws);
	return end - start;
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
print_common(const struct stats *st)
{
	printf(" requests=%llu ok=%llu s3xx=%llu s4xx=%llu s5xx=%llu "
	       "conn_err=%llu"
	       " timeouts=%llu errors=%llu first_bad_status=%d connects=%llu "
	       "bytes=%llu clen=%llu",
	       (unsigned long long)st->responses, (unsigned long long)st->s2xx,
	       (unsigned long long)st->s3xx, (unsigned long long)st->s4xx,
	       (unsigned long long)st->s5xx, (unsigned long long)st->conn_err,
	       (unsigned long long)st->timeouts,
	       (unsigned long long)(st->responses - st->s2xx + st->conn_err +
	                            st->timeouts),
	       st->first_bad_status, (unsigned long long)st->connects,
	       (unsigned long long)st->bytes, (unsigned long long)st->clen);
}

static int
run_load(void)
{
	static struct stats st;
	int failed = 0;
	uint64_t ns;
	double secs, cpu0 = cpu_seconds();

	g.deadline = now_ns() + (uint64_t)(g.duration * 1e9);
	ns = run_batch(&st, &failed, NULL);
	secs = (double)ns / 1e9;
	printf("mode=load target=%s method=%s paths=%d conns=%d threads=%d"
	       " elapsed_s=%.3f rps=%.1f p50_us=%llu p90_us=%llu p99_us=%llu "
	       "max_us=%llu"
	       " mbps=%.1f client_cpu_s=%.2f",
	       g.label, g.reqs[0].method, g.nreqs, g.conns, g.threads, secs,
	       secs > 0 ? (double)st.responses / secs : 0.0,
	       (unsigned long long)hist_quantile(st.hist, st.responses, 0.50),
	       (unsigned long long)hist_quantile(st.hist, st.responses, 0.90),
	       (unsigned long long)hist_quantile(st.hist, st.responses, 0.99),
	       (unsigned long long)st.lat_max,
	       secs > 0 ? (double)st.bytes / secs / 1e6 : 0.0,
	       cpu_seconds() - cpu0);
	print_common(&st);
	printf("\n");
	return 0;
}

static int
run_storm(void)
{
	static struct stats st;
	double sum = 0, min = 0, max = 0, cpu0 = cpu_seconds();
	int failed = 0, done = 0;

	for (int r = 0; r < g.rounds; r++) {
		uint64_t start = now_ns(), end = 0;
		double ms;

		g.deadline = start + (uint64_t)(g.duration * 1e9);
		run_batch(&st, &failed, &end);
		ms = (double)(end - start) / 1e6;
		sum += ms;
		if (r == 0 || ms < min)
			min = ms;
		if (ms > max)
			max = ms;
		done++;
		if (__atomic_load_n(&g.abort, __ATOMIC_RELAXED))
			break;
	}
	printf("mode=storm target=%s clients=%d threads=%d reqs_per_pull=%d "
	       "rounds=%d"
	       " mean_ms=%.1f min_ms=%.1f max_ms=%.1f failed_pulls=%d"
	       " p50_us=%llu p99_us=%llu client_cpu_s=%.2f",
	       g.label, g.conns, g.threads, g.nreqs, done,
	       done ? sum / done : 0.0, min, max, failed,
	       (unsigned long long)hist_quantile(st.hist, st.responses, 0.50),
	       (unsigned long long)hist_quantile(st.hist, st.responses, 0.99),
	       cpu_seconds() - cpu0);
	print_common(&st);
	printf("\n");
	return 0;
}

static int
add_path(const char *arg)
{
	const char *method = g.method, *path = arg;
	char mbuf[16];
	struct req *rq;
	size_t cap;
	int n;

	if (g.nreqs >= MAX_PATHS) {
		fprintf(stderr, "loadgen: too many paths (max %d)\n",
		        MAX_PATHS);
		return -1;
	}
	if (arg[0] != '/') {
		const char *colon = strchr(arg, ':');

		if (!colon || colon - arg >= (long)sizeof(mbuf) ||
		    colon[1] != '/') {
			fprintf(stderr, "loadgen: bad path '%s'\n", arg);
			return -1;
		}
		memcpy(mbuf, arg, (size_t)(colon - arg));
		mbuf[colon - arg] = '\0';
		method = mbuf;
		path = colon + 1;
	}
	rq = &g.reqs[g.nreqs];
	cap = strlen(path) + strlen(method) + strlen(g.hostport) + 128;
	for (int i = 0; i < g.nheaders; i++)
		cap += strlen(g.headers[i]) + 2;
	rq->text = malloc(cap);
	rq->path = strdup(path);
	if (!rq->text || !rq->path)
		return -1;
	n = snprintf(
	        rq->text, cap,
	        "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: berth-loadgen\r\n",
	        method, path, g.hostport);
	for (int i = 0; i < g.nheaders; i++)
		n += snprintf(rq->text + n, cap - (size_t)n, "%s\r\n",
		              g.headers[i]);
	n += snprintf(rq->text + n, cap - (size_t)n, "\r\n");
	rq->len = (size_t)n;
	rq->head = strcmp(method, "HEAD") == 0;
	snprintf(rq->method, sizeof(rq->method), "%s", method);
	g.nreqs++;
	return 0;
}

static int
add_paths_file(const char *file)
{
	char line[4096];
	FILE *f = fopen(file, "r");
	int lines = 0;

	if (!f) {
		perror(file);
		return -1;
	}
	while (lines++ < 100000 && fgets(line, sizeof(line), f)) {
		size_t n = strcspn(line, "\r\n");

		line[n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		if (add_path(line) < 0) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr,
	        "usage: loadgen load|storm [options] [METHOD:]PATH...\n"
	        "  -a HOST:PORT  server (default 127.0.0.1:5000)\n"
	        "  -c N          connections (load) or clients (storm), "
	        "default 64\n"
	        "  -t N          worker threads, default 2\n"
	        "  -d SEC        duration (load) or per-round timeout (storm), "
	        "default 10\n"
	        "  -n N          max requests (load), default 100000000\n"
	        "  -r N          rounds (storm), default 3\n"
	        "  -m METHOD     default method, default GET\n"
	        "  -H 'K: V'     extra request header (repeatable)\n"
	        "  -f FILE       read paths from FILE, one per line\n"
	        "  -e N          stop after N errors, default 1000\n"
	        "  -l LABEL      label printed as target=LABEL\n");
}

static int
parse_addr(const char *s)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t hl;

	if (!colon || (hl = (size_t)(colon - s)) >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(&g.addr, 0, sizeof(g.addr));
	g.addr.sin_family = AF_INET;
	g.addr.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &g.addr.sin_addr) != 1)
		return -1;
	snprintf(g.hostport, sizeof(g.hostport), "%s", s);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *files[8];
	int nfiles = 0, opt;

	if (argc < 2) {
		usage();
		return 2;
	}
	if (strcmp(argv[1], "load") == 0) {
		g.mode = MODE_LOAD;
	} else if (strcmp(argv[1], "storm") == 0) {
		g.mode = MODE_STORM;
		g.conns = 50;
		g.duration = 120;
	} else {
		usage();
		return 2;
	}
	parse_addr("127.0.0.1:5000");
	optind = 2;
	while ((opt = getopt(argc, argv, "a:c:t:d:n:r:m:H:f:e:l:")) != -1) {
		switch (opt) {
		case 'a':
			if (parse_addr(optarg) < 0) {
				fprintf(stderr, "loadgen: bad address '%s'\n",
				        optarg);
				return 2;
			}
			break;
		case 'c': g.conns = atoi(optarg); break;
		case 't': g.threads = atoi(optarg); break;
		case 'd': g.duration = atof(optarg); break;
		case 'n': g.max_requests = strtoull(optarg, NULL, 10); break;
		case 'r': g.rounds = atoi(optarg); break;
		case 'm': g.method = optarg; break;
		case 'e': g.max_errors = strtoull(optarg, NULL, 10); break;
		case 'l': g.label = optarg; break;
		case 'H':
			if (g.nheaders >= MAX_HEADERS)
				return 2;
			g.headers[g.nheaders++] = optarg;
			break;
		case 'f':
			if (nfiles >= 8)
				return 2;
			files[nfiles++] = optarg;
			break;
		default: usage(); return 2;
		}
	}
	if (g.conns < 1 || g.conns > MAX_CONNS || g.threads < 1 ||
	    g.threads > MAX_THREADS || g.duration <= 0 || g.duration > 86400 ||
	    g.rounds < 1 || g.rounds > 1000 || g.max_requests < 1) {
		fprintf(stderr, "loadgen: option out of range\n");
		return 2;
	}
	for (int i = optind; i < argc; i++)
		if (add_path(argv[i]) < 0)
			return 2;
	for (int i = 0; i < nfiles; i++)
		if (add_paths_file(files[i]) < 0)
			return 2;
	if (g.nreqs == 0) {
		usage();
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	return g.mode == MODE_LOAD ? run_load() : run_storm();
}
