/* SPDX-License-Identifier: MIT */
/* libFuzzer target: hash-tree geometry and node lookups for arbitrary
 * image sizes, chunk sizes, node contents and indices. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lr_manifest m = { 0 };
	struct lr_image img;
	struct lr_digest d;
	uint64_t v[3];

	if (size < sizeof(v))
		return 0;
	memcpy(v, data, sizeof(v));
	data += sizeof(v);
	size -= sizeof(v);
	/* Sizes as a manifest that parsed would have them. */
	m.chunk_size = 4096u << (v[0] % 9);
	m.image_size = ((v[1] % (1ull << 34)) / 4096 + 1) * 4096; /* up to 16 GiB */
	uint64_t n = lr_tree_chunks(m.image_size, m.chunk_size);
	m.depth = lr_tree_depth(n);
	if (m.depth < 1 || m.depth > LR_TREE_DEPTH_MAX)
		abort();
	if (lr_tree_nodes(n, m.depth) != 1)
		abort();
	if (lr_image_init(&img, &m) < 0)
		return 0;
	/* Feed nodes from the input, then look up chunk digests. */
	while (size >= 9) {
		uint32_t level = 1 + data[0] % m.depth;
		uint64_t idx;
		memcpy(&idx, data + 1, 8);
		idx %= lr_tree_nodes(n, level) + 1;
		data += 9;
		size -= 9;
		uint32_t want = lr_image_node_len(&img, level, idx);
		uint32_t len = size < want ? (uint32_t)size : want;
		lr_image_node_put(&img, level, idx, data, len);
		data += len;
		size -= len;
		uint64_t c = (idx * LR_NODE_FANOUT + (v[2] % LR_NODE_FANOUT)) % n;
		lr_image_expected(&img, 0, c, &d);
		lr_image_expected(&img, level, idx, &d);
	}
	lr_image_fini(&img);
	return 0;
}
