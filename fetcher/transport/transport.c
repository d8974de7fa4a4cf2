/* SPDX-License-Identifier: MIT */
/*
 * libcurl multi-socket transport, driven by the daemon's epoll loop through
 * an inner epoll fd. A fixed table of fetch slots; at most max_active of
 * them hold a curl transfer (from a pool of reused easy handles, so
 * connections are reused); the rest wait for a transfer or a backoff.
 */
#include "transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include <curl/curl.h>

#include "lr-limits.h"
#include "lr-log.h"
#include "lr-util.h"

struct slot {
	int used, active;
	int background; /* starts only when no other fetch waits (prefetch) */
	int local;      /* this attempt reads the local directory */
	int local_done; /* the local directory was asked (hit or miss) */
	uint64_t seq;   /* FIFO order among waiting fetches */
	char name[LR_NAME_MAX];
	size_t max;
	lr_fetch_check_fn check;
	lr_fetch_done_fn done;
	void *ctx;
	unsigned attempts, mirror, tried; /* tried: mirrors tried this round */
	int pinned;     /* this mirror only (lr_transport_fetch_from) */
	int once;	/* one attempt, failures quiet (lr_transport_fetch_once) */
	uint64_t due_ms;
	CURL *easy;
	uint8_t *buf;
	size_t len;
	int overflow;
	int curlcode;  /* of the last transfer, for the log */
	long status;   /* its HTTP status (0: none), for the log */
	char *redirect; /* a redirect within the mirror's origin to follow */
	unsigned hops;  /* redirects followed by this attempt */
	/* Ended, finished by run(): a file:// read (done at start()), or a
	 * background transfer whose check and done wait for their turn. */
	int ended_err;
	int ended;
};

