/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <sys/stat.h>

#include <glib.h>

#include "localca.h"
#include "fileio.h"
#include "inventory.h"
#include "keystore.h"
#include "log.h"

LocalCa *local_ca_free(LocalCa *l) {
        if (!l)
                return NULL;
        ca_free(l->ca);
        free(l->pem); /* x509_to_pem(): malloc */
        g_free(l);
        return NULL;
}

static int load_newest(Store *s, const MasterKey *mk, LocalCa *l, char **ret_error) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "SELECT id, key_id, cert_der, digest FROM ca ORDER BY id DESC LIMIT 1", &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return 0;
        if (rc != SQLITE_ROW)
                return store_errno(rc);

        l->id = (uint64_t) sqlite3_column_int64(st, 0);
        l->key_id = (uint64_t) sqlite3_column_int64(st, 1);
        _cleanup_(X509_freep) X509 *cert = x509_from_der(sqlite3_column_blob(st, 2),
                                                         (size_t) sqlite3_column_bytes(st, 2));
        _cleanup_free_ char *digest = store_column_strdup(st, 3);
        sqlite3_reset(st);
        if (!cert) {
                *ret_error = g_strdup("the stored Local CA certificate cannot be parsed");
                return -EUCLEAN;
        }

        _cleanup_free_ uint8_t *sealed = NULL;
        size_t sealed_len = 0;
        r = keys_store_get(s, l->key_id, &sealed, &sealed_len);
        if (r < 0) {
                *ret_error = g_strdup_printf("the Local CA key (key %" G_GUINT64_FORMAT ") is missing: %s",
                                             l->key_id, strerror(-r));
                return r;
        }
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        r = key_unseal(mk, sealed, sealed_len, &key);
        if (r < 0) {
                *ret_error = g_strdup("cannot unseal the Local CA key: is this the master key it was sealed "
                                      "with?");
                return r;
        }
        r = ca_load(key, cert, digest, &l->ca);
        if (r < 0) {
                *ret_error = g_strdup("the Local CA key does not match its certificate");
                return r;
        }
        return 1;
}

static int create(Store *s, const MasterKey *mk, const Config *c, LocalCa *l, char **ret_error) {
        CaSettings cs = {
                .subject = c->ca_subject,
                .key_algorithm = c->ca_key_algorithm,
                .validity_days = c->ca_validity_days,
                .digest = c->ca_digest,
        };
        char *err = NULL;
        int r = ca_create(&cs, &l->ca, &err);
        if (r < 0) {
                *ret_error = g_strdup_printf("cannot create the Local CA: %s", err ? err : strerror(-r));
                free(err);
                return r;
        }

        _cleanup_free_ uint8_t *sealed = NULL;
        size_t sealed_len = 0;
        r = key_seal(mk, l->ca->key, &sealed, &sealed_len);
        if (r < 0) {
                *ret_error = g_strdup_printf("cannot seal the Local CA key: %s", strerror(-r));
                return r;
        }
        _cleanup_free_ unsigned char *der = NULL;
        int der_len = i2d_X509(l->ca->cert, &der);
        if (der_len <= 0)
                return -ENOMEM;

        r = store_begin(s);
        if (r >= 0) {
                _cleanup_free_ char *alg = pkey_describe(l->ca->key, NULL);
                r = keys_store_insert(s, alg, sealed, sealed_len, &l->key_id);
        }
        if (r >= 0) {
                sqlite3_stmt *st;
                r = store_prepare(s, "INSERT INTO ca (key_id, cert_der, digest, created_at) VALUES (?, ?, ?, ?)",
                                  &st);
                if (r >= 0) {
                        _cleanup_stmt_ sqlite3_stmt *stmt = st;
                        store_bind_int64(st, 1, (int64_t) l->key_id);
                        store_bind_blob(st, 2, der, (size_t) der_len);
                        store_bind_text(st, 3, c->ca_digest);
                        store_bind_int64(st, 4, (int64_t) now_usec());
                        r = store_step_done(st);
                }
                l->id = (uint64_t) sqlite3_last_insert_rowid(store_db(s));
        }
        if (r >= 0)
                r = store_commit(s);
        else
                store_rollback(s);
        if (r < 0) {
                *ret_error = g_strdup_printf("cannot store the new Local CA: %s", store_errmsg(s));
                return r;
        }
        l->created = true;
        return 0;
}

int local_ca_open(Store *s, const MasterKey *mk, const Config *c, const char *state_dir, LocalCa **ret,
                  char **ret_error) {
        _cleanup_(local_ca_freep) LocalCa *l = g_new0(LocalCa, 1);

        int r = load_newest(s, mk, l, ret_error);
        if (r < 0)
                return r;
        if (r == 0) {
                r = create(s, mk, c, l, ret_error);
                if (r < 0)
                        return r;
        }

        l->pem = x509_to_pem(l->ca->cert);
        if (!l->pem)
                return -ENOMEM;

        g_autofree char *dir = g_build_filename(state_dir, "ca", NULL);
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                log_warning_errno(errno, "Cannot create %s: %m, ignoring.", dir);
        else {
                g_autofree char *path = g_build_filename(dir, "ca.pem", NULL);
                r = write_file_atomic(path, l->pem, strlen(l->pem), 0644);
                if (r < 0)
                        log_warning_errno(r, "Cannot write %s: %m, ignoring.", path);
        }

        *ret = TAKE_PTR(l);
        return 0;
}

int local_ca_next_crl_number(Store *s, uint64_t ca_id, uint64_t *ret) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "UPDATE ca SET crl_number = crl_number + 1 WHERE id = ?", &st);
        if (r < 0)
                return r;
        {
                _cleanup_stmt_ sqlite3_stmt *stmt = st;
                store_bind_int64(st, 1, (int64_t) ca_id);
                r = store_step_done(st);
                if (r < 0)
                        return r;
        }
        r = store_prepare(s, "SELECT crl_number FROM ca WHERE id = ?", &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) ca_id);
        if (sqlite3_step(st) != SQLITE_ROW)
                return -EIO;
        *ret = (uint64_t) sqlite3_column_int64(st, 0);
        return 0;
}
