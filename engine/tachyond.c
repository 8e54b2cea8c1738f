/* SPDX-License-Identifier: MIT */
/*
 * tachyond: the Tachyon MQTT broker daemon, a thin program over libtachyon.
 * Configuration from --config FILE and flags (flags win), SIGTERM/SIGINT: graceful shutdown
 * (wills per the spec, DISCONNECT 0x8B to MQTT 5 clients), SIGHUP: reload the password file,
 * the ACL file and the log level. Exit code 0 after a clean stop, 1 on a start-up error,
 * 2 on a usage error.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "eng_config.h"
#include "tachyon.h"

#ifdef TACHYON_JEMALLOC
/* jemalloc returns freed pages to the kernel as they age, but without a thread of its own it
 * does so only when the program allocates: after a burst of connects (CONNECT claims, tables
 * outgrown), an idle broker kept about 58 B per connection of freed pages resident for good
 * (100k idle over memif: 1,032 B per connection, 974 B after 20 s idle with the thread). Its
 * background thread is no part of the data path. MALLOC_CONF in the environment still
 * applies on top. The daemon's choice only: a host embedding libtachyon keeps its own. */
const char *malloc_conf = "background_thread:true";
#endif

static struct tachyon *engine;

static void on_stop(int sig)
{
	(void)sig;
	if (engine)
		tachyon_stop(engine);
}

static void on_hup(int sig)
{
	(void)sig;
	if (engine)
		tachyon_reload(engine);
}

int main(int argc, char **argv)
{
	struct eng_config cfg;
	struct sigaction sa;
	char err[1024];
	int rc;

	eng_config_defaults(&cfg);
	rc = eng_config_args(&cfg, argc, argv, stdout, err, sizeof(err));
	if (rc == 1)
		return 0;
	if (rc < 0) {
		fprintf(stderr, "tachyond: %s\n", err);
		return 2;
	}
	engine = tachyon_create(&cfg, err, sizeof(err));
	if (!engine) {
		fprintf(stderr, "tachyond: %s\n", err);
		return 1;
	}
	tachyon_set_reload_args(engine, argc, argv);
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	rc = tachyon_start(engine);
	if (rc != 0) {
		fprintf(stderr, "tachyond: cannot start the workers: %s\n", strerror(-rc));
		tachyon_destroy(engine);
		return 1;
	}
	rc = tachyon_run(engine);
	tachyon_destroy(engine);
	return rc == 0 ? 0 : 1;
}
