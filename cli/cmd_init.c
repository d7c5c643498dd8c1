/* PLACEHOLDER - replaced by the real subcommand. */
#include <stdio.h>
#include "cli/cli.h"
static int run(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "cutover: init is not built yet\n"); return CUT_EXIT_ERROR; }
const cli_cmd cmd_init = {"init", "(not built yet)", "usage: cutover init (not built yet)\n", run};
