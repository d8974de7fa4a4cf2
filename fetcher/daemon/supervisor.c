/* SPDX-License-Identifier: MIT */
#include "supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lr-limits.h"
#include "lr-log.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void describe(int st, char *buf, size_t len)
{
	if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else if (WIFEXITED(st))
		snprintf(buf, len, "exited with %d", WEXITSTATUS(st));
	else
		snprintf(buf, len, "ended (status %#x)", (unsigned)st);
}

/* Wake a PID 1 that waits for the dead worker to end. systemd-shutdown
 * signals every process but root's '@' ones (the worker runs as another
 * user), then sleeps until a child of its own ends or 10 or 90 s pass:
 * the worker is not its child, so it slept the whole time though the
 * worker was long gone. An orphan that ends at once is PID 1's child
 * (reparented), and its end wakes it to look again. */
static void poke_init(void)
{
	pid_t p = fork();

	if (p == 0) {
		/* Both end; whichever ends second, the grandchild is then an
		 * orphan, and PID 1's. */
		(void)fork();
		_exit(0);
	}
	if (p > 0)
		while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
			;
}

void lr_supervise(const struct lr_supervisor *s)
{
	uint64_t deaths[LR_RESTART_BURST] = { 0 };
	unsigned ndeaths = 0;
	sigset_t mask;

	/* Stopping is not ours to decide while the root is mounted: the
	 * worker logs and ignores TERM/INT/HUP too. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	for (;;) {
		pid_t pid = fork();
		if (pid < 0) {
			log_error_errno(errno, "supervisor: cannot fork a worker; answering the "
					       "kernel myself, failing closed");
			s->fail_closed(s->ctx);
		}
		if (pid == 0)
			_exit(s->worker(s->ctx, ndeaths));
		int st = 0;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		poke_init();
		char why[96];
		describe(st, why, sizeof(why));
		uint64_t now = now_ms();
		deaths[ndeaths++ % LR_RESTART_BURST] = now;
		/* The oldest of the last LR_RESTART_BURST deaths, when there are
		 * that many: too recent means restarting does not help. */
		if (ndeaths >= LR_RESTART_BURST &&
		    now - deaths[ndeaths % LR_RESTART_BURST] < LR_RESTART_WINDOW_MS) {
			log_error("supervisor: worker %d %s; %u deaths within %u s: no more restarts, "
				  "failing closed (reads of data not yet here get EIO)",
				  (int)pid, why, LR_RESTART_BURST, LR_RESTART_WINDOW_MS / 1000);
			s->fail_closed(s->ctx);
		}
		log_error("supervisor: worker %d %s; starting another (reads it left are answered "
			  "by the next one)", (int)pid, why);
	}
}
