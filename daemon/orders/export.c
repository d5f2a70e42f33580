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

struct PfxSource {
        uint8_t *sealed;        /* the key as stored: sealed under the master key */
        size_t sealed_len;
        uint8_t *der;
        size_t der_len;
        char *chain_pem;
        char *common_name;
};

PfxSource *pfx_source_free(PfxSource *src) {
        if (!src)
                return NULL;
        if (src->sealed) {
                OPENSSL_cleanse(src->sealed, src->sealed_len);
                free(src->sealed);
        }
        free(src->der);
        g_free(src->chain_pem);
        free(src->common_name);
        free(src);
        return NULL;
}

int export_pfx_prepare(Store *s, uint64_t id, PfxSource **ret) {
        _cleanup_(cert_row_freep) CertRow *row = NULL;
        int r = inventory_get(s, id, &row);
        if (r < 0)
                return r;
        if (!row->key_id)
                return -ENOKEY;

        _cleanup_(pfx_source_freep) PfxSource *src = calloc(1, sizeof *src);
        if (!src)
                return -ENOMEM;
        r = keys_store_get(s, row->key_id, &src->sealed, &src->sealed_len);
        if (r < 0)
                return r == -ENOENT ? -ENOKEY : r;
        r = inventory_get_der(s, id, &src->der, &src->der_len, &src->chain_pem);
        if (r < 0)
                return r;
        src->common_name = strdup(row->common_name ? row->common_name : "");
        if (!src->common_name)
                return -ENOMEM;
        *ret = TAKE_PTR(src);
        return 0;
}

int export_pfx_build(const PfxSource *src, const MasterKey *mk, bool legacy, uint8_t **ret_pfx, size_t *ret_len,
                     char **ret_password) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        int r = key_unseal(mk, src->sealed, src->sealed_len, &key);
        if (r < 0)
                return r;
        _cleanup_(X509_freep) X509 *leaf = x509_from_der(src->der, src->der_len);
        if (!leaf)
                return -EBADMSG;
        _cleanup_x509_stack_ STACK_OF(X509) *chain =
                isempty(src->chain_pem) ? NULL : x509_stack_from_data(src->chain_pem, strlen(src->chain_pem));

        char *password = NULL;
        r = password_generate(PFX_PASSWORD_LENGTH, &password);
        if (r < 0)
                return r;
        r = pkcs12_export(key, leaf, chain, src->common_name, password, legacy, ret_pfx, ret_len);
        if (r < 0) {
                erase_free(password);
                return r;
        }
        *ret_password = password;
        return 0;
}

int export_pfx(Store *s, const MasterKey *mk, uint64_t id, bool legacy, uint8_t **ret_pfx, size_t *ret_len,
               char **ret_password) {
        _cleanup_(pfx_source_freep) PfxSource *src = NULL;
        int r = export_pfx_prepare(s, id, &src);
        if (r < 0)
                return r;
        return export_pfx_build(src, mk, legacy, ret_pfx, ret_len, ret_password);
}
