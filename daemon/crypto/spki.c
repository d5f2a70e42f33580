/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Why the deprecated low-level EC_KEY/ECDSA and RSA calls: in OpenSSL 3.0 the
 * EVP route to a key costs a key manager fetch, an import and, for every
 * EVP_DigestVerifyInit(), a signature fetch plus a key export/match, all under
 * the library's method-store locks, which the worker threads contend for. The
 * low-level calls below are the very primitives the default provider ends in
 * (ECDSA_verify() and the PKCS#1 v1.5 check behind RSA_verify()), so nothing is
 * checked less strictly; bench/bench-crypto measures the difference. They are
 * confined to this file. Ed25519 has no low-level API and goes through EVP
 * (still without any OSSL_DECODER). The project builds with
 * OPENSSL_NO_DEPRECATED; this file alone opts back in, before any OpenSSL
 * header is read. */
#undef OPENSSL_NO_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <pthread.h>

#include <openssl/asn1t.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "spki.h"

#define ED25519_KEY_SIZE 32U

/* RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017
 * A.1.1), with OpenSSL's BIGNUM item as OpenSSL's own RSAPublicKey uses it. */
typedef struct CkRsaPub {
        BIGNUM *n;
        BIGNUM *e;
} CkRsaPub;

ASN1_SEQUENCE(CkRsaPub) = {
        ASN1_SIMPLE(CkRsaPub, n, BIGNUM),
        ASN1_SIMPLE(CkRsaPub, e, BIGNUM),
} static_ASN1_SEQUENCE_END(CkRsaPub)

static void ck_rsa_pub_freep(CkRsaPub **p) {
        ASN1_item_free((ASN1_VALUE *) *p, ASN1_ITEM_rptr(CkRsaPub));
}

/* Fetched once per process: the three curves and the three digests. A group is
 * only read (EC_KEY_set_group() copies it), an EVP_MD is immutable. */
static const struct {
        int nid;
        const char *name;
} curves[] = {
        { NID_X9_62_prime256v1, "ec-256" },
        { NID_secp384r1, "ec-384" },
        { NID_secp521r1, "ec-521" },
};

static const struct {
        int nid;
        const char *name;
} digests[] = {
        { NID_sha256, "SHA256" },
        { NID_sha384, "SHA384" },
        { NID_sha512, "SHA512" },
};

static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static EC_GROUP *cached_groups[ELEMENTSOF(curves)];
static EVP_MD *cached_mds[ELEMENTSOF(digests)];

static void cache_init(void) {
        /* A failure leaves a NULL entry: that key type or digest is then simply
         * not handled here. */
        for (size_t i = 0; i < ELEMENTSOF(curves); i++)
                cached_groups[i] = EC_GROUP_new_by_curve_name(curves[i].nid);
        for (size_t i = 0; i < ELEMENTSOF(digests); i++)
                cached_mds[i] = EVP_MD_fetch(NULL, digests[i].name, NULL);
        ERR_clear_error();
}

static const EC_GROUP *group_for(int nid, size_t *ret_index) {
        (void) pthread_once(&cache_once, cache_init);
        for (size_t i = 0; i < ELEMENTSOF(curves); i++)
                if (curves[i].nid == nid) {
                        if (ret_index)
                                *ret_index = i;
                        return cached_groups[i];
                }
        return NULL;
}

static const EVP_MD *md_for(int nid) {
        (void) pthread_once(&cache_once, cache_init);
        for (size_t i = 0; i < ELEMENTSOF(digests); i++)
                if (digests[i].nid == nid)
                        return cached_mds[i];
        return NULL;
}

static bool bits_whole_bytes(const ASN1_BIT_STRING *b) {
        /* A BIT STRING with unused bits is left to OpenSSL (it masks them). */
        return b && b->length >= 0 && (b->flags & 0x07) == 0;
}

static int rsa_pub_parse(const ASN1_BIT_STRING *key, CkRsaPub **ret) {
        const unsigned char *p = key->data;
        CkRsaPub *rp;

        if (key->length <= 0)
                return 0;
        rp = (CkRsaPub *) ASN1_item_d2i(NULL, &p, key->length, ASN1_ITEM_rptr(CkRsaPub));
        if (!rp) {
                ERR_clear_error();
                return 0;
        }
        /* Trailing bytes after the RSAPublicKey, or a zero modulus: OpenSSL's business. */
        if (p != key->data + key->length || BN_is_zero(rp->n)) {
                ck_rsa_pub_freep(&rp);
                return 0;
        }
        *ret = rp;
        return 1;
}

static int ec_key_build(const EC_GROUP *group, const ASN1_BIT_STRING *key, EC_KEY **ret) {
        EC_KEY *ec = EC_KEY_new();

        if (!ec)
                return -ENOMEM;
        /* The same point decoding and on-curve check as ec_point_check(). */
        if (EC_KEY_set_group(ec, group) != 1 ||
            EC_KEY_oct2key(ec, key->data, (size_t) key->length, NULL) != 1) {
                EC_KEY_free(ec);
                ERR_clear_error();
                return 0;
        }
        *ret = ec;
        return 1;
}

static int ec_point_check(const EC_GROUP *group, const ASN1_BIT_STRING *key) {
        EC_POINT *pt = EC_POINT_new(group);
        int ok;

        if (!pt)
                return -ENOMEM;
        /* What o2i_ECPublicKey() does for the decoder: the point must decode and
         * lie on the curve. */
        ok = EC_POINT_oct2point(group, pt, key->data, (size_t) key->length, NULL) == 1;
        EC_POINT_free(pt);
        if (!ok)
                ERR_clear_error();
        return ok;
}

int spki_key_load(const X509_ALGOR *alg, const ASN1_BIT_STRING *key, SpkiKey *ret) {
        const ASN1_OBJECT *oid;
        const void *pval;
        int ptype;

        if (!alg || !bits_whole_bytes(key) || !ret)
                return 0;
        X509_ALGOR_get0(&oid, &ptype, &pval, alg);

        switch (OBJ_obj2nid(oid)) {
        case NID_rsaEncryption: {
                _cleanup_(ck_rsa_pub_freep) CkRsaPub *rp = NULL;
                /* RFC 3279: the parameters are NULL; OpenSSL ignores them, we only
                 * take the plain forms and leave anything else to it. */
                if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
                        return 0;
                if (rsa_pub_parse(key, &rp) <= 0)
                        return 0;
                *ret = (SpkiKey) { .type = SPKI_RSA, .rsa_bits = (unsigned) BN_num_bits(rp->n),
                                   .alg = alg, .key = key };
                return 1;
        }
        case NID_X9_62_id_ecPublicKey: {
                if (ptype != V_ASN1_OBJECT || !pval)
                        return 0; /* explicit or implicit parameters */
                int nid = OBJ_obj2nid(pval);
                const EC_GROUP *group = group_for(nid, NULL);
                if (!group || ec_point_check(group, key) <= 0)
                        return 0;
                *ret = (SpkiKey) { .type = SPKI_EC, .curve_nid = nid, .alg = alg, .key = key };
                return 1;
        }
        case NID_ED25519:
                if (ptype != V_ASN1_UNDEF || key->length != (int) ED25519_KEY_SIZE)
                        return 0;
                *ret = (SpkiKey) { .type = SPKI_ED25519, .alg = alg, .key = key };
                return 1;
        default:
                return 0;
        }
}

char *spki_key_describe(const SpkiKey *k, unsigned *ret_rsa_bits) {
        char buf[32];
        size_t i;

        if (ret_rsa_bits)
                *ret_rsa_bits = 0;
        switch (k->type) {
        case SPKI_RSA:
                if (ret_rsa_bits)
                        *ret_rsa_bits = k->rsa_bits;
                (void) snprintf(buf, sizeof buf, "rsa-%u", k->rsa_bits);
                return strdup(buf);
        case SPKI_EC:
                if (!group_for(k->curve_nid, &i))
                        return strdup("unknown");
                return strdup(curves[i].name);
        case SPKI_ED25519:
                return strdup("ed25519");
        default:
                return strdup("unknown");
        }
}

EVP_PKEY *spki_key_to_pkey(const SpkiKey *k) {
        EVP_PKEY *pkey = NULL;

        if (!k)
                return NULL;
        if (k->type == SPKI_EC) {
                EC_KEY *ec = NULL;
                if (ec_key_build(group_for(k->curve_nid, NULL), k->key, &ec) <= 0)
                        return NULL;
                pkey = EVP_PKEY_new();
                if (!pkey || EVP_PKEY_assign_EC_KEY(pkey, ec) != 1) {
                        EC_KEY_free(ec);
                        EVP_PKEY_free(pkey);
                        return NULL;
                }
        } else if (k->type == SPKI_RSA) {
                _cleanup_(ck_rsa_pub_freep) CkRsaPub *rp = NULL;
                RSA *rsa;
                if (rsa_pub_parse(k->key, &rp) <= 0)
                        return NULL;
                rsa = RSA_new();
                if (!rsa || RSA_set0_key(rsa, rp->n, rp->e, NULL) != 1) {
                        RSA_free(rsa);
                        return NULL;
                }
                rp->n = rp->e = NULL;
                pkey = EVP_PKEY_new();
                if (!pkey || EVP_PKEY_assign_RSA(pkey, rsa) != 1) {
                        RSA_free(rsa);
                        EVP_PKEY_free(pkey);
                        return NULL;
                }
        }
        ERR_clear_error();
        return pkey;
}

static int digest(const EVP_MD *md, const uint8_t *data, size_t len, unsigned char *ret, unsigned *ret_len) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int ok;

        if (!ctx)
                return -ENOMEM;
        ok = EVP_DigestInit_ex(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, data, len) == 1 &&
             EVP_DigestFinal_ex(ctx, ret, ret_len) == 1;
        EVP_MD_CTX_free(ctx);
        return ok ? 1 : 0;
}

