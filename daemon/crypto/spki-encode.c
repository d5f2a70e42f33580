/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Layer 1: a key's SubjectPublicKeyInfo without OpenSSL 3.0's encoder framework.
 * X509_set_pubkey() and i2d_PUBKEY() build an OSSL_ENCODER context for every call,
 * which walks every encoder of every provider under read locks: on this machine
 * that is most of the cost of issuing a certificate for a key we just generated.
 * For EC keys on named curves and for EdDSA keys the structure is fixed
 * (RFC 5480, RFC 8410): algorithm, curve, public key octets, which the key
 * management hands out as parameters. Anything else takes OpenSSL's way. */

#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "spki-encode.h"

int spki_set_from_pkey(X509_PUBKEY *dst, EVP_PKEY *pkey) {
        unsigned char pub[256];   /* an uncompressed P-521 point is 133 bytes */
        size_t len = 0;
        int key_nid, ptype = V_ASN1_UNDEF;
        void *pval = NULL;

        if (!dst || !pkey)
                return -EINVAL;

        if (EVP_PKEY_is_a(pkey, "EC")) {
                char group[64];
                size_t glen = 0;
                if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                                   &glen) != 1)
                        return -EOPNOTSUPP;   /* explicit parameters: OpenSSL's way */
                int curve = OBJ_sn2nid(group);
                if (curve == NID_undef)
                        curve = OBJ_ln2nid(group);
                if (curve == NID_undef)
                        curve = EC_curve_nist2nid(group);
                if (curve == NID_undef)
                        return -EOPNOTSUPP;
                /* OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY honours the key's point format, as the
                 * encoder does (uncompressed unless the key says otherwise). */
                if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub, sizeof pub,
                                                    &len) != 1 ||
                    len == 0)
                        return -EOPNOTSUPP;
                key_nid = NID_X9_62_id_ecPublicKey;
                ptype = V_ASN1_OBJECT;
                pval = OBJ_nid2obj(curve);
                if (!pval)
                        return -EOPNOTSUPP;
        } else if (EVP_PKEY_is_a(pkey, "ED25519") || EVP_PKEY_is_a(pkey, "ED448")) {
                key_nid = EVP_PKEY_is_a(pkey, "ED25519") ? NID_ED25519 : NID_ED448;
                len = sizeof pub;
                if (EVP_PKEY_get_raw_public_key(pkey, pub, &len) != 1 || len == 0)
                        return -EOPNOTSUPP;
        } else
                return -EOPNOTSUPP;

        unsigned char *penc = OPENSSL_memdup(pub, len);
        if (!penc)
                return -ENOMEM;
        /* OBJ_nid2obj() objects are static: handing them over is fine. */
        if (X509_PUBKEY_set0_param(dst, OBJ_nid2obj(key_nid), ptype, pval, penc, (int) len) != 1) {
                OPENSSL_free(penc);
                return -ENOMEM;
        }
        return 0;
}

int spki_der_from_pkey(EVP_PKEY *pkey, unsigned char **ret, int *ret_len) {
        X509_PUBKEY *p = X509_PUBKEY_new();
        if (!p)
                return -ENOMEM;
        int r = spki_set_from_pkey(p, pkey);
        if (r >= 0) {
                unsigned char *der = NULL;
                int len = i2d_X509_PUBKEY(p, &der);
                if (len <= 0)
                        r = -ENOMEM;
                else {
                        *ret = der;
                        *ret_len = len;
                }
        } else if (r == -EOPNOTSUPP) {
                unsigned char *der = NULL;
                int len = i2d_PUBKEY(pkey, &der);
                r = len > 0 ? 0 : -EBADMSG;
                if (r >= 0) {
                        *ret = der;
                        *ret_len = len;
                }
        }
        X509_PUBKEY_free(p);
        return r;
}