struct lr_transport {
	CURLM *multi;
	/* TLS sessions, outside the multi handle so that they outlive
	 * lr_transport_reset: the worker's first connection resumes the
	 * session of the supervisor's manifest fetch instead of a full
	 * handshake (certificate chain checked again) on the way to the
	 * kernel's first READ. NULL: not shared (each multi keeps its own). */
	CURLSH *share;
	int epfd;
	int64_t timer_due_ms; /* curl's timer, -1: none */
	char *mirrors[LR_MIRRORS_MAX];
	/* file:// mirrors are read with openat() from a directory fd opened
	 * at start: a path would break when the hook moves the source mount
	 * into the new root, and after switch_root. -1 for other schemes. */
	int dirfd[LR_MIRRORS_MAX];
	/* Failures in a row per mirror: the first is logged, the rest only
	 * counted until the mirror answers again (an outage would otherwise
	 * log every attempt of every fetch, and /dev/kmsg's rate limit would
	 * drop the lines that matter). */
	uint64_t fails[LR_MIRRORS_MAX];
	unsigned nmirrors, preferred, nended;
	/* A directory laid out like a mirror, asked before any mirror for
	 * every object but the manifest (lr_transport_set_local); -1: none. */
	int localfd;
	char local_prefix[16]; /* only names starting with this */
	size_t local_plen;
	struct curl_slist *resolve;
	struct curl_blob ca;
	int have_ca, insecure;
	unsigned timeout_ms, connect_timeout_ms, attempts, backoff_ms, max_active;
	struct slot slots[LR_FETCH_SLOTS];
	CURL *pool[LR_XFER_ACTIVE_MAX];
	unsigned npool, nactive, nused;
	unsigned nbg; /* background fetches pending */
	uint64_t seq;
	uint32_t rng;
	struct lr_transport_stats st;
	char last_error[LR_URL_MAX + LR_NAME_MAX + 64]; /* the last failed transfer */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int lr_transport_errno(int curlcode, long status, const char *scheme)
{
	switch ((CURLcode)curlcode) {
	case CURLE_OK:
		break;
	case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY: return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM: return -EKEYREJECTED;
	case CURLE_SSL_CONNECT_ERROR: return -ECONNABORTED;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING: return -ECONNRESET;
	case CURLE_PARTIAL_FILE: return -EPIPE;
	case CURLE_WRITE_ERROR: return -EFBIG; /* only our size limit aborts writes */
	case CURLE_OUT_OF_MEMORY: return -ENOMEM;
	/* Mirrors' schemes are checked when the transport is made, so here
	 * curl means an answer in no protocol it speaks ("HTTP/0.9": bytes
	 * that are not an HTTP response). A bad answer from this mirror,
	 * this time: retried, never a configuration error. */
	case CURLE_UNSUPPORTED_PROTOCOL: return -EPROTO;
	case CURLE_URL_MALFORMAT: return -EINVAL;
	case CURLE_FILE_COULDNT_READ_FILE:
	case CURLE_TFTP_NOTFOUND:
	case CURLE_REMOTE_FILE_NOT_FOUND: return -ENOENT;
	case CURLE_TFTP_PERM:
	case CURLE_REMOTE_ACCESS_DENIED: return -EACCES;
	case CURLE_TOO_MANY_REDIRECTS: return -ELOOP;
	default: return -EIO;
	}
	if (scheme && strncmp(scheme, "http", 4) == 0) {
		if (status == 200)
			return 0;
		if (status == 404 || status == 410)
			return -ENOENT;
		if (status == 401 || status == 403)
			return -EACCES;
		if (status == 416)
			return -ERANGE;
		if (status == 408 || status == 429 || status >= 500)
			return -EAGAIN;
		return -EPROTO; /* 1xx/2xx other than 200 (206 without a Range), 3xx left */
	}
	return 0;
}

int lr_transport_retryable(int err)
{
	/* Configuration errors stay errors on every mirror and attempt. */
	return err != -EINVAL && err != -EPROTONOSUPPORT && err != -ENOMEM;
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct lr_transport *t = userp;
	struct epoll_event ev = { .data.fd = s };

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(t->epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (epoll_ctl(t->epfd, socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) < 0) {
		/* curl may hand us a reused descriptor number: the other op. */
		if (epoll_ctl(t->epfd, socketp ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, s, &ev) < 0)
			return log_error_errno(errno, "epoll_ctl for curl socket %d", s), -1;
	}
	if (!socketp)
		curl_multi_assign(t->multi, s, t); /* any non-NULL marks "known" */
	return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct lr_transport *t = userp;

	(void)m;
	t->timer_due_ms = timeout_ms < 0 ? -1 : (int64_t)(now_ms() + (uint64_t)timeout_ms);
	return 0;
}

static size_t write_cb(char *p, size_t size, size_t n, void *userp)
{
	struct slot *s = userp;
	size_t len = size * n;

	if (len > s->max - s->len) {
		s->overflow = 1;
		return 0; /* CURLE_WRITE_ERROR: more than the object may be */
	}
	memcpy(s->buf + s->len, p, len);
	s->len += len;
	return len;
}

/*
 * Resolve a mirror's host now and pin the answer (CURLOPT_RESOLVE). After
 * switch_root our root directory is the deleted initramfs: /etc/hosts and
 * /etc/resolv.conf are gone for us, so a lookup then would fail. Hosts the
 * caller pinned already, IP literals and file:// need nothing.
 */
static void pin_host(struct lr_transport *t, const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *scheme = NULL;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	char entry[512], addr[INET6_ADDRSTRLEN + 2];
	unsigned char buf[sizeof(struct in6_addr)];

	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto out;
	if (strcmp(scheme, "file") == 0 || host[0] == '[' || inet_pton(AF_INET, host, buf) == 1)
		goto out;
	int n = snprintf(entry, sizeof(entry), "%s:%s:", host, port);
	if (n <= 0 || (size_t)n >= sizeof(entry) - 64)
		goto out; /* an absurd host name: leave it to curl */
	for (struct curl_slist *l = t->resolve; l; l = l->next)
		if (strncmp(l->data, entry, (size_t)n) == 0 || (l->data[0] == '+' &&
								 strncmp(l->data + 1, entry, (size_t)n) == 0))
			goto out;
	if (getaddrinfo(host, port, &hints, &res) != 0 || !res) {
		log_warning("cannot resolve %s now; it will not resolve after switch_root either "
			    "(use --resolve)", host);
		goto out;
	}
	for (struct addrinfo *a = res; a && n < (int)sizeof(entry) - 64; a = a->ai_next) {
		const void *ip = a->ai_family == AF_INET
					 ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
					 : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
		if (!inet_ntop(a->ai_family, ip, addr + 1, INET6_ADDRSTRLEN))
			continue;
		if (a->ai_family == AF_INET6) {
			addr[0] = '[';
			strcat(addr, "]");
		}
		n += snprintf(entry + n, sizeof(entry) - (size_t)n, "%s%s",
			      entry[n - 1] == ':' ? "" : ",", a->ai_family == AF_INET6 ? addr : addr + 1);
	}
	if (entry[n - 1] != ':') {
		struct curl_slist *l = curl_slist_append(t->resolve, entry);
		if (l) {
			t->resolve = l;
			log_info("pinned %s", entry);
		}
	}
out:
	if (res)
		freeaddrinfo(res);
	curl_free(host);
	curl_free(port);
	curl_free(scheme);
	curl_url_cleanup(u);
}

/* The multi handle's wiring to our epoll fd and timer, and its bounds. */
static void multi_setup(struct lr_transport *t)
{
	t->timer_due_ms = -1;
	t->rng = (uint32_t)now_ms() ^ (uint32_t)getpid() * 2654435761u;
	curl_multi_setopt(t->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(t->multi, CURLMOPT_SOCKETDATA, t);
	curl_multi_setopt(t->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(t->multi, CURLMOPT_TIMERDATA, t);
	curl_multi_setopt(t->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)t->max_active);
	curl_multi_setopt(t->multi, CURLMOPT_MAXCONNECTS, (long)t->max_active * 2);
}

static int known_scheme(const char *url)
{
	static const char *const schemes[] = { "http://", "https://", "tftp://", "file://" };

	for (size_t i = 0; i < LR_ARRAY_SIZE(schemes); i++)
		if (strncasecmp(url, schemes[i], strlen(schemes[i])) == 0)
			return 1;
	return 0;
}

int lr_transport_new(struct lr_transport **tp, const struct lr_transport_opts *o)
{
	struct lr_transport *t;

	if (!o->nmirrors || o->nmirrors > LR_MIRRORS_MAX)
		return -EINVAL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -EIO;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (unsigned i = 0; i < LR_MIRRORS_MAX; i++)
		t->dirfd[i] = -1;
	t->localfd = -1;
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->multi = curl_multi_init();
	if (t->epfd < 0 || !t->multi) {
		lr_transport_free(t);
		return -ENOMEM;
	}
	/* One thread: no lock functions. A share that fails only costs the
	 * resumption across a reset. */
	t->share = curl_share_init();
	if (t->share &&
	    curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
		curl_share_cleanup(t->share);
		t->share = NULL;
	}
	for (size_t i = 0; i < o->nmirrors; i++) {
		size_t l = strlen(o->mirrors[i]);
		if (l == 0 || l >= LR_URL_MAX) {
			lr_transport_free(t);
			return -EINVAL;
		}
		t->mirrors[i] = strdup(o->mirrors[i]);
		if (!t->mirrors[i]) {
			lr_transport_free(t);
			return -ENOMEM;
		}
		while (l > 0 && t->mirrors[i][l - 1] == '/')
			t->mirrors[i][--l] = '\0';
		t->dirfd[i] = -1;
		t->nmirrors++;
		if (!known_scheme(t->mirrors[i])) {
			log_error("mirror %s: not an http://, https://, tftp:// or file:// URL",
				  t->mirrors[i]);
			lr_transport_free(t);
			return -EPROTONOSUPPORT;
		}
		if (strncmp(t->mirrors[i], "file://", 7) == 0) {
			const char *path = t->mirrors[i] + 7;
			t->dirfd[i] = open(*path ? path : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (t->dirfd[i] < 0) {
				int r = log_error_errno(errno, "file mirror %s", t->mirrors[i]);
				lr_transport_free(t);
				return r;
			}
		}
	}
	for (size_t i = 0; i < o->nresolve; i++) {
		struct curl_slist *n = curl_slist_append(t->resolve, o->resolve[i]);
		if (!n) {
			lr_transport_free(t);
			return -ENOMEM;
		}
		t->resolve = n;
	}
	for (unsigned i = 0; i < t->nmirrors; i++)
		pin_host(t, t->mirrors[i]);
	if (o->ca_pem && o->ca_len) {
		t->ca.data = (void *)o->ca_pem;
		t->ca.len = o->ca_len;
		t->ca.flags = CURL_BLOB_COPY;
		t->have_ca = 1;
	}
	t->insecure = o->insecure;
	t->timeout_ms = o->timeout_ms ? o->timeout_ms : 10000;
	t->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 5000;
	t->attempts = o->attempts ? o->attempts : 3 * t->nmirrors;
	t->backoff_ms = o->backoff_ms ? o->backoff_ms : 200;
	t->max_active = o->max_active ? o->max_active : LR_XFER_ACTIVE_DEFAULT;
	if (t->max_active > LR_XFER_ACTIVE_MAX)
		t->max_active = LR_XFER_ACTIVE_MAX;
	multi_setup(t);
	*tp = t;
	return 0;
}

int lr_transport_reset(struct lr_transport *t)
{
	for (unsigned i = 0; i < LR_FETCH_SLOTS; i++) {
		struct slot *s = &t->slots[i];
		if (s->used && s->easy) {
			curl_multi_remove_handle(t->multi, s->easy);
			curl_easy_cleanup(s->easy);
		}
		if (s->used) {
			free(s->buf);
			free(s->redirect);
		}
		memset(s, 0, sizeof(*s));
	}
	for (unsigned i = 0; i < t->npool; i++)
		curl_easy_cleanup(t->pool[i]);
	t->npool = t->nactive = t->nused = t->nbg = 0;
	curl_multi_cleanup(t->multi);
	close(t->epfd);
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->multi = curl_multi_init();
	if (t->epfd < 0 || !t->multi)
		return -ENOMEM;
	multi_setup(t);
	return 0;
}

void lr_transport_free(struct lr_transport *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < LR_FETCH_SLOTS; i++) {
		struct slot *s = &t->slots[i];
		if (s->active) {
			if (s->easy) {
				curl_multi_remove_handle(t->multi, s->easy);
				curl_easy_cleanup(s->easy);
			}
			free(s->buf);
		}
		if (s->used)
			free(s->redirect);
	}
	for (unsigned i = 0; i < t->npool; i++)
		curl_easy_cleanup(t->pool[i]);
	if (t->multi)
		curl_multi_cleanup(t->multi);
	if (t->share)
		curl_share_cleanup(t->share); /* after every easy handle using it */
	if (t->epfd >= 0)
		close(t->epfd);
	for (unsigned i = 0; i < t->nmirrors; i++) {
		free(t->mirrors[i]);
		if (t->dirfd[i] >= 0)
			close(t->dirfd[i]);
	}
	if (t->localfd >= 0)
		close(t->localfd);
	curl_slist_free_all(t->resolve);
	free(t);
}

int lr_transport_fd(const struct lr_transport *t)
{
	return t->epfd;
}

unsigned lr_transport_pending(const struct lr_transport *t)
{
	return t->nused;
}

static int queue_at(struct lr_transport *t, const char *name, size_t max, lr_fetch_check_fn check,
		    lr_fetch_done_fn done, void *ctx, int background, int mirror, int once)
{
	size_t l = strlen(name);

	if (l == 0 || l >= LR_NAME_MAX || name[0] == '/' || strstr(name, "..") || max == 0)
		return -EINVAL;
	for (unsigned i = 0; i < LR_FETCH_SLOTS; i++) {
		struct slot *s = &t->slots[i];
		if (s->used)
			continue;
		memset(s, 0, sizeof(*s));
		s->used = 1;
		s->seq = t->seq++;
		memcpy(s->name, name, l + 1);
		s->max = max;
		s->check = check;
		s->done = done;
		s->ctx = ctx;
		s->mirror = mirror >= 0 ? (unsigned)mirror : t->preferred;
		s->pinned = mirror >= 0;
		s->due_ms = 0;
		s->background = background;
		s->once = once;
		t->nused++;
		return 0;
	}
	return -EBUSY;
}

static int queue(struct lr_transport *t, const char *name, size_t max, lr_fetch_check_fn check,
		 lr_fetch_done_fn done, void *ctx, int background)
{
	return queue_at(t, name, max, check, done, ctx, background, -1, 0);
}

int lr_transport_fetch_from(struct lr_transport *t, unsigned mirror, const char *name, size_t max,
			    lr_fetch_check_fn check, lr_fetch_done_fn done, void *ctx)
{
	if (mirror >= t->nmirrors)
		return -EINVAL;
	return queue_at(t, name, max, check, done, ctx, 0, (int)mirror, 0);
}

unsigned lr_transport_mirrors(const struct lr_transport *t)
{
	return t->nmirrors;
}

const char *lr_transport_mirror(const struct lr_transport *t, unsigned mirror)
{
	return mirror < t->nmirrors ? t->mirrors[mirror] : NULL;
}

void lr_transport_prefer(struct lr_transport *t, unsigned mirror)
{
	if (mirror < t->nmirrors)
		t->preferred = mirror;
}

int lr_transport_fetch(struct lr_transport *t, const char *name, size_t max,
		       lr_fetch_check_fn check, lr_fetch_done_fn done, void *ctx)
{
	return queue(t, name, max, check, done, ctx, 0);
}

int lr_transport_fetch_once(struct lr_transport *t, const char *name, size_t max,
			    lr_fetch_check_fn check, lr_fetch_done_fn done, void *ctx)
{
	return queue_at(t, name, max, check, done, ctx, 0, -1, 1);
}

int lr_transport_set_local(struct lr_transport *t, int dirfd, const char *prefix)
{
	size_t l = strlen(prefix);

	if (l >= sizeof(t->local_prefix))
		return -EINVAL;
	if (t->localfd >= 0)
		close(t->localfd);
	t->localfd = dirfd;
	memcpy(t->local_prefix, prefix, l + 1);
	t->local_plen = l;
	return 0;
}

int lr_transport_fetch_background(struct lr_transport *t, const char *name, size_t max,
				  lr_fetch_check_fn check, lr_fetch_done_fn done, void *ctx)
{
	if (t->nbg >= lr_transport_background_max(t))
		return -EBUSY;
	int r = queue(t, name, max, check, done, ctx, 1);
	if (r == 0)
		t->nbg++;
	return r;
}

unsigned lr_transport_background_max(const struct lr_transport *t)
{
	/* Connections always left to demand fetches. */
	return t->max_active > LR_XFER_DEMAND_RESERVED ? t->max_active - LR_XFER_DEMAND_RESERVED
						       : 1;
}

static CURL *get_easy(struct lr_transport *t)
{
	CURL *e;

	if (t->npool > 0)
		return t->pool[--t->npool];
	e = curl_easy_init();
	if (!e)
		return NULL;
	/* Options every transfer shares; per-fetch ones are set in start(). */
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)t->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,tftp,file");
	/* Redirects are followed by redirected(), within the mirror's own
	 * scheme, host and port only: curl would follow one from https to
	 * plain http, or to a host that was never pinned (and that cannot be
	 * resolved after switch_root). */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	/* No proxy from the environment: init's environment is not
	 * configuration, and a proxy would apply silently. */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "lazyrootd/0.1");
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	/* A chunk in one receive buffer rather than four (curl's default is
	 * 16 KiB): fewer recv() calls and write callbacks per chunk, which
	 * counts where the CPU is slow. */
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, LR_XFER_BUFFER_BYTES);
	/* Never forget an answer: after switch_root we can look nothing up. */
	curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, -1L);
	/* 1468 fills a 1500-byte MTU: ~3x faster than 512-byte blocks. */
	curl_easy_setopt(e, CURLOPT_TFTP_BLKSIZE, 1468L);
	if (t->resolve)
		curl_easy_setopt(e, CURLOPT_RESOLVE, t->resolve);
	if (t->share)
		curl_easy_setopt(e, CURLOPT_SHARE, t->share);
	if (t->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (t->have_ca) {
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &t->ca);
	}
	return e;
}

