/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>

#include <glib.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "macro.h"
#include "x509-usage.h"

int x509_usage(X509 *x, char ***ret_key_usage, char ***ret_extended_key_usage) {
        /* RFC 5280 4.2.1.3, in bit order; OpenSSL's KU_* masks. */
        static const struct {
                uint32_t bit;
                const char *name;
        } bits[] = {
                { KU_DIGITAL_SIGNATURE, "digitalSignature" }, { KU_NON_REPUDIATION, "nonRepudiation" },
                { KU_KEY_ENCIPHERMENT, "keyEncipherment" },   { KU_DATA_ENCIPHERMENT, "dataEncipherment" },
                { KU_KEY_AGREEMENT, "keyAgreement" },         { KU_KEY_CERT_SIGN, "keyCertSign" },
                { KU_CRL_SIGN, "cRLSign" },                   { KU_ENCIPHER_ONLY, "encipherOnly" },
                { KU_DECIPHER_ONLY, "decipherOnly" },
        };
        g_autoptr(GPtrArray) ku = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) eku = g_ptr_array_new_with_free_func(g_free);

        if (!x)
                return -EINVAL;
        /* X509_get_key_usage() says "all" (UINT32_MAX) when the extension is absent. */
        if (X509_get_ext_by_NID(x, NID_key_usage, -1) >= 0) {
                uint32_t usage = X509_get_key_usage(x);
                for (size_t i = 0; i < ELEMENTSOF(bits); i++)
                        if (usage & bits[i].bit)
                                g_ptr_array_add(ku, g_strdup(bits[i].name));
        }

        EXTENDED_KEY_USAGE *ext = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
        for (int i = 0; ext && i < sk_ASN1_OBJECT_num(ext); i++) {
                const ASN1_OBJECT *obj = sk_ASN1_OBJECT_value(ext, i);
                int nid = OBJ_obj2nid(obj);
                char buf[128];

                if (nid != NID_undef && OBJ_nid2sn(nid))
                        g_ptr_array_add(eku, g_strdup(OBJ_nid2sn(nid)));
                else if (OBJ_obj2txt(buf, sizeof buf, obj, 1) > 0)
                        g_ptr_array_add(eku, g_strdup(buf));
        }
        EXTENDED_KEY_USAGE_free(ext);

        g_ptr_array_add(ku, NULL);
        g_ptr_array_add(eku, NULL);
        *ret_key_usage = (char **) g_ptr_array_steal(ku, NULL);
        *ret_extended_key_usage = (char **) g_ptr_array_steal(eku, NULL);
        return 0;
}

int x509_usage_from_der(const uint8_t *der, size_t len, char ***ret_key_usage, char ***ret_extended_key_usage) {
        const unsigned char *p = der;
        X509 *x = d2i_X509(NULL, &p, (long) len);
        int r;

        if (!x)
                return -EBADMSG;
        r = x509_usage(x, ret_key_usage, ret_extended_key_usage);
        X509_free(x);
        return r;
}
