/* berth: the table of subcommands. Each lives in a file of its own
 * (cli_<name>.c) and returns the process's exit status. */
#include <stdio.h>
#include <string.h>

#include "registry/server.h"

static int
cli_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("berth %s\n", BERTH_VERSION);
	return 0;
}

static const struct command {
	const char *name, *help;
	int (*run)(int argc, char **argv);
} commands[] = {
        {"serve", "run the registry (berth serve --help)", cli_serve},
        {"auth",
         "keys, password hashes and tokens for token auth (berth auth "
         "--help)",
         cli_auth},
        {"gc", "collect garbage on a running server now (berth gc --help)",
         cli_gc},
        {"rm", "delete tags or repositories on a server (berth rm --help)",
         cli_rm},
        {"ls", "list tags, sizes and expiry on a server (berth ls --help)",
         cli_ls},
        {"backup",
         "stream a consistent backup of a running server (berth backup "
         "--help)",
         cli_backup},
        {"restore",
         "restore a backup into a stopped registry's data directory "
         "(berth restore --help)",
         cli_restore},
        {"check",
         "verify a stopped registry's data directory, --repair what is "
         "safe (berth check --help)",
         cli_check},
        {"version", "print the version", cli_version},
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: berth <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "  %-10s this text\n", "help");
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--version") == 0)
		return cli_version(0, NULL);
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 2, argv + 2);
	fprintf(stderr, "berth: unknown command '%s' (berth --help)\n",
	        argv[1]);
	return 2;
}
