/* SPDX-License-Identifier: MIT */
/*
 * Plugins: shared objects named by "plugin PATH" options, loaded by tachyon_create() with
 * dlopen(). Each must export the data symbol tachyon_plugin_abi (checked against
 * TACHYON_PLUGIN_ABI before anything else of the plugin runs) and the function
 * tachyon_plugin_init(), which registers hooks through the public API; the optional
 * tachyon_plugin_cleanup() runs at tachyon_destroy(), after every engine thread has stopped,
 * and the object is closed last. Every failure names the file and what is wrong: missing or
 * unloadable file, missing symbol, ABI mismatch, init refused.
 *
 * The public functions a plugin calls are exported from the program (tachyond links with
 * --export-dynamic and the API carries default visibility), so a plugin is built against
 * tachyon.h only and links nothing of the engine.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_internal.h"

struct eng_plugin {
	struct eng_plugin *next;
	void *dl;
	tachyon_plugin_cleanup_fn cleanup;
	void *data;
};

/* Options of the plugin whose "P" line starts at rec: its "O name=value" lines after it. */
static int plugin_opts(const char *rec, char *copy, struct tachyon_plugin_opt *opts, unsigned *n)
{
	const char *p = strchr(rec, '\n');
	char *w = copy;

	*n = 0;
	while (p && p[1] == 'O') {
		const char *line = p + 2, *end = strchr(line, '\n'), *eq = strchr(line, '=');
		size_t len = (size_t)(end - line);
		if (*n == ENG_CONFIG_PLUGINS / 4)
			return -E2BIG;
		memcpy(w, line, len);
		w[len] = '\0';
		w[eq - line] = '\0';
		opts[*n].key = w;
		opts[*n].value = w + (eq - line) + 1;
		(*n)++;
		w += len + 1;
		p = end;
	}
	return 0;
}

static int plugin_load(struct tachyon *e, const char *rec, char *err, size_t errlen)
{
	struct tachyon_plugin_opt *opts = NULL;
	struct tachyon_plugin_info info = {.abi = TACHYON_PLUGIN_ABI};
	const char *end = strchr(rec, '\n');
	char path[ENG_CONFIG_PLUGINS], *copy = NULL;
	const uint32_t *abi;
	tachyon_plugin_init_fn init;
	struct eng_plugin *pl = NULL;
	void *dl = NULL, *sym;
	bool called = false;
	int rc = -EINVAL;

	memcpy(path, rec + 1, (size_t)(end - rec - 1));
	path[end - rec - 1] = '\0';
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		snprintf(err, errlen, "plugin %s: cannot load: %s", path, dlerror());
		return -ENOENT;
	}
	abi = dlsym(dl, "tachyon_plugin_abi");
	if (!abi) {
		snprintf(err, errlen,
			 "plugin %s: no symbol tachyon_plugin_abi (not a tachyon plugin?)", path);
		goto fail;
	}
	if (*abi != TACHYON_PLUGIN_ABI) {
		snprintf(err, errlen, "plugin %s: built for plugin ABI %u, this engine has ABI %u",
			 path, *abi, TACHYON_PLUGIN_ABI);
		goto fail;
	}
	sym = dlsym(dl, "tachyon_plugin_init");
	if (!sym) {
		snprintf(err, errlen, "plugin %s: no symbol tachyon_plugin_init", path);
		goto fail;
	}
	/* POSIX: a dlsym() result converts to the function pointer type it names */
	memcpy(&init, &sym, sizeof(init));
	pl = calloc(1, sizeof(*pl));
	copy = malloc(ENG_CONFIG_PLUGINS);
	opts = calloc(ENG_CONFIG_PLUGINS / 4, sizeof(*opts));
	if (!pl || !copy || !opts) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	if (plugin_opts(rec, copy, opts, &info.nopts) != 0) {
		snprintf(err, errlen, "plugin %s: too many options", path);
		goto fail;
	}
	info.path = path;
	info.opts = opts;
	called = true;
	rc = init(e, &info, &pl->data);
	if (rc != 0) {
		snprintf(err, errlen, "plugin %s: initialisation failed: %s", path,
			 strerror(rc < 0 ? -rc : rc));
		rc = rc < 0 ? rc : -rc;
		goto fail;
	}
	sym = dlsym(dl, "tachyon_plugin_cleanup");
	memcpy(&pl->cleanup, &sym, sizeof(pl->cleanup));
	pl->dl = dl;
	pl->next = e->plugins;
	e->plugins = pl;
	free(copy);
	free(opts);
	ENG_NOTICE("plugin %s loaded (%u option%s)", path, info.nopts, info.nopts == 1 ? "" : "s");
	return 0;
fail:
	/* an init that failed half-way may have registered hooks: the engine is abandoned
	 * (tachyon_create fails) so they are never called, but the object stays mapped until
	 * then; no cleanup for an init that failed */
	if (called) {
		pl->dl = dl;
		pl->cleanup = NULL;
		pl->next = e->plugins;
		e->plugins = pl;
		pl = NULL;
		dl = NULL;
	}
	free(pl);
	free(copy);
	free(opts);
	if (dl)
		dlclose(dl);
	return rc;
}

int eng_plugins_load(struct tachyon *e, char *err, size_t errlen)
{
	const char *p = e->cfg.plugins;

	while (*p) {
		if (*p == 'P') {
			int rc = plugin_load(e, p, err, errlen);
			if (rc != 0)
				return rc;
		}
		p = strchr(p, '\n') + 1;
	}
	return 0;
}

void eng_plugins_unload(struct tachyon *e)
{
	/* newest first: a later plugin may use what an earlier one set up */
	while (e->plugins) {
		struct eng_plugin *pl = e->plugins;
		e->plugins = pl->next;
		if (pl->cleanup)
			pl->cleanup(pl->data);
		dlclose(pl->dl);
		free(pl);
	}
}
