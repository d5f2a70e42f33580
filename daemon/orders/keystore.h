/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: owner of the keys table (sealed private keys; keys.c makes and opens them). Each
 * function runs inside the caller's transaction, if any. Loop thread only. */

#include <stddef.h>
#include <stdint.h>

#include "store.h"

int keys_store_insert(Store *s, const char *algorithm, const uint8_t *sealed, size_t len, uint64_t *ret_id);
/* The sealed key (g_free() it); -ENOENT when there is no such key. */
int keys_store_get(Store *s, uint64_t id, uint8_t **ret_sealed, size_t *ret_len);
