/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: the Local PKI CA's lifetime: created on first start per
 * [LocalCA], its key sealed in the store, loaded again on every later start. */

#include "ca.h"
#include "config.h"
#include "keys.h"
#include "store.h"

typedef struct LocalCa {
        Ca *ca;
        uint64_t id;            /* row in table ca */
        uint64_t key_id;
        char *pem;              /* the CA certificate */
        bool created;           /* made during this start */
} LocalCa;

LocalCa *local_ca_free(LocalCa *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(LocalCa *, local_ca_free)

/* Loads the newest CA from the store or creates one. Also writes the CA
 * certificate to state_dir/ca/ca.pem (0644) for admins and web servers. */
int local_ca_open(Store *s, const MasterKey *mk, const Config *c, const char *state_dir, LocalCa **ret,
                  char **ret_error);

/* Inside a transaction: takes the CA's next CRL number (they only ever grow). */
int local_ca_next_crl_number(Store *s, uint64_t ca_id, uint64_t *ret);
