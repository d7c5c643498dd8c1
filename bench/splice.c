/*
 * splice.c - times a switch's commit alone: sync_switched_splice of one
 * record into a base, as `cutover switch` does after its users' passes
 * (bench/splice.sh builds it against a libcutover.a and runs it).
 *
 * usage: splice DIR BASE SUBTREE RECORD OUT
 *   DIR      the directory RECORD is relative to (a state directory's role)
 *   BASE     the base manifest
 *   SUBTREE  the switched subtree (example.com/alice)
 *   RECORD   its scan, relative to DIR
 *   OUT      the base written with the record in place of the subtree
 * Prints the seconds the call took; exits 1 when it failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>

#include "sync/sync.h"

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: splice DIR BASE SUBTREE RECORD OUT\n");
		return 2;
	}
	char *path[] = {argv[3]}, *record[] = {argv[4]};
	bool done[] = {false};
	sync_switched s = {.n = 1, .path = path, .record = record, .done = done};
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	int rc = sync_switched_splice(argv[1], &s, argv[2], argv[5]);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.3f\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
	return rc != 0;
}
