/* PLACEHOLDER - replaced by the real subcommand. */
#include <stdio.h>
#include "cli/cli.h"
static int run(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "cutover: replay is not built yet\n"); return CUT_EXIT_ERROR; }
const cli_cmd cmd_replay = {"replay", "(not built yet)", "usage: cutover replay (not built yet)\n", run};
