/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1: reading GKeyFile text (the config and its drop-ins, spool sidecars)
 * with errors a user can act on: bounded reads, parse errors that name the
 * line, values quoted safely. */

#include "error.h"
#include "macro.h"

/* After macro.h: GLib #undefs MIN/MAX before defining its own, macro.h does not. */
#include <glib.h>

/* Values and group names are echoed in error messages, and a spool sidecar is
 * written by an unprivileged user: control characters (and every byte of
 * invalid UTF-8) become \xNN, and the result is cut at 200 bytes. Returns a
 * GLib string. */
char *escape_for_message(const char *s);

/* Reads a whole regular file of at most max bytes, NUL-terminated (g_free()
 * it, wiping it first if it may hold a secret). -ENOENT as open() says,
 * -EISDIR, -EBADFD for other non-regular files, -EFBIG when too large. */
int keyfile_read(const char *path, size_t max, char **ret_data, size_t *ret_len);

/* Parses GKeyFile data. Errors (-EINVAL) read "ORIGIN:LINE: message", or
 * "line LINE: message" when origin is NULL. Refuses NUL bytes and localized
 * keys ("Key[de]="), which GKeyFile would silently hide from
 * g_key_file_get_keys(). */
int keyfile_parse(const char *origin, const char *data, size_t len, GKeyFile **ret, char **ret_error);