static int verify_ecdsa(const SpkiKey *k, const EVP_MD *md, const ASN1_BIT_STRING *sig, const uint8_t *tbs,
                        size_t tbs_len) {
        unsigned char h[EVP_MAX_MD_SIZE];
        unsigned hlen = 0;
        EC_KEY *ec = NULL;
        int r;

        r = digest(md, tbs, tbs_len, h, &hlen);
        if (r <= 0)
                return r;
        r = ec_key_build(group_for(k->curve_nid, NULL), k->key, &ec);
        if (r <= 0)
                return r;
        /* What the default provider's ECDSA verify calls: the DER signature must
         * re-encode exactly, r and s in range, the equation must hold. */
        r = ECDSA_verify(0, h, (int) hlen, sig->data, sig->length, ec);
        EC_KEY_free(ec);
        return r == 1 ? 1 : 0;
}

static int verify_rsa(const SpkiKey *k, int md_nid, const EVP_MD *md, const ASN1_BIT_STRING *sig,
                      const uint8_t *tbs, size_t tbs_len) {
        _cleanup_(ck_rsa_pub_freep) CkRsaPub *rp = NULL;
        unsigned char h[EVP_MAX_MD_SIZE];
        unsigned hlen = 0;
        RSA *rsa;
        int r;

        r = digest(md, tbs, tbs_len, h, &hlen);
        if (r <= 0)
                return r;
        if (rsa_pub_parse(k->key, &rp) <= 0)
                return 0;
        rsa = RSA_new();
        if (!rsa)
                return -ENOMEM;
        if (RSA_set0_key(rsa, rp->n, rp->e, NULL) != 1) {
                RSA_free(rsa);
                return -ENOMEM;
        }
        rp->n = rp->e = NULL; /* now owned by rsa */
        /* PKCS#1 v1.5: the DigestInfo must match byte for byte (ossl_rsa_verify(),
         * as behind the provider's RSA_PKCS1_PADDING verify). */
        r = RSA_verify(md_nid, h, hlen, sig->data, (unsigned) sig->length, rsa);
        RSA_free(rsa);
        return r == 1 ? 1 : 0;
}

