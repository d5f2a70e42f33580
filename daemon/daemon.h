/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 4: the Daemon context owns the loop, the bus, the store and every
 * module, and wires them together. */

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-manager.h"
#include "config.h"

typedef struct Daemon Daemon;

int daemon_new(const char *config_path, Daemon **ret);
Daemon *daemon_free(Daemon *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(Daemon *, daemon_free)

/* Run until SIGTERM/SIGINT; returns 0 on a clean stop. */
int daemon_run(Daemon *d);