static void put_easy(struct lr_transport *t, CURL *e)
{
	if (t->npool < LR_XFER_ACTIVE_MAX)
		t->pool[t->npool++] = e;
	else
		curl_easy_cleanup(e);
}

/* A local read: done now, reported from run() like any transfer. */
static void start_file(struct lr_transport *t, struct slot *s, int dirfd)
{
	/* Regular files only: a FIFO or a device would block the one thread
	 * (O_NONBLOCK keeps open() itself from blocking), a link could point
	 * anywhere. */
	int fd = openat(dirfd, s->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;

	s->ended_err = 0;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
		errno = EBADMSG;
	}
	if (fd < 0) {
		s->ended_err = errno == ENOENT ? -ENOENT : errno == ELOOP ? -EBADMSG : lr_neg_errno();
	} else {
		for (;;) {
			uint8_t extra;
			ssize_t n = s->len < s->max ? read(fd, s->buf + s->len, s->max - s->len)
						    : read(fd, &extra, 1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				s->ended_err = lr_neg_errno();
				break;
			}
			if (n == 0)
				break;
			if (s->len == s->max) {
				s->overflow = 1;
				s->ended_err = -EFBIG;
				break;
			}
			s->len += (size_t)n;
		}
		close(fd);
	}
	s->ended = 1;
	t->nended++;
}

