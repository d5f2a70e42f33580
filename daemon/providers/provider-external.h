/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: the external-CA provider. Each [ExternalCA "NAME"] section names a
 * helper program speaking certmonger's CA-helper protocol (CERTMONGER_OPERATION
 * SUBMIT/POLL/IDENTIFY/FETCH-ROOTS in the environment, the answer in the exit
 * status and on stdout), so existing certmonger helpers work unchanged. */

#include "config.h"
#include "provider.h"

/* Creates the provider named c->name; nothing is run yet. Fails with -EINVAL
 * and *ret_error when the configuration cannot work (no helper given). */
int provider_external_new(const ExternalCaConfig *c, Provider **ret, char **ret_error);
