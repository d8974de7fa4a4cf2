/* SPDX-License-Identifier: MIT */
/* The worker's sandbox (daemon/sandbox.c), entered for real in forked
 * children: what it must still allow, what it refuses and what it kills. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lr-limits.h"
#include "sandbox.h"
#include "tap.h"

static struct lr_sandbox sb = { .enabled = 1, .uid = LR_SANDBOX_ID, .gid = LR_SANDBOX_ID };

/* Run fn in a sandboxed child: its exit code, or -signal if it died. */
static int sandboxed(int (*fn)(void))
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		if (lr_sandbox_enter(&sb) < 0)
			_exit(100);
		_exit(fn());
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 101;
	return WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
}

/* "Field:\tvalue" of /proc/self/status, as text. */
static int status_field(const char *field, char *out, size_t len)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	size_t n = strlen(field);

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			snprintf(out, len, "%s", line + n + 1 + strspn(line + n + 1, " \t"));
			out[strcspn(out, "\n")] = '\0';
			fclose(f);
			return 0;
		}
	fclose(f);
	return -1;
}

static int identity(void)
{
	char v[64];
	uid_t r, e, s;

	if (getresuid(&r, &e, &s) < 0 || r != sb.uid || e != sb.uid || s != sb.uid)
		return 1;
	if (getgid() != sb.gid || getgroups(0, NULL) != 0)
		return 2;
	if (status_field("CapEff", v, sizeof(v)) < 0 || strcmp(v, "0000000000000000") != 0)
		return 3;
	if (status_field("CapPrm", v, sizeof(v)) < 0 || strcmp(v, "0000000000000000") != 0)
		return 4;
	if (status_field("NoNewPrivs", v, sizeof(v)) < 0 || strcmp(v, "1") != 0)
		return 5;
	if (status_field("Seccomp", v, sizeof(v)) < 0 || strcmp(v, "2") != 0)
		return 6;
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
		return 7;
	return 0;
}

/* What the worker does: sockets of the three families, a thread (curl's
 * resolver), pipes, time, randomness, the nice value prefetch sets and
 * resets. */
static void *thread_fn(void *arg)
{
	return arg;
}

static int allowed(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 1;
	close(fd);
	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 && errno != EAFNOSUPPORT)
		return 2;
	if (fd >= 0)
		close(fd);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 3;
	close(sv[0]);
	close(sv[1]);
	pthread_t t;
	static int token;
	void *ret = NULL;
	if (pthread_create(&t, NULL, thread_fn, &token) != 0 || pthread_join(t, &ret) != 0 ||
	    ret != &token)
		return 4;
	int nb = 1;
	if (pipe2(sv, O_CLOEXEC) < 0 || ioctl(sv[0], FIONBIO, &nb) < 0)
		return 5;
	char buf[16];
	if (getrandom(buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
		return 6;
	/* Nice -10 for a waiting READ, then 10 for prefetch alone and back:
	 * needs RLIMIT_NICE 30, which the sandbox sets where root may raise
	 * limits (not in a container without CAP_SYS_RESOURCE). */
	struct rlimit rl;
	if (setpriority(PRIO_PROCESS, 0, 10) < 0 || getrlimit(RLIMIT_NICE, &rl) < 0)
		return 7;
	if (rl.rlim_cur >= (rlim_t)(20 - LR_DEMAND_NICE) &&
	    (setpriority(PRIO_PROCESS, 0, LR_DEMAND_NICE) < 0 ||
	     getpriority(PRIO_PROCESS, 0) != LR_DEMAND_NICE || setpriority(PRIO_PROCESS, 0, 0) < 0))
		return 7;
	return 0;
}

static int refused(void)
{
	if (socket(AF_NETLINK, SOCK_RAW, 0) >= 0 || errno != EPERM)
		return 1;
	if (socket(AF_PACKET, SOCK_RAW, 0) >= 0 || errno != EPERM)
		return 2;
	char c = 'x';
	if (ioctl(STDIN_FILENO, TIOCSTI, &c) == 0 || errno != EPERM)
		return 3;
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0 || errno != EPERM)
		return 4;
	/* a process, not a thread: no CLONE_THREAD */
	if (syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0) >= 0 || errno != EPERM)
		return 5;
	/* not listed: "not implemented" */
	if (syscall(SYS_kill, getpid(), 0) == 0 || errno != ENOSYS)
		return 6;
	return 0;
}

static int exec_call(void)
{
	char *argv[] = { "/bin/true", NULL };
	syscall(SYS_execve, "/bin/true", argv, argv + 1);
	return 0;
}

static int unshare_call(void)
{
	syscall(SYS_unshare, 0);
	return 0;
}

static int setuid_call(void)
{
	syscall(SYS_setresuid, 0, 0, 0);
	return 0;
}

int main(void)
{
	struct lr_sandbox p = { 0 };

	is(lr_sandbox_parse_user("65533", &p), 0, "UID parses");
	ok(p.uid == 65533 && p.gid == 65533, "UID alone sets the gid too");
	is(lr_sandbox_parse_user("1000:1001", &p), 0, "UID:GID parses");
	ok(p.uid == 1000 && p.gid == 1001, "UID:GID values");
	is(lr_sandbox_parse_user("nobody", &p), -EINVAL, "names are refused (no user database)");
	is(lr_sandbox_parse_user("1:", &p), -EINVAL, "empty GID refused");
	is(lr_sandbox_parse_user("-1", &p), -EINVAL, "-1 refused");
	is(lr_sandbox_parse_user("4294967295", &p), -EINVAL, "(uid_t)-1 refused");

	if (geteuid() != 0) {
		tap_skip(7, "not root: cannot change uid");
		return tap_done();
	}
	is(sandboxed(identity), 0, "uid and gid changed, no capabilities, no_new_privs, seccomp, "
				   "not dumpable (exit code names the failed check)");
	is(sandboxed(allowed), 0, "sockets, a thread, pipes, FIONBIO, getrandom, nice up and back");
	is(sandboxed(refused), 0, "netlink, packet sockets, TIOCSTI, dumpable, fork refused; "
				  "unlisted calls get ENOSYS");
	is(sandboxed(exec_call), -SIGSYS, "execve kills the worker");
	is(sandboxed(unshare_call), -SIGSYS, "unshare kills the worker");
	is(sandboxed(setuid_call), -SIGSYS, "setresuid (back to root) kills the worker");
	sb.uid = sb.gid = 0;
	is(sandboxed(allowed), 0, "--user 0: root's uid, the filter still applies");
	return tap_done();
}