static int start(struct lr_transport *t, struct slot *s)
{
	char url[LR_URL_MAX + LR_NAME_MAX + 2];

	/* Page aligned: a consumer that writes the body with direct I/O (a
	 * cache object) can take it as it is, without a copy. */
	if (posix_memalign((void **)&s->buf, LR_PAGE_SIZE, s->max) != 0) {
		s->buf = NULL;
		return -ENOMEM;
	}
	s->len = 0;
	s->overflow = 0;
	if (t->localfd >= 0 && !s->local_done && strncmp(s->name, t->local_prefix, t->local_plen) == 0) {
		s->local = s->local_done = 1;
		s->active = 1;
		t->nactive++;
		start_file(t, s, t->localfd);
		return 0;
	}
	if (t->dirfd[s->mirror] >= 0) {
		s->active = 1;
		t->nactive++;
		t->st.requests++;
		if (s->attempts > 0)
			t->st.retries++;
		start_file(t, s, t->dirfd[s->mirror]);
		return 0;
	}
	s->easy = get_easy(t);
	if (!s->easy) {
		free(s->buf);
		s->buf = NULL;
		return -ENOMEM;
	}
	if (s->redirect)
		curl_easy_setopt(s->easy, CURLOPT_URL, s->redirect);
	else {
		snprintf(url, sizeof(url), "%s/%s", t->mirrors[s->mirror], s->name);
		curl_easy_setopt(s->easy, CURLOPT_URL, url);
	}
	curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
	if (curl_multi_add_handle(t->multi, s->easy) != CURLM_OK) {
		put_easy(t, s->easy);
		free(s->buf);
		s->buf = NULL;
		return -EIO;
	}
	s->active = 1;
	t->nactive++;
	t->st.requests++;
	if (s->attempts > 0)
		t->st.retries++;
	return 0;
}

