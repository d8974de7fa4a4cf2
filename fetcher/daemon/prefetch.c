/* SPDX-License-Identifier: MIT */
#include "prefetch.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "chunkstore.h"
#include "daemon.h"
#include "lr-limits.h"
#include "lr-log.h"

const char *lr_prefetch_state_name(enum lr_prefetch_state s)
{
	static const char *const names[] = { "off", "waiting", "running", "complete", "stopped" };

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void lr_prefetch_priority(struct lr_daemon *d, int demand)
{
	struct lr_prefetch *p = &d->pf;
	int want = demand ? LR_DEMAND_NICE : p->state == LR_PF_RUNNING ? LR_PREFETCH_NICE : 0;

	/* A reader blocked on a READ waits for lazyrootd's event loop, its
	 * hashing and its writes; after switch_root the booted system's
	 * other programs compete for the same CPU (one vCPU under TCG), and
	 * at equal priority each wake-up of the loop waited its turn. The
	 * kernel's own network block device receives on a high-priority
	 * workqueue (nbd's recv_workq is WQ_HIGHPRI) for the same reason.
	 * Prefetch alone runs below the booted system's programs instead:
	 * its hashing and writing would take their CPU, and the reads the
	 * kernel serves from what lazyrootd already wrote never reach
	 * lazyrootd (a cached read ran at half speed next to a full-rate
	 * prefetch). An errno here is logged once; lazyrootd goes on at the
	 * priority it has. */
	if (want == p->nice)
		return;
	if (setpriority(PRIO_PROCESS, 0, want) < 0) {
		static int told;
		if (!told++)
			log_warning_errno(errno, "cannot set lazyrootd's CPU priority to nice %d", want);
		return;
	}
	p->nice = want;
}

static double mb(uint64_t b)
{
	return (double)b / 1e6;
}

static uint64_t local_bytes(const struct lr_daemon *d)
{
	uint64_t b = d->nlocal * d->img.m.chunk_size;

	return b > d->img.m.image_size ? d->img.m.image_size : b;
}

int lr_cpu_parse(const char *text, size_t len, struct lr_cpu_sample *s)
{
	uint64_t v[10] = { 0 };
	size_t i = 4;
	unsigned n = 0;

	if (len < 5 || memcmp(text, "cpu ", 4) != 0)
		return -EBADMSG;
	/* "cpu  user nice system idle iowait irq softirq steal guest guest_nice"
	 * (older kernels stop earlier; guest time is also in user). */
	while (i < len && text[i] != '\n' && n < 10) {
		while (i < len && text[i] == ' ')
			i++;
		if (i >= len || text[i] < '0' || text[i] > '9')
			break;
		uint64_t x = 0;
		while (i < len && text[i] >= '0' && text[i] <= '9') {
			if (x > (UINT64_MAX - 9) / 10)
				return -EBADMSG;
			x = x * 10 + (uint64_t)(text[i++] - '0');
		}
		v[n++] = x;
	}
	if (n < 4)
		return -EBADMSG;
	s->busy = v[0] + v[2];
	s->total = 0;
	for (unsigned k = 0; k < n && k < 8; k++)
		s->total += v[k];
	return 0;
}

int lr_cpu_others_pct(const struct lr_cpu_sample *a, const struct lr_cpu_sample *b)
{
	if (b->total <= a->total || b->busy < a->busy)
		return -1;
	uint64_t total = b->total - a->total, busy = b->busy - a->busy;
	uint64_t own = b->own > a->own ? b->own - a->own : 0;
	/* Ours is not "others" (at nice 10 it is in the nice column, which
	 * busy leaves out anyway: then this undercounts others a little). */
	busy = busy > own ? busy - own : 0;
	return busy >= total ? 100 : (int)(busy * 100 / total);
}

static int cpu_sample(struct lr_prefetch *p, struct lr_cpu_sample *s)
{
	char buf[512];
	ssize_t n = pread(p->statfd, buf, sizeof(buf), 0);
	struct rusage ru;

	if (n <= 0 || lr_cpu_parse(buf, (size_t)n, s) < 0 || getrusage(RUSAGE_SELF, &ru) < 0)
		return -EIO;
	long hz = sysconf(_SC_CLK_TCK);
	uint64_t us = (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec +
		      (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
	s->own = us * (uint64_t)(hz > 0 ? hz : 100) / 1000000;
	return 0;
}

/* Do other processes keep the CPUs busy? Sampled once a window. The
 * reads the kernel serves from what lazyrootd already wrote never reach
 * lazyrootd, so the quiet spell after READs cannot see them; their CPU
 * time can. Unknown (no /proc/stat) counts as idle. */
static int cpu_busy(struct lr_prefetch *p, uint64_t now)
{
	struct lr_cpu_sample s;

	if (p->statfd < 0 || now < p->cpu_at_ms + LR_PREFETCH_CPU_WINDOW_MS)
		return p->cpu_busy;
	if (cpu_sample(p, &s) < 0) {
		log_debug("prefetch: /proc/stat unreadable: not watching the CPU");
		close(p->statfd);
		p->statfd = -1;
		return p->cpu_busy = 0;
	}
	int pct = p->cpu_at_ms ? lr_cpu_others_pct(&p->cpu_last, &s) : -1;
	p->cpu_last = s;
	p->cpu_at_ms = now;
	p->cpu_busy = pct >= (int)LR_PREFETCH_CPU_BUSY_PCT;
	if (p->cpu_busy)
		p->cpu_holds++;
	return p->cpu_busy;
}

void lr_prefetch_init(struct lr_daemon *d, int enabled, uint64_t rate)
{
	struct lr_prefetch *p = &d->pf;

	p->state = enabled ? LR_PF_WAITING : LR_PF_OFF;
	p->rate = rate;
	p->statfd = -1;
}

void lr_prefetch_watch_cpu(struct lr_daemon *d)
{
	struct lr_prefetch *p = &d->pf;

	if (p->state != LR_PF_WAITING || p->statfd >= 0)
		return;
	p->statfd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
	if (p->statfd < 0)
		log_info("prefetch: no /proc/stat (%m): it will not wait for busy CPUs");
}

void lr_prefetch_start(struct lr_daemon *d)
{
	struct lr_prefetch *p = &d->pf;

	if (p->state != LR_PF_WAITING)
		return;
	p->state = LR_PF_RUNNING;
	p->cursor = 0;
	p->pass_errors = p->pass_started = 0;
	p->bytes = 0;
	p->tokens = 0;
	p->tokens_at_ms = p->start_ms = p->last_log_ms = 0; /* set by the next tick */
	if (p->rate)
		log_info("prefetch: the rest of the image in the background, at most %.1f MB/s",
			 mb(p->rate));
	else
		log_info("prefetch: the rest of the image in the background (%.1f of %.1f MB "
			 "local)",
			 mb(local_bytes(d)), mb(d->img.m.image_size));
}

static void complete(struct lr_daemon *d, uint64_t now)
{
	struct lr_prefetch *p = &d->pf;

	p->state = LR_PF_COMPLETE;
	p->done_ms = now;
	log_notice("prefetch complete: the whole image (%.1f MB) is local, %.1f MB verified in "
		   "the background in %.1f s; this machine no longer needs the network",
		   mb(d->img.m.image_size), mb(p->bytes),
		   p->start_ms ? (double)(now - p->start_ms) / 1000 : 0.0);
}

void lr_prefetch_stop(struct lr_daemon *d, const char *why)
{
	struct lr_prefetch *p = &d->pf;

	if (p->state != LR_PF_RUNNING && p->state != LR_PF_WAITING)
		return;
	p->state = LR_PF_STOPPED;
	p->why_stopped = why;
	log_warning("prefetch stopped: %s; %.1f of %.1f MB local, the rest comes on demand "
		    "(the network stays needed)",
		    why, mb(local_bytes(d)), mb(d->img.m.image_size));
}

void lr_prefetch_local(struct lr_daemon *d, uint64_t c)
{
	(void)c;
	if (d->pf.state == LR_PF_RUNNING && d->nlocal == d->img.nchunks)
		complete(d, now_ms());
}

void lr_prefetch_fetched(struct lr_daemon *d, uint64_t c, int err, uint32_t len)
{
	struct lr_prefetch *p = &d->pf;

	if (err < 0) {
		p->errors++;
		p->pass_errors++;
		log_debug("prefetch of chunk %" PRIu64 " failed: %d (retried later)", c, err);
		return;
	}
	p->bytes += len;
}

static void progress(struct lr_daemon *d, uint64_t now)
{
	struct lr_prefetch *p = &d->pf;

	/* A store on a disk keeps what prefetch fetched: a power cut loses
	 * at most the chunks of the last progress interval (chunk files are
	 * not synced one by one). */
	if (d->store && !d->store_boot_only && p->bytes != p->synced_bytes) {
		int e = lr_chunkstore_sync(d->store);
		if (e < 0)
			log_warning_errno(e, "syncing the local store");
		p->synced_bytes = p->bytes;
	}
	double secs = (double)(now - p->start_ms) / 1000;
	double rate = secs > 0 ? (double)p->bytes / secs : 0;
	uint64_t left = d->img.m.image_size - local_bytes(d);

	p->last_log_ms = now;
	log_info("prefetch: %.1f of %.1f MB local (%.0f%%), %.1f MB/s, about %.0f s left, "
		 "%" PRIu64 " errors",
		 mb(local_bytes(d)), mb(d->img.m.image_size),
		 100.0 * (double)local_bytes(d) / (double)d->img.m.image_size, rate / 1e6,
		 rate > 0 ? (double)left / rate : -1.0, p->errors);
}

void lr_prefetch_order(struct lr_daemon *d, uint32_t *order, uint64_t n)
{
	struct lr_prefetch *p = &d->pf;

	free(p->order);
	p->order = order;
	p->norder = n;
	p->order_pos = 0;
	p->order_active = n > 0;
	p->order_start_ms = now_ms();
	log_info("boot order: fetching the %" PRIu64 " chunks a recorded boot read, ahead of the "
		 "kernel",
		 n);
}

/* The boot-order phase: list order, as many at once as background fetches
 * may be; demand still goes first in the transport. */
static void order_tick(struct lr_daemon *d, uint64_t now)
{
	struct lr_prefetch *p = &d->pf;

	while (p->order_pos < p->norder) {
		int r = lr_daemon_prefetch_chunk(d, p->order[p->order_pos], 1);
		if (r == -EBUSY)
			return;
		p->order_pos++;
	}
	if (lr_daemon_background_jobs(d) > 0)
		return;
	p->order_active = 0;
	log_info("boot order: %" PRIu64 " chunks local %.2f s after the list arrived", p->norder,
		 (double)(now - p->order_start_ms) / 1000);
}

int lr_prefetch_tick(struct lr_daemon *d, uint64_t now)
{
	struct lr_prefetch *p = &d->pf;
	int next = -1;

	if (p->order_active) {
		order_tick(d, now);
		if (p->order_active)
			return -1; /* again when a fetch ends */
	}

	if (p->state == LR_PF_WAITING && p->ready_ms && now >= p->ready_ms + LR_PREFETCH_FALLBACK_MS) {
		log_info("prefetch: no word that the boot is done after %u s; starting anyway",
			 LR_PREFETCH_FALLBACK_MS / 1000);
		lr_prefetch_start(d);
	}
	if (p->state == LR_PF_WAITING && p->ready_ms)
		return (int)(p->ready_ms + LR_PREFETCH_FALLBACK_MS - now);
	if (p->state != LR_PF_RUNNING)
		return -1;
	if (!p->start_ms)
		p->start_ms = p->last_log_ms = p->tokens_at_ms = now;
	if (d->nlocal == d->img.nchunks) {
		complete(d, now);
		return -1;
	}
	if (now - p->last_log_ms >= LR_PREFETCH_LOG_MS)
		progress(d, now);
	next = (int)(p->last_log_ms + LR_PREFETCH_LOG_MS - now);
	if (now < p->pause_until_ms)
		return (int)(p->pause_until_ms - now) < next ? (int)(p->pause_until_ms - now) : next;
	/* Demand first: no new background fetch while a reader waits (those
	 * in flight finish; LR_XFER_DEMAND_RESERVED connections stay free). */
	for (unsigned i = 0; i < LR_READS_MAX; i++)
		if (d->reads[i].used)
			return next;
	/* ... and not while the boot still reads through lazyrootd: a quiet
	 * spell first. From the network or from the local store, serving a
	 * READ takes the CPU prefetch would take (hashing, writing), and
	 * under TCG there is one CPU for that and the boot itself. */
	if (d->last_demand_ms && now < d->last_demand_ms + LR_PREFETCH_QUIET_MS) {
		int quiet = (int)(d->last_demand_ms + LR_PREFETCH_QUIET_MS - now);
		return quiet < next ? quiet : next;
	}
	if (cpu_busy(p, now))
		return (int)LR_PREFETCH_CPU_WINDOW_MS < next ? (int)LR_PREFETCH_CPU_WINDOW_MS : next;
	if (p->rate) {
		/* A token bucket of at most one second's worth. */
		p->tokens += (double)(now - p->tokens_at_ms) * (double)p->rate / 1000;
		if (p->tokens > (double)p->rate)
			p->tokens = (double)p->rate;
		p->tokens_at_ms = now;
	}
	for (;;) {
		if (p->rate && p->tokens < (double)d->img.m.chunk_size) {
			int wait = (int)(((double)d->img.m.chunk_size - p->tokens) * 1000 /
					 (double)p->rate) + 1;
			return wait < next ? wait : next;
		}
		if (p->cursor >= d->img.nchunks) {
			/* A pass is over. The next one starts when this one's
			 * fetches have ended (so the scan runs once per pass),
			 * after a pause if some failed: those are tried again. */
			if (lr_daemon_background_jobs(d) > 0)
				return next;
			unsigned pause = p->pass_errors ? LR_PREFETCH_RETRY_MS
					 : p->pass_started ? 0 : 1000; /* only demand in flight */
			p->cursor = 0;
			p->pass_errors = p->pass_started = 0;
			if (pause) {
				p->pause_until_ms = now + pause;
				return (int)pause < next ? (int)pause : next;
			}
		}
		int r = lr_daemon_prefetch_chunk(d, p->cursor, 0);
		if (r == -EBUSY)
			return next; /* background queue full: again when one ends */
		if (r < 0) {
			p->errors++;
			p->pass_errors++;
		} else if (r == 0 || r == 2) {
			p->pass_started++;
			if (p->rate && r == 0)
				p->tokens -= (double)d->img.m.chunk_size;
		}
		p->cursor++;
		if (p->state != LR_PF_RUNNING)
			return -1;
	}
	return next;
}
