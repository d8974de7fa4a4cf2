/* SPDX-License-Identifier: MIT */
#include "image.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lr-limits.h"

int lr_image_init(struct lr_image *img, const struct lr_manifest *m)
{
	memset(img, 0, sizeof(*img));
	img->m = *m;
	img->nchunks = lr_tree_chunks(m->image_size, m->chunk_size);
	img->cached = calloc((size_t)(img->nchunks + 7) / 8, 1);
	img->nodes = calloc(LR_NODE_CACHE, sizeof(*img->nodes));
	if (!img->cached || !img->nodes) {
		lr_image_fini(img);
		return -ENOMEM;
	}
	return 0;
}

void lr_image_fini(struct lr_image *img)
{
	free(img->cached);
	free(img->nodes);
	img->cached = NULL;
	img->nodes = NULL;
}

int lr_image_chunk_cached(const struct lr_image *img, uint64_t c)
{
	return c < img->nchunks && (img->cached[c / 8] >> (c % 8)) & 1;
}

void lr_image_set_cached(struct lr_image *img, uint64_t c)
{
	if (c < img->nchunks && !lr_image_chunk_cached(img, c)) {
		img->cached[c / 8] |= (uint8_t)(1u << (c % 8));
		img->ncached++;
	}
}

void lr_image_chunk_range(const struct lr_image *img, uint64_t c, uint64_t *off, uint32_t *len)
{
	uint64_t o = c * img->m.chunk_size;
	uint64_t l = img->m.image_size - o;

	*off = o;
	*len = l < img->m.chunk_size ? (uint32_t)l : img->m.chunk_size;
}

uint32_t lr_image_node_len(const struct lr_image *img, uint32_t level, uint64_t idx)
{
	return lr_tree_node_entries(img->nchunks, level, idx) * LR_DIGEST_LEN;
}

const struct lr_node *lr_image_node(struct lr_image *img, uint32_t level, uint64_t idx)
{
	for (unsigned i = 0; i < LR_NODE_CACHE; i++) {
		struct lr_node *n = &img->nodes[i];
		if (n->level == level && n->idx == idx) {
			n->lru = ++img->lru_clock;
			return n;
		}
	}
	return NULL;
}

void lr_image_node_put(struct lr_image *img, uint32_t level, uint64_t idx, const void *data,
		       uint32_t len)
{
	struct lr_node *victim = &img->nodes[0];

	if (len > LR_NODE_SIZE || level == 0)
		return;
	for (unsigned i = 0; i < LR_NODE_CACHE; i++) {
		struct lr_node *n = &img->nodes[i];
		if (n->level == level && n->idx == idx)
			return; /* already there */
		if (n->level == 0) {
			victim = n;
			break;
		}
		/* The top node is needed by every path: never evict it. */
		if (n->level != img->m.depth && (victim->level == img->m.depth || n->lru < victim->lru))
			victim = n;
	}
	victim->level = level;
	victim->idx = idx;
	victim->len = len;
	victim->lru = ++img->lru_clock;
	memcpy(victim->data, data, len);
}

int lr_image_expected(struct lr_image *img, uint32_t level, uint64_t idx, struct lr_digest *out)
{
	if (level == img->m.depth) {
		if (idx != 0)
			return -EINVAL;
		*out = img->m.root;
		return 0;
	}
	if (level > img->m.depth)
		return -EINVAL;
	const struct lr_node *p = lr_image_node(img, level + 1, idx / LR_NODE_FANOUT);
	if (!p)
		return -EAGAIN;
	uint32_t slot = (uint32_t)(idx % LR_NODE_FANOUT);
	if ((slot + 1) * LR_DIGEST_LEN > p->len)
		return -EINVAL;
	memcpy(out->b, p->data + slot * LR_DIGEST_LEN, LR_DIGEST_LEN);
	return 0;
}