static void forget_redirect(struct slot *s)
{
	free(s->redirect);
	s->redirect = NULL;
	s->hops = 0;
}

static void release(struct lr_transport *t, struct slot *s)
{
	forget_redirect(s);
	s->used = 0;
	t->nused--;
	if (s->background)
		t->nbg--;
}

static unsigned jitter(struct lr_transport *t, unsigned ms)
{
	t->rng = t->rng * 1103515245u + 12345u;
	/* +-25% */
	return ms - ms / 4 + (unsigned)((t->rng >> 8) % (ms / 2 + 1));
}

/* A transfer ended (or could not start): accept, retry elsewhere, or fail. */
/* The slot's transfer ends (its buffer stays with the caller). */
static void stop_transfer(struct lr_transport *t, struct slot *s)
{
	if (s->active) {
		if (s->easy) {
			curl_multi_remove_handle(t->multi, s->easy);
			put_easy(t, s->easy);
			s->easy = NULL;
		}
		s->active = 0;
		t->nactive--;
	}
	s->buf = NULL;
}

static void finish(struct lr_transport *t, struct slot *s, int err)
{
	uint8_t *buf = s->buf;
	size_t len = s->len;

	stop_transfer(t, s);
	if (s->local) {
		/* The local directory: a hit is verified like any answer; a
		 * miss or a bad copy sends the fetch to the mirrors at once,
		 * costing no attempt, and a bad copy is removed. */
		s->local = 0;
		if (!err && s->check && s->check(buf, len, s->ctx) < 0)
			err = -EBADMSG;
		if (!err) {
			lr_fetch_done_fn done = s->done;
			void *ctx = s->ctx;
			t->st.local_hits++;
			t->st.local_bytes += len;
			release(t, s);
			done(ctx, 0, buf, len);
			free(buf);
			return;
		}
		free(buf);
		if (err != -ENOENT) {
			log_warning("local copy of %s: %s; removed, fetching it again", s->name,
				    strerror(-err));
			unlinkat(t->localfd, s->name, 0);
		}
		s->due_ms = 0;
		return;
	}
	t->st.bytes += len;
	if (!err && s->check && s->check(buf, len, s->ctx) < 0) {
		t->st.rejected++;
		err = -EBADMSG;
	}
	if (err && s->once) {
		/* A name that may not exist: the caller fetches otherwise.
		 * Neither retried nor held against the mirror. */
		lr_fetch_done_fn done = s->done;
		void *ctx = s->ctx;
		log_debug("fetch %s/%s (once): %s", t->mirrors[s->mirror], s->name, strerror(-err));
		free(buf);
		s->curlcode = 0;
		s->status = 0;
		release(t, s);
		done(ctx, err, NULL, 0);
		return;
	}
	if (!err) {
		lr_fetch_done_fn done = s->done;
		void *ctx = s->ctx;
		/* (one failure alone was logged already, and says it all) */
		if (t->fails[s->mirror] > 1)
			log_notice("mirror %s answers again (after %" PRIu64 " failed attempts)",
				   t->mirrors[s->mirror], t->fails[s->mirror]);
		t->fails[s->mirror] = 0;
		t->preferred = s->mirror;
		release(t, s);
		done(ctx, 0, buf, len);
		free(buf);
		return;
	}
	free(buf);
	/* What failed, where, and how: the URL, an HTTP status, curl's word. */
	char status[32] = "";
	if (s->status >= 300)
		snprintf(status, sizeof(status), "HTTP %ld, ", s->status);
	snprintf(t->last_error, sizeof(t->last_error), "%s/%s: %s%s%s%s", t->mirrors[s->mirror],
		 s->name, status, strerror(-err), s->curlcode ? ": " : "",
		 s->curlcode ? curl_easy_strerror((CURLcode)s->curlcode) : "");
	if (t->fails[s->mirror]++ == 0)
		log_warning("fetch %s (attempt %u of %u; until this mirror answers again, its "
			    "failures are only counted)",
			    t->last_error, s->attempts + 1, t->attempts);
	else
		log_debug("fetch %s (attempt %u of %u)", t->last_error, s->attempts + 1,
			  t->attempts);
	s->curlcode = 0;
	s->status = 0;
	forget_redirect(s);
	s->attempts++;
	/* A pinned fetch gets one mirror's share of the attempts. */
	unsigned limit = s->pinned ? (t->attempts + t->nmirrors - 1) / t->nmirrors : t->attempts;
	if (s->attempts >= limit || !lr_transport_retryable(err)) {
		lr_fetch_done_fn done = s->done;
		void *ctx = s->ctx;
		t->st.failed++;
		release(t, s);
		done(ctx, err, NULL, 0);
		return;
	}
	/* Next mirror at once; after a full round of mirrors, back off. */
	if (!s->pinned)
		s->mirror = (s->mirror + 1) % t->nmirrors;
	s->tried++;
	if (s->tried >= (s->pinned ? 1 : t->nmirrors)) {
		unsigned round = s->pinned ? s->attempts : s->attempts / t->nmirrors;
		unsigned ms = t->backoff_ms << (round > 5 ? 5 : round);
		s->tried = 0;
		s->due_ms = now_ms() + jitter(t, ms > LR_BACKOFF_CAP_MS ? LR_BACKOFF_CAP_MS : ms);
	} else {
		s->due_ms = 0;
	}
}

