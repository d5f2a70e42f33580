/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 3: the named errors of the D-Bus contract, in one table. */

#include <systemd/sd-bus.h>

#include "macro.h"

/* The error names are in dbus/certkeeper-names.h, shared with certkeeperctl. */
#include "dbus/certkeeper-names.h"

/* Registers the errno mapping of our names with sd-bus. */
extern const sd_bus_error_map certkeeper_error_map[];

/* Reply with a named error and a printf message; returns the negative errno
 * matching the name, for "return bus_error_setf(...)" in handlers. */
int bus_error_setf(sd_bus_error *error, const char *name, const char *fmt, ...) _printf_(3, 4);

/* For internal failures (store, OOM): a storage error that says what failed. */
int bus_error_internal(sd_bus_error *error, int r, const char *what);

/* The end of a call answered later, from a job's done callback: answer_r and *error are what
 * the answering code returned and set. When it set an error, or failed (answer_r < 0, then
 * an internal error saying what), that error is the reply; else it has replied already. */
void bus_reply_deferred_error(sd_bus_message *m, int answer_r, sd_bus_error *error, const char *what);
