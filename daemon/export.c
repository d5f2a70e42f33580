/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <glib.h>

#include "export.h"
#include "inventory.h"
#include "log.h"
#include "pkcs12.h"

#define PFX_PASSWORD_LENGTH 24U

int export_pem(Store *s, uint64_t id, bool chain, char **ret_pem) {
        _cleanup_free_ uint8_t *der = NULL;
        size_t len = 0;
        g_autofree char *chain_pem = NULL;

        int r = inventory_get_der(s, id, &der, &len, &chain_pem);
        if (r < 0)
                return r;
        _cleanup_(X509_freep) X509 *x = x509_from_der(der, len);
        if (!x)
                return -EBADMSG;
        g_autofree char *pem = x509_to_pem(x);
        if (!pem)
                return -ENOMEM;
        if (chain && !isempty(chain_pem))
                *ret_pem = g_strconcat(pem, chain_pem, NULL);
        else
                *ret_pem = g_steal_pointer(&pem);
        return 0;
}

static void erase_free(char *p) {
        if (p) {
                OPENSSL_cleanse(p, strlen(p));
                g_free(p);
        }
}

int export_pfx(Store *s, const MasterKey *mk, uint64_t id, bool legacy, uint8_t **ret_pfx, size_t *ret_len,
               char **ret_password) {
        _cleanup_(cert_row_freep) CertRow *row = NULL;
        int r = inventory_get(s, id, &row);
        if (r < 0)
                return r;
        if (!row->key_id)
                return -ENOKEY;

        _cleanup_free_ uint8_t *sealed = NULL;
        size_t sealed_len = 0;
        r = keys_store_get(s, row->key_id, &sealed, &sealed_len);
        if (r < 0)
                return r == -ENOENT ? -ENOKEY : r;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        r = key_unseal(mk, sealed, sealed_len, &key);
        if (r < 0)
                return r;

        _cleanup_free_ uint8_t *der = NULL;
        size_t len = 0;
        g_autofree char *chain_pem = NULL;
        r = inventory_get_der(s, id, &der, &len, &chain_pem);
        if (r < 0)
                return r;
        _cleanup_(X509_freep) X509 *leaf = x509_from_der(der, len);
        if (!leaf)
                return -EBADMSG;
        _cleanup_x509_stack_ STACK_OF(X509) *chain =
                isempty(chain_pem) ? NULL : x509_stack_from_data(chain_pem, strlen(chain_pem));

        char *password = NULL;
        r = password_generate(PFX_PASSWORD_LENGTH, &password);
        if (r < 0)
                return r;
        r = pkcs12_export(key, leaf, chain, row->common_name, password, legacy, ret_pfx, ret_len);
        if (r < 0) {
                erase_free(password);
                return r;
        }
        *ret_password = password;
        return 0;
}
