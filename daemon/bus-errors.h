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
