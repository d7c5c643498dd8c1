/*
 * hash.c - content hashes for manifests: XXH3-128 of the whole file, stored
 * in xxHash's canonical (big-endian) byte order.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/budget.h"
#include "scanner/internal.h"

#ifndef O_NOATIME
#define O_NOATIME 0
#endif

int scan_hash_file(int dirfd, const char *name, uint8_t out[16], uint64_t *bytes)
{
	/* O_NOATIME keeps a nightly scan from touching every atime; it is only
	 * allowed to the owner or root, so retry without it. */
	budget_req q = budget_src(budget_lookups(name) + 1, 0); /* and the OPEN */
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
	int e = errno;
	budget_src_done(q);
	if (fd < 0 && e == EPERM) {
		q = budget_src(1, 0);
		fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		e = errno;
		budget_src_done(q);
	}
	if (fd < 0)
		return -e;
#ifdef POSIX_FADV_SEQUENTIAL
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
	XXH3_state_t st;
	XXH3_128bits_reset(&st);
	size_t bufsz = 256u << 10;
	char *buf = cut_malloc(bufsz);
	uint64_t total = 0;
	int rc = 0;
	for (;;) {
		budget_req rq = budget_src(0, 0);
		ssize_t n = read(fd, buf, bufsz);
		int re = errno;
		/* charged once its length is known, paid by the next charge; the
		 * read at the end asks the server nothing (the size is known) */
		if (n > 0)
			budget_src_after(rq, budget_reads((uint64_t)n), (uint64_t)n);
		else
			budget_src_none(rq);
		errno = re;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		XXH3_128bits_update(&st, buf, (size_t)n);
		total += (uint64_t)n;
	}
	free(buf);
	close(fd);
	if (rc == 0) {
		XXH128_canonical_t c;
		XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&st));
		memcpy(out, c.digest, 16);
		*bytes = total;
	}
	return rc;
}
