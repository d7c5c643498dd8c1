/*
 * path.h - relative paths as cutover stores them, and their one canonical order.
 *
 * A path is relative to the scanned root, raw bytes, components separated by
 * '/', never a NUL, never an empty, "." or ".." component, no leading or
 * trailing '/'.  The root itself is the empty path "".
 *
 * Canonical order (FORMAT.md section "Order"): compare byte by byte as
 * unsigned, as if '/' were smaller than every other byte; a prefix sorts
 * first.  So a directory comes right before its contents, and a depth-first
 * walk that visits siblings in memcmp order of their names yields it.
 */
#ifndef CUTOVER_PATH_H
#define CUTOVER_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* Names cutover itself makes on a target and removes again: replay's
 * temporaries and the log's parking names for renames that wait (swaps,
 * cycles).  A scan never records them (FORMAT.md, "Reserved names"). */
#define FMT_RESERVED_REPLAY ".cutover-tmp."
#define FMT_RESERVED_REPLAY_LEN (sizeof FMT_RESERVED_REPLAY - 1)
#define FMT_RESERVED_DIFF ".~cutover."
/* True when name starts with either reserved prefix. */
bool fmt_name_reserved(const char *name, size_t len);
/* True when a component of path (len bytes) starts with FMT_RESERVED_REPLAY.
 * A change log may name the diff's parking names (they are its own), never
 * replay's temporaries: replay refuses such a log. */
bool fmt_path_names_replay_temp(const char *path, size_t len);

/* The maildir policy's transients (docs/INCREMENTAL.md, "The maildir
 * policy"): Dovecot's lock files (a name ending in ".lock", not a
 * directory) and whatever a tmp/ directory holds (partial deliveries, renamed
 * into new/ or cur/ when whole).  Scans leave them out; replay, removing a
 * directory the source removed, removes them with it. */
bool fmt_maildir_lock_name(const char *name, size_t len);
bool fmt_maildir_tmp_dir(const char *path, size_t len);

/* <0, 0, >0 as a sorts before, equal to, after b in canonical order. */
int fmt_path_cmp(const char *a, size_t al, const char *b, size_t bl);

/* True when p is a valid stored path (see above); "" is valid (the root). */
bool fmt_path_valid(const char *p, size_t len);

/* Length of p's parent ("" has none: returns 0 for top-level names and for ""). */
size_t fmt_path_parent_len(const char *p, size_t len);

/* The last component of p. */
const char *fmt_path_base(const char *p, size_t len, size_t *base_len);

/* True when p lies strictly beneath dir ("" contains everything but itself). */
bool fmt_path_is_under(const char *p, size_t len, const char *dir, size_t dlen);

#endif
