/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: getting certificates (and, where we hold it, the key) out. */

#include "keys.h"
#include "store.h"

/* The leaf as PEM, with the issuing chain up to the root when chain=true. */
int export_pem(Store *s, uint64_t certificate_id, bool chain, char **ret_pem);

/* PKCS#12 with leaf, chain and key under a fresh random password (returned,
 * to be wiped by the caller). -ENOKEY when we do not hold the key. */
int export_pfx(Store *s, const MasterKey *mk, uint64_t certificate_id, bool legacy, uint8_t **ret_pfx,
               size_t *ret_len, char **ret_password);

/* export_pfx() in two halves, so that the PKCS#12 file (PBKDF2 rounds, encryption: a few
 * ms) is built off the loop: export_pfx_prepare() reads what it needs from the store (loop
 * thread; -ENOKEY as above), export_pfx_build() makes the file (any thread). */
typedef struct PfxSource PfxSource;
int export_pfx_prepare(Store *s, uint64_t certificate_id, PfxSource **ret);
int export_pfx_build(const PfxSource *src, const MasterKey *mk, bool legacy, uint8_t **ret_pfx, size_t *ret_len,
                     char **ret_password);
PfxSource *pfx_source_free(PfxSource *src);
DEFINE_TRIVIAL_CLEANUP_FUNC(PfxSource *, pfx_source_free)