static void start_waiting(struct lr_transport *t)
{
	uint64_t now = now_ms();

	while (t->nactive < t->max_active) {
		struct slot *best = NULL;
		for (unsigned i = 0; i < LR_FETCH_SLOTS; i++) {
			struct slot *s = &t->slots[i];
			if (!s->used || s->active || s->due_ms > now)
				continue;
			/* Demand first, in FIFO order; background fetches only
			 * on connections demand leaves free (bounded by how many
			 * can be queued: lr_transport_background_max). */
			if (!best || (best->background && !s->background) ||
			    (best->background == s->background && s->seq < best->seq))
				best = s;
		}
		if (!best)
			return;
		int r = start(t, best);
		if (r < 0)
			finish(t, best, r);
	}
}

/* Milliseconds until there is work, 0 now, -1 none. Ended fetches waiting
 * to be finished count only with `ended` (a run whose budget for them is
 * spent cannot take them). */
static int timeout_ms(const struct lr_transport *t, int ended)
{
	uint64_t now = now_ms();
	int64_t due = t->timer_due_ms;

	if (ended && t->nended)
		return 0;
	if (t->nactive < t->max_active)
		for (unsigned i = 0; i < LR_FETCH_SLOTS; i++) {
			const struct slot *s = &t->slots[i];
			if (s->used && !s->active && (due < 0 || (int64_t)s->due_ms < due))
				due = (int64_t)s->due_ms;
		}
	if (due < 0)
		return -1;
	return due <= (int64_t)now ? 0 : (int)(due - (int64_t)now);
}

