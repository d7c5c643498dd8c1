/* PLACEHOLDER - replaced by the real subcommand. */
#include <stdio.h>
#include "cli/cli.h"
static int run(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "cutover: verify is not built yet\n"); return CUT_EXIT_ERROR; }
const cli_cmd cmd_verify = {"verify", "(not built yet)", "usage: cutover verify (not built yet)\n", run};
