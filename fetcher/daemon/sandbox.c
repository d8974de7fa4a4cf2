/* SPDX-License-Identifier: MIT */
#include "sandbox.h"

#include <errno.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lr-limits.h"
#include "lr-log.h"
#include "lr-util.h"

#if defined(__x86_64__)
#define LR_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define LR_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the seccomp argument offsets below assume a little-endian machine"
#endif

/* CACHEFILES_IOC_READ_COMPLETE, _IOW(0x98, 1, int): spelled out so this
 * file needs no backend header (modules do not include each other). */
#define LR_IOC_CACHEFILES_READ_COMPLETE 0x40049801u

static char described[96] = "not sandboxed";

const char *lr_sandbox_describe(void)
{
	return described;
}

int lr_sandbox_parse_user(const char *s, struct lr_sandbox *sb)
{
	char *end;
	unsigned long u, g;

	errno = 0;
	u = strtoul(s, &end, 10);
	if (errno || end == s || u > 0xfffffffeul)
		return -EINVAL;
	g = u;
	if (*end == ':') {
		const char *gs = end + 1;
		g = strtoul(gs, &end, 10);
		if (errno || end == gs || g > 0xfffffffeul)
			return -EINVAL;
	}
	if (*end)
		return -EINVAL;
	sb->uid = (uid_t)u;
	sb->gid = (gid_t)g;
	return 0;
}

#ifdef LR_AUDIT_ARCH

/* The filter is built into a fixed array: every rule is at most a few
 * instructions with jumps that never exceed one rule, so no offset can
 * overflow BPF's 8-bit jump fields however long the lists grow. */
#define PROG_MAX 512
struct prog {
	struct sock_filter f[PROG_MAX];
	unsigned n;
	int overflow;
};

static void emit(struct prog *p, struct sock_filter ins)
{
	if (p->n < PROG_MAX)
		p->f[p->n++] = ins;
	else
		p->overflow = 1;
}

#define LOAD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
/* The low 32 bits of argument i (little-endian). */
#define LOAD_ARG(i) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[i]))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))
#define ALLOW RET(SECCOMP_RET_ALLOW)
/* Calls that are not listed fail with ENOSYS, which is what musl and
 * libcurl take as "not on this kernel" and fall back from (statx,
 * clone3, faccessat2, ...). A log line saying "Function not implemented"
 * from the worker names this filter. */
#define DENY RET(SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA))
#define REFUSE RET(SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))
/* No legitimate path of the worker makes these: a call is an attack (or
 * a bug worth a crash): the process dies, the supervisor logs signal 31
 * and starts a new worker. */
#define KILL RET(SECCOMP_RET_KILL_PROCESS)

/* if (A == k) return action; */
static void rule(struct prog *p, unsigned k, struct sock_filter action)
{
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 1));
	emit(p, action);
}

/* if (nr == x) { A = low word of arg; allowed values return ALLOW; else
 * REFUSE } */
static void rule_arg(struct prog *p, long nr, unsigned arg, const unsigned *ok, unsigned nok)
{
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0,
					     (unsigned char)(2 * nok + 2)));
	emit(p, (struct sock_filter)LOAD_ARG(arg));
	for (unsigned i = 0; i < nok; i++)
		rule(p, ok[i], (struct sock_filter)ALLOW);
	emit(p, (struct sock_filter)REFUSE);
}

/* The system calls a worker makes: the event loop (epoll, signalfd,
 * timers), sockets for libcurl and the status sockets, files in the store
 * and the backends' fds, memory, time, randomness for TLS, and what musl
 * needs for the one thread curl's resolver starts per name lookup. */
