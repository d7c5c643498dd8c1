/* json.h - JSON string output with reversible escaping of non-UTF-8 bytes (json.c). */
#ifndef CUTOVER_JSON_H
#define CUTOVER_JSON_H
#include <stddef.h>
#include <stdio.h>
void cli_json_str(FILE *f, const char *s, size_t n);
#endif
