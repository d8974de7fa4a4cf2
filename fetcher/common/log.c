/* SPDX-License-Identifier: MIT */
#include "lr-log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *log_ident = "lazyrootd";
static int log_fd = -1;
static int log_kmsg;
static int log_max = LR_LOG_INFO;
static char last_error[256];

const char *lr_log_last_error(void)
{
	return last_error;
}

void lr_log_setup(const char *ident, int fd, int kmsg, int max_level)
{
	if (ident)
		log_ident = ident;
	log_fd = fd;
	log_kmsg = kmsg;
	log_max = max_level;
}

void lr_log_reopen(void)
{
	if (!log_kmsg || log_fd < 0)
		return;
	int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return; /* the shared one still works */
	if (dup3(fd, log_fd, O_CLOEXEC) < 0)
		log_fd = fd; /* its number is gone: use the new one */
	else
		close(fd);
}

int lr_log_enabled(int level)
{
	return level <= log_max;
}

void lr_logv(int level, const char *fmt, va_list ap)
{
	/* One write(2) per line: /dev/kmsg takes each write as one record. */
	char line[512];
	int n = 0;

	if (level > log_max && level > LR_LOG_ERR)
		return; /* errors are always formatted: last_error keeps them */
	if (log_kmsg)
		n = snprintf(line, sizeof(line), "<%d>%s: ", level, log_ident);
	else
		n = snprintf(line, sizeof(line), "%s: ", log_ident);
	if (n < 0)
		return;
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	if (level <= LR_LOG_ERR)
		snprintf(last_error, sizeof(last_error), "%s", line + n);
	if (level > log_max)
		return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2; /* truncated: still one whole line */
	line[len++] = '\n';
	ssize_t w = write(log_fd >= 0 ? log_fd : STDERR_FILENO, line, len);
	(void)w; /* nowhere left to report a failed log write */
}

void lr_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lr_logv(level, fmt, ap);
	va_end(ap);
}

int lr_log_errno(int level, int err, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	if (err < 0)
		err = -err;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lr_log(level, "%s: %s", msg, strerror(err));
	return -err;
}