int lr_transport_timeout(const struct lr_transport *t)
{
	return timeout_ms(t, 1);
}

/* Two URLs with the same scheme, host and port (curl's defaults). */
static int same_origin(const char *a, const char *b)
{
	CURLU *u[2] = { curl_url(), curl_url() };
	char *part[2][3] = { { NULL } };
	static const CURLUPart parts[3] = { CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT };
	const char *url[2] = { a, b };
	int same = u[0] && u[1];

	for (int i = 0; i < 2 && same; i++) {
		same = curl_url_set(u[i], CURLUPART_URL, url[i], 0) == CURLUE_OK;
		for (int p = 0; p < 3 && same; p++)
			same = curl_url_get(u[i], parts[p], &part[i][p],
					    parts[p] == CURLUPART_PORT ? CURLU_DEFAULT_PORT : 0) ==
			       CURLUE_OK;
	}
	for (int p = 0; p < 3 && same; p++)
		same = strcasecmp(part[0][p], part[1][p]) == 0;
	for (int i = 0; i < 2; i++) {
		for (int p = 0; p < 3; p++)
			curl_free(part[i][p]);
		curl_url_cleanup(u[i]);
	}
	return same;
}

/*
 * A 3xx answer: follow it at once (costing no attempt) when it stays on
 * the mirror's scheme, host and port, at most LR_REDIRECTS_MAX times. A
 * redirect elsewhere is refused and counts as this mirror's failure: a
 * downgrade from https to http, or a host never resolved and pinned.
 */
static int redirected(struct lr_transport *t, struct slot *s)
{
	char *loc = NULL;

	curl_easy_getinfo(s->easy, CURLINFO_REDIRECT_URL, &loc);
	if (!loc)
		return 0;
	if (!same_origin(t->mirrors[s->mirror], loc)) {
		log_warning("%s/%s redirects to %s: refused (redirects are followed only within "
			    "the mirror's scheme, host and port)", t->mirrors[s->mirror], s->name,
			    loc);
		t->st.redirects_refused++;
		return 0;
	}
	if (s->hops >= LR_REDIRECTS_MAX || strlen(loc) >= LR_URL_MAX + LR_NAME_MAX) {
		log_warning("%s/%s: more than %u redirects", t->mirrors[s->mirror], s->name,
			    LR_REDIRECTS_MAX);
		return 0;
	}
	char *next = strdup(loc);
	if (!next)
		return 0;
	free(s->redirect);
	s->redirect = next;
	s->hops++;
	t->st.redirects++;
	free(s->buf);
	stop_transfer(t, s);
	s->status = 0;
	s->curlcode = 0;
	s->due_ms = 0; /* start_waiting() starts it again */
	return 1;
}

/* With --verbose: where a transfer's time went, for a boot's timeline
 * (scripts/boot-timeline): waiting for its first byte, or for its body. */
