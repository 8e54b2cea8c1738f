/* SPDX-License-Identifier: MIT */
/*
 * libtachyon: the MQTT broker engine as a library. One public header, opaque handle.
 *
 * Life cycle: tachyon_create() validates the configuration, opens the transport (listeners)
 * and allocates every core; tachyon_start() starts the worker threads; tachyon_run() runs the
 * control loop on the calling thread until tachyon_stop() is called (from any thread or a
 * signal handler), then shuts down gracefully (wills per the spec, DISCONNECT 0x8B to MQTT 5
 * clients, output flushed) and joins the workers; tachyon_destroy() frees everything.
 *
 * Not yet in this version (see the engine report): host publish/subscribe, auth/ACL/intercept
 * hooks for embedders and the dlopen plugin ABI.
 */
#ifndef TACHYON_H
#define TACHYON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tachyon;
struct eng_config;

/*
 * Creates an engine from cfg (copied). Returns NULL with a message in err[0..errlen) when the
 * configuration is unusable, a file it names cannot be read, or the transport cannot start
 * (e.g. "--backend dpdk" in a build without DPDK). Call from the thread that will run
 * tachyon_run().
 */
struct tachyon *tachyon_create(const struct eng_config *cfg, char *err, size_t errlen);

/* The TCP port the listeners are bound to. */
uint16_t tachyon_port(const struct tachyon *t);

/* Starts the worker threads. Returns 0 or -errno. */
int tachyon_start(struct tachyon *t);

/*
 * Runs the control loop on the calling thread until tachyon_stop(); then shuts down
 * gracefully and returns 0 (or -errno if the shutdown failed).
 */
int tachyon_run(struct tachyon *t);

/* Asks the engine to stop. Any thread; async-signal-safe. */
void tachyon_stop(struct tachyon *t);

/*
 * Asks the control thread to reload what can be reloaded: the password file, the ACL file and
 * the log level, from the configuration file when one was given to tachyon_set_reload_args().
 * Any thread; async-signal-safe.
 */
void tachyon_reload(struct tachyon *t);

/* Remembers the command line, re-parsed (file + flags) on reload. argv is borrowed for the
 * engine's lifetime. Call before tachyon_run(). */
void tachyon_set_reload_args(struct tachyon *t, int argc, char **argv);

/* Frees the engine. tachyon_run() must have returned (or never been called). */
void tachyon_destroy(struct tachyon *t);

#ifdef __cplusplus
}
#endif

#endif /* TACHYON_H */
