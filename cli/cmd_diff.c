/* PLACEHOLDER - replaced by the real subcommand. */
#include <stdio.h>
#include "cli/cli.h"
static int run(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "cutover: diff is not built yet\n"); return CUT_EXIT_ERROR; }
const cli_cmd cmd_diff = {"diff", "(not built yet)", "usage: cutover diff (not built yet)\n", run};
