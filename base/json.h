/*
 * json.h - the one JSON string writer of cutover's machine-readable output:
 * `show --format jsonl`, `report --json`, `verify --json` and
 * `status --json` all write their strings through it, so that every output
 * escapes a name the same, reversible way (docs/cutover.1, JSON OUTPUT):
 *   - valid UTF-8 is written as UTF-8;
 *   - '"' and '\' as \" and \\, control characters (< 0x20, 0x7f) as \n, \t,
 *     \r or \u00XX;
 *   - each byte that is not part of a valid UTF-8 sequence as the lone
 *     surrogate \udcXX (XX = the byte), as Python's "surrogateescape" does.
 * Valid UTF-8 never holds a lone surrogate, so a reader gets the exact bytes
 * back: json.loads(line)["path"].encode("utf-8", "surrogateescape").
 *
 * Self-contained (it needs only cut_buf from util.h), so that it can move
 * with util.c to the shared room.
 */
#ifndef CUTOVER_JSON_H
#define CUTOVER_JSON_H

#include <stddef.h>
#include <stdio.h>

#include "base/util.h"

/* Appends s[0..n) as a quoted JSON string to b. */
void cut_json_str(cut_buf *b, const char *s, size_t n);
/* Writes s[0..n) as a quoted JSON string to f (stdio errors are left for the
 * caller's fflush/ferror). */
void cut_json_fstr(FILE *f, const char *s, size_t n);
/* Writes v as a JSON number with three decimals, or null when it is not
 * finite (JSON has no NaN or infinity). */
void cut_json_fnum(FILE *f, double v);

#endif