static const long allowed[] = {
	SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_pread64, SYS_pwrite64, SYS_preadv,
	SYS_pwritev, SYS_close, SYS_lseek, SYS_fstat, SYS_newfstatat, SYS_fstatfs, SYS_statfs,
	SYS_openat, SYS_getdents64, SYS_renameat, SYS_unlinkat, SYS_mkdirat, SYS_fsync,
	SYS_fdatasync, SYS_fallocate, SYS_fadvise64, SYS_ftruncate, SYS_fcntl, SYS_dup, SYS_dup3,
	SYS_pipe2, SYS_readlinkat, SYS_faccessat, SYS_umask, SYS_getcwd,
	SYS_brk, SYS_mmap, SYS_munmap, SYS_mremap, SYS_mprotect, SYS_madvise,
	SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_pwait, SYS_ppoll, SYS_pselect6,
	SYS_signalfd4, SYS_timerfd_create, SYS_timerfd_settime, SYS_timerfd_gettime, SYS_eventfd2,
	SYS_socketpair, SYS_connect, SYS_accept4, SYS_bind, SYS_listen, SYS_getsockname,
	SYS_getpeername, SYS_setsockopt, SYS_getsockopt, SYS_sendto, SYS_recvfrom, SYS_sendmsg,
	SYS_recvmsg, SYS_sendmmsg, SYS_recvmmsg, SYS_shutdown,
	SYS_clock_gettime, SYS_clock_getres, SYS_gettimeofday, SYS_nanosleep, SYS_clock_nanosleep,
	SYS_getpid, SYS_gettid, SYS_getppid, SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid,
	SYS_getresuid, SYS_getresgid, SYS_getgroups, SYS_set_tid_address, SYS_set_robust_list,
	SYS_futex, SYS_sched_yield, SYS_sched_getaffinity, SYS_exit, SYS_exit_group,
	SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_sigaltstack, SYS_tkill,
	SYS_tgkill, SYS_restart_syscall, SYS_getrandom, SYS_uname, SYS_sysinfo, SYS_getrusage,
	SYS_prlimit64, SYS_getpriority, SYS_setpriority, SYS_membarrier, SYS_memfd_create,
	SYS_utimensat, SYS_sync_file_range, SYS_syncfs,
#ifdef SYS_renameat2
	SYS_renameat2,
#endif
#ifdef SYS_statx
	SYS_statx,
#endif
#ifdef SYS_epoll_pwait2
	SYS_epoll_pwait2,
#endif
#ifdef SYS_rseq
	SYS_rseq,
#endif
#ifdef SYS_getrlimit
	SYS_getrlimit,
#endif
	/* the legacy x86-64 spellings musl still uses there */
#ifdef SYS_open
	SYS_open, SYS_stat, SYS_lstat, SYS_access, SYS_poll, SYS_select, SYS_pipe, SYS_dup2,
	SYS_epoll_create, SYS_epoll_wait, SYS_rename, SYS_unlink, SYS_mkdir, SYS_readlink,
	SYS_time, SYS_accept,
#endif
};

static const long killed[] = {
	SYS_execve, SYS_execveat, SYS_ptrace, SYS_mount, SYS_umount2, SYS_pivot_root, SYS_chroot,
	SYS_init_module, SYS_finit_module, SYS_delete_module, SYS_kexec_load, SYS_bpf, SYS_setns,
	SYS_unshare, SYS_process_vm_readv, SYS_process_vm_writev, SYS_perf_event_open,
	SYS_keyctl, SYS_add_key, SYS_request_key, SYS_reboot, SYS_swapon, SYS_swapoff, SYS_acct,
	SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid, SYS_setresuid, SYS_setresgid,
	SYS_setgroups, SYS_setfsuid, SYS_setfsgid, SYS_capset, SYS_open_by_handle_at,
	SYS_name_to_handle_at, SYS_mknodat, SYS_personality, SYS_userfaultfd, SYS_fanotify_init,
	SYS_io_uring_setup,
#ifdef SYS_kexec_file_load
	SYS_kexec_file_load,
#endif
};

static void build(struct prog *p)
{
	static const unsigned domains[] = { AF_UNIX, AF_INET, AF_INET6 };
	static const unsigned ioctls[] = { LR_IOC_CACHEFILES_READ_COMPLETE, FIONBIO, FIONREAD,
					   TCGETS, TIOCGWINSZ, FIOCLEX, FIONCLEX };
	static const unsigned prctls[] = { PR_SET_NAME, PR_GET_NAME, PR_GET_DUMPABLE };

	emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					     offsetof(struct seccomp_data, arch)));
	/* Another ABI (i386 through int 0x80 on x86-64) has other numbers. */
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, LR_AUDIT_ARCH, 1, 0));
	emit(p, (struct sock_filter)KILL);
	emit(p, (struct sock_filter)LOAD_NR);
#if defined(__x86_64__)
	/* x32 calls share x86-64's arch value; their numbers have bit 30. */
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1));
	emit(p, (struct sock_filter)KILL);