static void log_transfer(CURL *easy)
{
	curl_off_t first = 0, total = 0, bytes = 0, queued = 0, sent = 0;
	long port = 0, fresh = 0;

	if (!lr_log_enabled(LR_LOG_DEBUG))
		return; /* five lookups per transfer for a line nobody gets */
	curl_easy_getinfo(easy, CURLINFO_STARTTRANSFER_TIME_T, &first);
	curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &total);
	curl_easy_getinfo(easy, CURLINFO_SIZE_DOWNLOAD_T, &bytes);
	curl_easy_getinfo(easy, CURLINFO_LOCAL_PORT, &port);
	curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &fresh);
	curl_easy_getinfo(easy, CURLINFO_QUEUE_TIME_T, &queued);
	curl_easy_getinfo(easy, CURLINFO_POSTTRANSFER_TIME_T, &sent);
	log_debug("transfer: %" CURL_FORMAT_CURL_OFF_T " bytes, first byte after %" CURL_FORMAT_CURL_OFF_T
		  " us, done after %" CURL_FORMAT_CURL_OFF_T " us, port %ld%s; queued %" CURL_FORMAT_CURL_OFF_T
		  " us, request sent after %" CURL_FORMAT_CURL_OFF_T " us",
		  bytes, first, total, port, fresh ? " (new connection)" : "", queued, sent);
}

static void check_done(struct lr_transport *t, int *bg_budget)
{
	CURLMsg *m;
	int left;
	struct slot *bg = NULL;

	/* Every ended demand fetch; of the background ones, the oldest only,
	 * one per lr_transport_run() (*bg_budget). Finishing a chunk means
	 * checking its digest and handing it on (a write into the kernel's
	 * object): a few ms of CPU each under emulation. Done for all of a
	 * READ's neighbours in one go, a READ the kernel asked meanwhile
	 * waited for all of them; one per run lets the caller's loop take
	 * it in between. */
	for (unsigned i = 0; i < LR_FETCH_SLOTS && t->nended; i++) {
		struct slot *s = &t->slots[i];
		if (!s->used || !s->active || !s->ended)
			continue;
		if (s->background) {
			if (!bg || s->seq < bg->seq)
				bg = s;
			continue;
		}
		s->ended = 0;
		t->nended--;
		finish(t, s, s->ended_err);
	}
	if (bg && *bg_budget > 0) {
		--*bg_budget;
		bg->ended = 0;
		t->nended--;
		finish(t, bg, bg->ended_err);
	}

	while ((m = curl_multi_info_read(t->multi, &left))) {
		struct slot *s = NULL;
		long status = 0;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		log_transfer(m->easy_handle);
		int err = lr_transport_errno(m->data.result, status, t->mirrors[s->mirror]);
		s->curlcode = m->data.result;
		s->status = status;
		if (s->overflow)
			err = -EFBIG;
		if (m->data.result == CURLE_OK && status >= 300 && status < 400 && redirected(t, s))
			continue;
		if (s->background) {
			/* finished by a later pass or run, after demand */
			s->ended = 1;
			s->ended_err = err;
			t->nended++;
			continue;
		}
		finish(t, s, err);
	}
}

/* curl's timer, when due: 1 if it ran. */
static int run_timer(struct lr_transport *t, int *running)
{
	if (t->timer_due_ms < 0 || t->timer_due_ms > (int64_t)now_ms())
		return 0;
	t->timer_due_ms = -1;
	curl_multi_socket_action(t->multi, CURL_SOCKET_TIMEOUT, 0, running);
	return 1;
}

void lr_transport_run(struct lr_transport *t)
{
	struct epoll_event ev[16];
	int running, n, bg_budget = 1;

	/* Bounded: each pass handles what is ready now; new transfers that
	 * curl wants to drive at once get a second pass, not a loop. */
	for (int pass = 0; pass < 4; pass++) {
		start_waiting(t);
		/* Transfers just started (curl runs them from a timer due now)
		 * send their requests before the bodies already arriving are
		 * read: a READ's request waited 4 ms (median) for its
		 * neighbours' bodies under emulation. */
		int timer = run_timer(t, &running);
		n = epoll_wait(t->epfd, ev, (int)LR_ARRAY_SIZE(ev), 0);
		for (int i = 0; i < n; i++) {
			int flags = 0;
			if (ev[i].events & EPOLLIN)
				flags |= CURL_CSELECT_IN;
			if (ev[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (ev[i].events & (EPOLLERR | EPOLLHUP))
				flags |= CURL_CSELECT_ERR;
			curl_multi_socket_action(t->multi, ev[i].data.fd, flags, &running);
		}
		timer |= run_timer(t, &running);
		check_done(t, &bg_budget);
		/* Background fetches that ended beyond this run's budget
		 * wait for the next run: no more passes for them. */
		if (n <= 0 && !timer && timeout_ms(t, bg_budget > 0) != 0)
			break;
	}
}

const char *lr_transport_last_error(const struct lr_transport *t)
{
	return t->last_error[0] ? t->last_error : NULL;
}

void lr_transport_stats(const struct lr_transport *t, struct lr_transport_stats *s)
{
	*s = t->st;
	s->active = t->nactive;
	s->waiting = t->nused - t->nactive;
}