static int verify_ed25519(const SpkiKey *k, const ASN1_BIT_STRING *sig, const uint8_t *tbs, size_t tbs_len) {
        EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, k->key->data,
                                                        (size_t) k->key->length);
        EVP_MD_CTX *ctx = NULL;
        int r = 0;

        if (!pkey)
                goto out;
        ctx = EVP_MD_CTX_new();
        if (!ctx) {
                r = -ENOMEM;
                goto out;
        }
        if (EVP_DigestVerifyInit_ex(ctx, NULL, NULL, NULL, NULL, pkey, NULL) == 1 &&
            EVP_DigestVerify(ctx, sig->data, (size_t) sig->length, tbs, tbs_len) == 1)
                r = 1;
out:
        EVP_MD_CTX_free(ctx);
        EVP_PKEY_free(pkey);
        return r;
}

int spki_key_verify(const SpkiKey *k, const X509_ALGOR *sig_alg, const ASN1_BIT_STRING *signature,
                    const uint8_t *tbs, size_t tbs_len) {
        const ASN1_OBJECT *oid;
        const void *pval;
        int ptype, md_nid = NID_undef, pk_nid = NID_undef;
        int r = 0;

        if (!k || !sig_alg || !signature || !tbs || !bits_whole_bytes(signature) || signature->length <= 0)
                return 0;
        X509_ALGOR_get0(&oid, &ptype, &pval, sig_alg);
        if (OBJ_find_sigid_algs(OBJ_obj2nid(oid), &md_nid, &pk_nid) != 1)
                return 0;

        switch (k->type) {
        case SPKI_EC:
                if (pk_nid == NID_X9_62_id_ecPublicKey && md_for(md_nid))
                        r = verify_ecdsa(k, md_for(md_nid), signature, tbs, tbs_len);
                break;
        case SPKI_RSA:
                if (pk_nid == NID_rsaEncryption && md_for(md_nid))
                        r = verify_rsa(k, md_nid, md_for(md_nid), signature, tbs, tbs_len);
                break;
        case SPKI_ED25519:
                /* RFC 8410: the parameters are absent. */
                if (pk_nid == NID_ED25519 && md_nid == NID_undef && ptype == V_ASN1_UNDEF)
                        r = verify_ed25519(k, signature, tbs, tbs_len);
                break;
        default:
                break;
        }
        ERR_clear_error();
        return r;
}
