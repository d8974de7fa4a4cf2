/* SPDX-License-Identifier: MIT */
/*
 * Logging: one line per event, to /dev/kmsg (with a syslog priority
 * prefix, so it reaches the console and survives switch_root) or stderr.
 * The *_errno helpers return the negative errno so an error is logged once,
 * where it is handled, and passed on in the same statement.
 */
#ifndef LR_LOG_H
#define LR_LOG_H

#include <errno.h>
#include <stdarg.h>

enum lr_log_level {
	LR_LOG_ERR = 3,
	LR_LOG_WARNING = 4,
	LR_LOG_NOTICE = 5,
	LR_LOG_INFO = 6,
	LR_LOG_DEBUG = 7,
};

/* fd: where lines go (-1: stderr). kmsg: prefix lines with "<prio>". */
void lr_log_setup(const char *ident, int fd, int kmsg, int max_level);
/* After fork, before dropping privileges: this process's own /dev/kmsg.
 * The kernel lets each open file of it write a burst of 10 lines per 5 s
 * (unless printk.devkmsg=on) and drops the rest, so processes sharing one
 * silence each other: the worker's first lines after a supervisor's, a
 * helper's after the worker's. A no-op when logging elsewhere. */
void lr_log_reopen(void);
/* The last error logged (the message part), "" if none: what a failing
 * daemon hands its caller as the one-line reason. */
const char *lr_log_last_error(void);

/* Would a line of this level be logged? (For lines costly to make.) */
int lr_log_enabled(int level);
void lr_logv(int level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
void lr_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Logs "<message>: <strerror(err)>" and returns -|err|. */
int lr_log_errno(int level, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) lr_log(LR_LOG_ERR, __VA_ARGS__)
#define log_warning(...) lr_log(LR_LOG_WARNING, __VA_ARGS__)
#define log_notice(...) lr_log(LR_LOG_NOTICE, __VA_ARGS__)
#define log_info(...) lr_log(LR_LOG_INFO, __VA_ARGS__)
#define log_debug(...) lr_log(LR_LOG_DEBUG, __VA_ARGS__)
#define log_error_errno(err, ...) lr_log_errno(LR_LOG_ERR, (err), __VA_ARGS__)
#define log_warning_errno(err, ...) lr_log_errno(LR_LOG_WARNING, (err), __VA_ARGS__)

#endif