#endif
	/*
	 * Calls whose verdict needs their arguments come first: the kernel
	 * (5.11+) caches the verdict of every call number this filter allows
	 * without looking at arguments and then skips the filter for them, so
	 * the long list below costs nothing for read, pwrite64, epoll_pwait...
	 * but ioctl (cachefiles' READ_COMPLETE, once per READ) runs the filter
	 * each time. Each rule_arg reloads A; the next rule needs the number.
	 */
	rule_arg(p, SYS_ioctl, 1, ioctls, sizeof(ioctls) / sizeof(ioctls[0]));
	emit(p, (struct sock_filter)LOAD_NR);
	rule_arg(p, SYS_socket, 0, domains, 3);
	emit(p, (struct sock_filter)LOAD_NR);
	rule_arg(p, SYS_prctl, 0, prctls, sizeof(prctls) / sizeof(prctls[0]));
	emit(p, (struct sock_filter)LOAD_NR);
	/* Threads (curl's resolver), never processes: a worker never forks. */
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 4));
	emit(p, (struct sock_filter)LOAD_ARG(0));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1));
	emit(p, (struct sock_filter)ALLOW);
	emit(p, (struct sock_filter)REFUSE);
	/* (A still holds the number: the clone rule loads its argument only
	 * for clone.) */
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		rule(p, (unsigned)allowed[i], (struct sock_filter)ALLOW);
	for (size_t i = 0; i < sizeof(killed) / sizeof(killed[0]); i++)
		rule(p, (unsigned)killed[i], (struct sock_filter)KILL);
	emit(p, (struct sock_filter)DENY);
}

static int install_filter(void)
{
	static struct prog p;

	p.n = 0;
	build(&p);
	if (p.overflow)
		return log_error_errno(-E2BIG, "sandbox: seccomp filter longer than %u instructions",
				       PROG_MAX);
	struct sock_fprog fp = { .len = (unsigned short)p.n, .filter = p.f };
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp, 0, 0) < 0)
		return log_error_errno(errno, "sandbox: installing the seccomp filter");
	return (int)p.n;
}

#else
static int install_filter(void)
{
	return log_error_errno(-EOPNOTSUPP, "sandbox: no seccomp filter for this architecture "
					    "(start with --no-sandbox to run unconfined)");
}
#endif

int lr_sandbox_enter(const struct lr_sandbox *sb)
{
	if (!sb->enabled) {
		log_warning("running without a sandbox (--no-sandbox): a parser bug reached from "
			    "a mirror runs as root");
		return 0;
	}
	/* Raising the priority for a waiting READ (prefetch.c), once the
	 * capabilities are gone, needs this limit: 20 - 30 = nice -10 at
	 * best. */
	struct rlimit nl = { 20 - LR_DEMAND_NICE, 20 - LR_DEMAND_NICE };
	if (setrlimit(RLIMIT_NICE, &nl) < 0)
		log_warning_errno(errno, "sandbox: RLIMIT_NICE (no higher priority for a waiting READ, prefetch stays at low priority)");
	if (sb->uid != 0 || sb->gid != 0) {
		/* Groups first, then gid, then uid: each step needs the
		 * privilege the next one gives up. Changing every uid from 0
		 * clears the permitted and effective capabilities. */
		if (setgroups(0, NULL) < 0 || setresgid(sb->gid, sb->gid, sb->gid) < 0 ||
		    setresuid(sb->uid, sb->uid, sb->uid) < 0)
			return log_error_errno(errno, "sandbox: cannot become uid %u gid %u",
					       (unsigned)sb->uid, (unsigned)sb->gid);
		uid_t r, e, s;
		if (getresuid(&r, &e, &s) < 0 || r != sb->uid || e != sb->uid || s != sb->uid ||
		    setresuid(0, 0, 0) == 0)
			return log_error_errno(-EPERM, "sandbox: uid change did not hold");
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return log_error_errno(errno, "sandbox: no_new_privs");
	int n = install_filter();
	if (n < 0)
		return n;
	snprintf(described, sizeof(described), "uid %u gid %u, %s, seccomp (%d instructions)",
		 (unsigned)sb->uid, (unsigned)sb->gid,
		 sb->uid ? "no capabilities" : "root's capabilities", n);
	log_info("worker sandboxed: %s", described);
	return 0;
}
