/* SPDX-License-Identifier: MIT */
/* The one translation of curl and HTTP/TFTP errors into errno, and the
 * transport against real file:// objects: failover across mirrors,
 * rejected answers, size limits, bounded attempts. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <curl/curl.h>

#include "lr-log.h"
#include "tap.h"
#include "transport.h"

struct result {
	int done, err, order;
	size_t len;
	char data[64];
};

static void on_done(void *ctx, int err, const void *data, size_t len)
{
	struct result *r = ctx;
	static int seq;

	r->done = 1;
	r->order = ++seq;
	r->err = err;
	r->len = len;
	if (data && len < sizeof(r->data))
		memcpy(r->data, data, len);
}

static int reject_bad(const void *data, size_t len, void *ctx)
{
	(void)ctx;
	return len >= 3 && memcmp(data, "bad", 3) == 0 ? -1 : 0;
}

static void pump(struct lr_transport *t, struct result *r)
{
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lr_transport_fd(t) };

	epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev);
	for (int i = 0; i < 2000 && !r->done; i++) {
		int to = lr_transport_timeout(t);
		epoll_wait(ep, &ev, 1, to < 0 || to > 10 ? 10 : to);
		lr_transport_run(t);
	}
	close(ep);
}

static void put(const char *dir, const char *name, const char *text)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
}

int main(void)
{
	char cmd0[200];
	lr_log_setup("test-transport", -1, 0, LR_LOG_ERR);

	is(lr_transport_errno(CURLE_OK, 200, "http://x"), 0, "http 200 is success");
	is(lr_transport_errno(CURLE_OK, 206, "http://x"), -EPROTO, "206 without a Range is an error");
	is(lr_transport_errno(CURLE_OK, 404, "https://x"), -ENOENT, "404 -> ENOENT");
	is(lr_transport_errno(CURLE_OK, 410, "http://x"), -ENOENT, "410 -> ENOENT");
	is(lr_transport_errno(CURLE_OK, 403, "http://x"), -EACCES, "403 -> EACCES");
	is(lr_transport_errno(CURLE_OK, 503, "http://x"), -EAGAIN, "503 -> EAGAIN");
	is(lr_transport_errno(CURLE_OK, 429, "http://x"), -EAGAIN, "429 -> EAGAIN");
	is(lr_transport_errno(CURLE_OK, 416, "http://x"), -ERANGE, "416 -> ERANGE");
	is(lr_transport_errno(CURLE_OK, 301, "http://x"), -EPROTO, "unfollowed redirect -> EPROTO");
	is(lr_transport_errno(CURLE_OK, 0, "tftp://x"), 0, "tftp success has no status");
	is(lr_transport_errno(CURLE_OPERATION_TIMEDOUT, 0, "http://x"), -ETIMEDOUT, "timeout");
	is(lr_transport_errno(CURLE_COULDNT_CONNECT, 0, "http://x"), -ECONNREFUSED, "refused");
	is(lr_transport_errno(CURLE_COULDNT_RESOLVE_HOST, 0, "http://x"), -EHOSTUNREACH, "DNS");
	is(lr_transport_errno(CURLE_PEER_FAILED_VERIFICATION, 0, "https://x"), -EKEYREJECTED,
	   "certificate not trusted");
	is(lr_transport_errno(CURLE_TFTP_NOTFOUND, 0, "tftp://x"), -ENOENT, "tftp not found");
	is(lr_transport_errno(CURLE_FILE_COULDNT_READ_FILE, 0, "file://x"), -ENOENT, "file missing");
	is(lr_transport_errno(CURLE_WRITE_ERROR, 200, "http://x"), -EFBIG, "over the size limit");
	is(lr_transport_errno(CURLE_RECV_ERROR, 0, "http://x"), -ECONNRESET, "connection reset");
	is(lr_transport_errno(CURLE_SSL_CONNECT_ERROR, 0, "https://x"), -ECONNABORTED, "TLS failure");
	is(lr_transport_errno(CURLE_UNSUPPORTED_PROTOCOL, 0, "http://x"), -EPROTO,
	   "an answer that is not HTTP is a bad answer (retried), not a configuration error");
	ok(!lr_transport_retryable(-EINVAL) && lr_transport_retryable(-ETIMEDOUT) &&
		   lr_transport_retryable(-ENOENT) && lr_transport_retryable(-EBADMSG) &&
		   lr_transport_retryable(-EPROTO),
	   "which errors are retried");
	{
		const char *bad[] = { "http://127.0.0.1:1", "gopher://127.0.0.1/x" };
		struct lr_transport_opts o = { .mirrors = bad, .nmirrors = 2 };
		struct lr_transport *t = NULL;
		is(lr_transport_new(&t, &o), -EPROTONOSUPPORT, "a mirror in a scheme we do not speak: refused at start");
	}

	char a[] = "/tmp/lazyroot-ta-XXXXXX", b[] = "/tmp/lazyroot-tb-XXXXXX";
	char ua[64], ub[64];
	if (!mkdtemp(a) || !mkdtemp(b))
		abort();
	snprintf(ua, sizeof(ua), "file://%s", a);
	snprintf(ub, sizeof(ub), "file://%s", b);
	put(a, "obj", "bad answer");
	put(b, "obj", "good answer");
	put(a, "big", "0123456789abcdef");
	put(b, "only-b", "from b");

	const char *mirrors[] = { ua, ub };
	struct lr_transport_opts o = { .mirrors = mirrors, .nmirrors = 2, .attempts = 4,
				       .backoff_ms = 10 };
	struct lr_transport *t;
	struct result r;
	is(lr_transport_new(&t, &o), 0, "transport with two file:// mirrors");

	memset(&r, 0, sizeof(r));
	is(lr_transport_fetch(t, "obj", 100, reject_bad, on_done, &r), 0, "fetch queued");
	pump(t, &r);
	ok(r.done && r.err == 0 && r.len == 11 && memcmp(r.data, "good answer", 11) == 0,
	   "rejected answer on mirror A, accepted from mirror B");

	memset(&r, 0, sizeof(r));
	lr_transport_fetch(t, "only-b", 100, NULL, on_done, &r);
	pump(t, &r);
	ok(r.done && r.err == 0 && r.len == 6, "object missing on one mirror found on the other");

	memset(&r, 0, sizeof(r));
	lr_transport_fetch(t, "nowhere", 100, NULL, on_done, &r);
	pump(t, &r);
	ok(r.done && r.err == -ENOENT, "object on no mirror: ENOENT after the attempts");

	memset(&r, 0, sizeof(r));
	lr_transport_fetch(t, "big", 8, NULL, on_done, &r);
	pump(t, &r);
	ok(r.done && r.err == -EFBIG, "object over its size limit: EFBIG");

	is(lr_transport_fetch(t, "../etc/passwd", 8, NULL, on_done, &r), -EINVAL,
	   "names climbing out are refused");
	is(lr_transport_fetch(t, "/abs", 8, NULL, on_done, &r), -EINVAL, "absolute names refused");

	struct lr_transport_stats st;
	lr_transport_stats(t, &st);
	ok(st.rejected == 1 && st.failed == 2 && st.active == 0 && st.waiting == 0,
	   "stats: one rejected answer, two failed fetches, nothing pending");
	is(lr_transport_pending(t), 0, "no fetch left behind");

	/* Slot bound: the table fills, then says EBUSY. */
	static struct result many[300];
	int queued = 0, busy = 0;
	for (int i = 0; i < 300; i++) {
		int e = lr_transport_fetch(t, "obj", 100, NULL, on_done, &many[i]);
		queued += e == 0;
		busy += e == -EBUSY;
	}
	ok(queued == 256 && busy == 44, "256 fetch slots, then EBUSY");
	lr_transport_free(t);

	/* Regular files only: a FIFO must not block the one thread, a link
	 * must not be followed; the next mirror answers. */
	char fp[600];
	snprintf(fp, sizeof(fp), "%s/fifo", a);
	if (mkfifo(fp, 0600) < 0)
		abort();
	put(b, "fifo", "from b");
	snprintf(fp, sizeof(fp), "%s/link", a);
	if (symlink("/etc/passwd", fp) < 0)
		abort();
	put(b, "link", "from b");
	is(lr_transport_new(&t, &o), 0, "transport again");
	memset(&r, 0, sizeof(r));
	lr_transport_fetch(t, "fifo", 100, NULL, on_done, &r);
	pump(t, &r);
	ok(r.done && r.err == 0 && r.len == 6, "a FIFO on a file:// mirror: skipped, not waited on");
	memset(&r, 0, sizeof(r));
	lr_transport_fetch(t, "link", 100, NULL, on_done, &r);
	pump(t, &r);
	ok(r.done && r.err == 0 && r.len == 6 && memcmp(r.data, "from b", 6) == 0,
	   "a symlink on a file:// mirror: not followed");

	/* A local directory before the mirrors: a hit costs no request, a
	 * copy the check refuses is removed and the mirror asked. */
	char c[] = "/tmp/lazyroot-tc-XXXXXX";
	if (!mkdtemp(c))
		abort();
	snprintf(fp, sizeof(fp), "%s/chunks", c);
	mkdir(fp, 0700);
	put(c, "chunks/x", "local x");
	put(c, "chunks/y", "bad local y");
	put(b, "chunks-y-mirror", "unused");
	snprintf(fp, sizeof(fp), "%s/chunks", b);
	mkdir(fp, 0700);
	put(b, "chunks/y", "good y");
	lr_transport_set_local(t, open(c, O_RDONLY | O_DIRECTORY), "chunks/");
	lr_transport_stats(t, &st);
	uint64_t reqs = st.requests;
	memset(&r, 0, sizeof(r));
	lr_transport_fetch(t, "chunks/x", 100, reject_bad, on_done, &r);
	pump(t, &r);
	lr_transport_stats(t, &st);
	ok(r.done && r.err == 0 && r.len == 7 && st.local_hits == 1 && st.requests == reqs,
	   "local directory first: a hit, no request to a mirror");
	memset(&r, 0, sizeof(r));
	lr_transport_fetch(t, "chunks/y", 100, reject_bad, on_done, &r);
	pump(t, &r);
	snprintf(fp, sizeof(fp), "%s/chunks/y", c);
	ok(r.done && r.err == 0 && r.len == 6 && memcmp(r.data, "good y", 6) == 0 &&
		   access(fp, F_OK) < 0,
	   "a local copy the check refuses is removed; the mirror answers");

	/* Demand before background: one connection, a background fetch
	 * queued first, then a demand one: the demand one is served first;
	 * with one connection, at most one background fetch is queued. */
	lr_transport_free(t);
	struct lr_transport_opts o1 = o;
	o1.max_active = 1;
	is(lr_transport_new(&t, &o1), 0, "transport with one connection");
	struct result bg1, bg2, dm;
	memset(&bg1, 0, sizeof(bg1));
	memset(&bg2, 0, sizeof(bg2));
	memset(&dm, 0, sizeof(dm));
	is(lr_transport_fetch_background(t, "only-b", 100, NULL, on_done, &bg1), 0, "background queued");
	is(lr_transport_fetch_background(t, "only-b", 100, NULL, on_done, &bg2), -EBUSY,
	   "... a second one is refused (demand keeps room)");
	lr_transport_fetch(t, "only-b", 100, NULL, on_done, &dm);
	pump(t, &bg1);
	ok(dm.done && bg1.done && dm.order < bg1.order,
	   "the demand fetch was served before the background one queued earlier");
	lr_transport_free(t);

	/* Ended background fetches are finished one per run, oldest first,
	 * demand ones all at once: the caller's loop gets its turn between
	 * (file:// transfers end when they start, all in the first run). */
	const char *only_b[] = { ub };
	struct lr_transport_opts o4 = { .mirrors = only_b, .nmirrors = 1, .max_active = 8 };
	is(lr_transport_new(&t, &o4), 0, "transport with eight connections");
	struct result bq[3], d2;
	memset(bq, 0, sizeof(bq));
	memset(&d2, 0, sizeof(d2));
	for (int i = 0; i < 3; i++)
		ok(lr_transport_fetch_background(t, "only-b", 100, NULL, on_done, &bq[i]) == 0,
		   "background fetch %d queued", i);
	lr_transport_fetch(t, "only-b", 100, NULL, on_done, &d2);
	lr_transport_run(t);
	ok(d2.done && bq[0].done && !bq[1].done && !bq[2].done,
	   "first run: the demand fetch and the oldest background one finished");
	is(lr_transport_timeout(t), 0, "... the loop is due again at once");
	lr_transport_run(t);
	ok(bq[1].done && !bq[2].done, "second run: the next background fetch");
	lr_transport_run(t);
	ok(bq[2].done && bq[0].err == 0 && bq[2].err == 0 && bq[2].len == d2.len,
	   "third run: the last one, all with their data");
	lr_transport_free(t);
	snprintf(cmd0, sizeof(cmd0), "rm -rf %s", c);
	if (system(cmd0) != 0)
		return 1;

	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", a, b);
	if (system(cmd) != 0)
		return 1;
	return tap_done();
}
