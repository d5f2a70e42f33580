/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: the certificate inventory in the store. Lists are answered from
 * the covering index (or a copy of its rows in memory) and never parse
 * certificates; Status and DaysUntilExpiry are computed from the time of the
 * read. Loop thread only. */

#include "macro.h"
#include "store.h"
#include "x509.h"

typedef struct CertRow {
        uint64_t id;
        char *fingerprint;
        char *common_name;
        char **sans;
        char *subject;
        char *issuer;
        char *provider;
        char *algorithm;
        char *digest;
        uint64_t not_before;
        uint64_t not_after;
        char *serial;
        char *source;
        uint64_t key_id;
        uint64_t order_id;
        uint64_t ca_id;
        uint64_t revoked_at;
        char *revocation_reason;
        char *revocation_propagation;
        bool present;
        char **paths;
} CertRow;

CertRow *cert_row_free(CertRow *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(CertRow *, cert_row_free)

const char *cert_status(uint64_t revoked_at, uint64_t not_after, uint64_t now);
/* Whole days from now until not_after, rounded down; negative once expired. */
int64_t days_until(uint64_t not_after, uint64_t now);

int inventory_get(Store *s, uint64_t id, CertRow **ret);                  /* -ENOENT */
/* The certificate's DER and its stored chain (PEM, "" if none), both GLib: g_free() them. */
int inventory_get_der(Store *s, uint64_t id, uint8_t **ret_der, size_t *ret_len, char **ret_chain_pem);
int inventory_find_fingerprint(Store *s, const char *fp, uint64_t *ret_id); /* -ENOENT */
int inventory_count(Store *s, uint64_t *ret);
bool inventory_exists(Store *s, uint64_t id);

typedef struct CertFilter {
        const char *source;             /* NULL = any */
        const char *status;             /* NULL = any; active|expired|revoked */
        const char *cn_glob;            /* NULL = any; shell glob, case-insensitive */
        const char *name;               /* NULL = any; certificates whose CN or any SAN covers this DNS
                                         * name (exactly, or by a wildcard one label up), IP address
                                         * (by value) or URI (normalised, exactly): san_lookup_form() */
        bool expiring;                  /* expiring_within_days given */
        uint32_t expiring_within_days;
        uint32_t offset;
        uint32_t limit;                 /* 0 = no limit */
} CertFilter;

typedef struct CertListEntry {
        uint64_t id;
        const char *common_name;
        const char *status;
        const char *source;
        const char *issuer;
        uint64_t not_after;
        int64_t days_until_expiry;
} CertListEntry;

typedef int (*CertListFunc)(void *userdata, const CertListEntry *e);
/* Full and status-filtered lists are answered from an in-memory copy of the index rows, filled
 * by the first such list and dropped by a TEMP trigger on any change to certificates; globs,
 * pages and expiry windows read SQL unless that copy is current. The entry's strings are valid
 * during the callback only, which must not change the store. */
int inventory_list(Store *s, const CertFilter *f, uint64_t now, CertListFunc cb, void *userdata);
/* The same list from SQL alone (the definition; tests compare the two). */
int inventory_list_sql(Store *s, const CertFilter *f, uint64_t now, CertListFunc cb, void *userdata);
/* Every certificate in pages, by ascending id (for the metrics file): the rows with id >
 * after_id, at most limit of them. Strings are valid during the callback only. The caller
 * pages on with the last id it saw; a page reads limit rows of the table, never the whole of
 * it. inventory_scan_files() gives the number of files of a range of ids. */
typedef struct CertScanEntry {
        uint64_t id;
        const char *common_name;
        const char *source;
        const char *provider;
        const char *fingerprint;
        uint64_t not_before;
        uint64_t not_after;
        uint64_t revoked_at;
} CertScanEntry;
typedef int (*CertScanFunc)(void *userdata, const CertScanEntry *e);
int inventory_scan(Store *s, uint64_t after_id, unsigned limit, CertScanFunc cb, void *userdata);
/* The number of files each certificate with after_id < id <= last_id was found in, for those
 * found in any (ascending id). Reads the paths of that range only. */
typedef int (*CertFilesFunc)(void *userdata, uint64_t id, unsigned n_files);
int inventory_scan_files(Store *s, uint64_t after_id, uint64_t last_id, CertFilesFunc cb, void *userdata);

/* All ids, ascending, for the bus node enumerator. */
int inventory_list_ids(Store *s, uint64_t **ret, size_t *ret_n);

typedef struct CertInsert {
        const CertInfo *info;
        const char *provider;
        const char *source;             /* managed|discovered */
        uint64_t key_id;                /* 0 = none */
        uint64_t order_id;
        uint64_t ca_id;
        const char *chain_pem;          /* may be NULL */
} CertInsert;

/* Inside a transaction. -EEXIST if the fingerprint is already there (*ret_id is
 * then the existing row). */
int inventory_insert(Store *s, const CertInsert *c, uint64_t *ret_id);

/* Inside a transaction: a certificate already in the store (discovered on disk, or handed back
 * again by a CA) becomes managed by order_id, from provider; key_id (0 = none) and order_id
 * fill only what it lacks. */
int inventory_adopt(Store *s, uint64_t id, const char *provider, uint64_t key_id, uint64_t order_id);
/* Inside a transaction: records the revocation of a certificate not revoked yet (a revoked
 * one is left as it is). */
int inventory_set_revoked(Store *s, uint64_t id, uint64_t revoked_at, const char *reason,
                          const char *propagation);
/* What became of a revocation at the provider ("pending", "propagated to …"). */
int inventory_set_propagation(Store *s, uint64_t id, const char *state);
/* The revoked certificates a CA issued, for its CRL (on the certificates_revoked index). reason
 * may be NULL; the strings are valid during the callback only, which must not change the store. */
typedef int (*CertRevokedFunc)(void *userdata, const char *serial, uint64_t revoked_at, const char *reason);
int inventory_list_revoked(Store *s, uint64_t ca_id, CertRevokedFunc cb, void *userdata);

/* For the expiry checks: the certificates that can expire on someone (not revoked; managed, or
 * discovered and still present on disk). Strings are valid during the callback only, which must
 * not change the store. */
typedef struct CertExpiringEntry {
        uint64_t id;
        const char *fingerprint;
        const char *common_name;
        const char *source;
        uint64_t not_after;
} CertExpiringEntry;
typedef int (*CertExpiringFunc)(void *userdata, const CertExpiringEntry *e);
/* Those with not_after <= horizon, by ascending not_after, id. */
int inventory_list_expiring(Store *s, uint64_t horizon, CertExpiringFunc cb, void *userdata);
/* The same for one certificate: cb is called once, or not at all. */
int inventory_get_expiring(Store *s, uint64_t id, uint64_t horizon, CertExpiringFunc cb, void *userdata);
/* The smallest not_after > after among them: 1 and *ret, or 0 if there is none. */
int inventory_next_not_after(Store *s, uint64_t after, uint64_t *ret);
/* Any certificate's not_after; -ENOENT. */
int inventory_get_not_after(Store *s, uint64_t id, uint64_t *ret);

/* certificate_paths: the files discovery found each certificate in. The readers call cb per
 * row (path valid during the callback only, which must not change the store). */
typedef int (*CertPathFunc)(void *userdata, uint64_t id, const char *path);
/* The rows for exactly this path. */
int inventory_paths_at(Store *s, const char *path, CertPathFunc cb, void *userdata);
/* The rows with lo <= path < hi, on the path index. */
int inventory_paths_range(Store *s, const char *lo, const char *hi, CertPathFunc cb, void *userdata);
/* The rows of discovered certificates. */
int inventory_paths_discovered(Store *s, CertPathFunc cb, void *userdata);
/* Inside a transaction. 1 if the row is new. */
int inventory_path_add(Store *s, uint64_t id, const char *path);
int inventory_path_remove(Store *s, uint64_t id, const char *path);
/* Inside a transaction: a discovered certificate is present while at least one file holds it
 * (managed ones keep their flag). 1 if the flag changed. */
int inventory_update_present(Store *s, uint64_t id);


char *strv_join_lines(char *const *l);
char **strv_split_lines(const char *s);
