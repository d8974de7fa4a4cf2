/* SPDX-License-Identifier: MIT */
/*
 * What a persistent chunk store keeps besides chunks: the highest image
 * version this machine booted (anti-rollback that needs no command line)
 * and a copy of the last verified manifest (an offline boot checks it like
 * a mirror's answer: signature, and the version against the state).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "lr-log.h"

#define STATE_NAME "lazyroot.state"
#define STATE_MAX 256u

/* The highest image version this store has booted (0: none or unreadable;
 * an unreadable state is logged: it weakens anti-rollback). */
uint64_t lr_state_version(struct lr_daemon *d)
{
	char buf[STATE_MAX + 1], *end;
	size_t len = 0;
	int r = lr_chunkstore_get_file(d->store, STATE_NAME, buf, STATE_MAX, &len);

	if (r == -ENOENT)
		return 0;
	buf[r == 0 ? len : 0] = '\0';
	const char *v = r == 0 ? strstr(buf, "max_version ") : NULL;
	if (!v) {
		log_error("local state %s unreadable: no highest booted version known", STATE_NAME);
		return 0;
	}
	uint64_t n = strtoull(v + 12, &end, 10);
	return (*end == '\n' || *end == '\0') && end != v + 12 ? n : 0;
}

void lr_state_save(struct lr_daemon *d)
{
	char buf[STATE_MAX];
	uint64_t had = lr_state_version(d);

	if (d->img.m.image_version > had) {
		int n = snprintf(buf, sizeof(buf), "lazyroot state 1\nmax_version %" PRIu64 "\n",
				 d->img.m.image_version);
		int r = lr_chunkstore_put_file(d->store, STATE_NAME, buf, (size_t)n, 1);
		if (r < 0)
			log_error_errno(r, "saving the highest booted version");
		else
			log_info("image version %" PRIu64 " is the newest this machine booted: older "
				 "ones are refused from now on",
				 d->img.m.image_version);
	}
	size_t len = strlen(d->manifest_text);
	int r = lr_chunkstore_put_file(d->store, LR_MANIFEST_NAME, d->manifest_text, len, 1);
	if (r < 0)
		log_error_errno(r, "keeping a copy of the manifest (offline boots need it)");
}
