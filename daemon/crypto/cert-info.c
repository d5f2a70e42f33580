/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* What the inventory shows about a certificate (CertInfo), extracted once when
 * it is stored. */

#include <arpa/inet.h>
#include <ctype.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/objects.h>

#include "spki.h"
#include "x509-internal.h"
#include "x509.h"

void cert_info_done(CertInfo *i) {
        if (!i)
                return;
        free(i->common_name);
        strv_free(i->sans);
        free(i->subject);
        free(i->issuer);
        free(i->algorithm);
        free(i->digest);
        free(i->fingerprint_sha256);
        free(i->serial);
        free(i->der);
        *i = (CertInfo){0};
}

static char *name_to_rfc2253(const X509_NAME *name) {
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new(BIO_s_mem());

        if (!bio)
                return NULL;
        /* ESC_MSB (part of XN_FLAG_RFC2253) keeps the result ASCII: these strings
         * come from arbitrary certificates and go out over D-Bus. */
        if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0)
                return NULL;
        return bio_to_string(bio);
}

static uint64_t asn1_time_to_usec(const ASN1_TIME *t) {
        struct tm tm = {0};
        time_t s;

        if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
                return 0;
        s = timegm(&tm);
        if (s <= 0)
                return 0;
        return (uint64_t) s * USEC_PER_SEC;
}

static int sans_from_x509(X509 *x, char ***ret) {
        _cleanup_(general_names_freep) GENERAL_NAMES *gens =
                X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        int n = gens ? sk_GENERAL_NAME_num(gens) : 0;
        char **l = calloc((size_t) MAX(n, 0) + 1, sizeof(char *));
        size_t k = 0;

        ERR_clear_error();
        if (!l)
                return -ENOMEM;

        for (int i = 0; i < n; i++) {
                const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                int type;
                const ASN1_STRING *s = GENERAL_NAME_get0_value(g, &type);
                const unsigned char *bytes = ASN1_STRING_get0_data(s);
                int len = ASN1_STRING_length(s);
                char buf[INET6_ADDRSTRLEN];

                if (type == GEN_DNS || type == GEN_URI) {
                        l[k] = quote_untrusted((const char *) bytes, (size_t) MAX(len, 0));
                } else if (type == GEN_IPADD && (len == 4 || len == 16)) {
                        if (!inet_ntop(len == 4 ? AF_INET : AF_INET6, bytes, buf, sizeof buf))
                                continue;
                        l[k] = strdup(buf);
                } else
                        continue;
                if (!l[k]) {
                        strv_free(l);
                        return -ENOMEM;
                }
                k++;
        }

        *ret = l;
        return 0;
}

static char *serial_to_hex(const ASN1_INTEGER *serial) {
        _cleanup_(BN_freep) BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
        char *hex, *p, *ret;
        bool neg;

        if (!bn)
                return NULL;
        if (BN_is_zero(bn))
                return strdup("0");
        hex = BN_bn2hex(bn);
        if (!hex)
                return NULL;
        p = hex;
        neg = *p == '-';
        if (neg)
                p++;
        while (*p == '0')
                p++;
        if (asprintf(&ret, "%s%s", neg ? "-" : "", p) < 0)
                ret = NULL;
        OPENSSL_free(hex);
        for (char *c = ret; c && *c; c++)
                *c = (char) tolower((unsigned char) *c);
        return ret;
}

static char *digest_from_nid(int mdnid) {
        if (mdnid == NID_undef)
                return strdup("none"); /* Ed25519/Ed448: the algorithm has no separate digest */

        const char *sn = OBJ_nid2sn(mdnid);
        if (!sn)
                return strdup("unknown");
        char *s = strdup(sn);
        for (char *c = s; c && *c; c++)
                *c = (char) tolower((unsigned char) *c);
        return s;
}

static char *digest_name(X509 *x) {
        int mdnid = NID_undef, pknid = NID_undef;

        /* Most signature algorithms name their digest (ecdsa-with-SHA256), and
         * EdDSA has none: X509_get_signature_info() says the same for them, but
         * caches all extensions and a SHA-1 of the certificate first. Only
         * algorithms like RSASSA-PSS carry the digest in their parameters. */
        if (OBJ_find_sigid_algs(X509_get_signature_nid(x), &mdnid, &pknid) == 1 &&
            (mdnid != NID_undef || pknid == NID_ED25519 || pknid == NID_ED448))
                return digest_from_nid(mdnid);

        if (X509_get_signature_info(x, &mdnid, &pknid, NULL, NULL) != 1 &&
            OBJ_find_sigid_algs(X509_get_signature_nid(x), &mdnid, &pknid) != 1) {
                ERR_clear_error();
                return strdup("unknown");
        }
        return digest_from_nid(mdnid);
}

/* ca_sign_leaf() copies a CSR's key without decoding it, so an X509 we made
 * ourselves may have no decoded key in memory: decode one from the encoding then. */
static EVP_PKEY *x509_decode_pubkey(X509 *x) {
        EVP_PKEY *pkey = X509_get0_pubkey(x);
        unsigned char *der = NULL;
        int len;

        if (pkey)
                return EVP_PKEY_dup(pkey);
        ERR_clear_error();
        len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
        if (len <= 0)
                return NULL;
        const unsigned char *p = der;
        pkey = d2i_PUBKEY(NULL, &p, len);
        OPENSSL_free(der);
        ERR_clear_error();
        return pkey;
}

/* pkey_describe() of the certificate's key: read from the encoding for the
 * common key types (spki.c), decoded by OpenSSL for the others. */
static char *x509_describe_pubkey(X509 *x) {
        X509_ALGOR *alg = NULL;
        SpkiKey key;

        if (X509_PUBKEY_get0_param(NULL, NULL, NULL, &alg, X509_get_X509_PUBKEY(x)) == 1 &&
            spki_key_load(alg, X509_get0_pubkey_bitstr(x), &key) > 0)
                return spki_key_describe(&key, NULL);

        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = x509_decode_pubkey(x);
        return pkey_describe(pkey, NULL);
}

int cert_info_from_x509(X509 *x, CertInfo *ret) {
        CertInfo i = {0};
        unsigned char *der = NULL;
        int der_len, r;

        if (!x || !ret)
                return -EINVAL;

        der_len = i2d_X509(x, &der);
        if (der_len <= 0)
                return -EBADMSG;
        i.der = malloc((size_t) der_len);
        if (!i.der) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        memcpy(i.der, der, (size_t) der_len);
        i.der_len = (size_t) der_len;
        OPENSSL_free(der);

        r = name_get_cn(X509_get_subject_name(x), &i.common_name);
        if (r == -ENOMEM)
                goto fail;
        if (!i.common_name) {
                /* A CN we cannot read is shown as empty, like a missing one. */
                i.common_name = strdup("");
                if (!i.common_name)
                        goto oom;
        } else {
                char *quoted = quote_untrusted(i.common_name, strlen(i.common_name));
                /* Keep UTF-8 CNs as they are; only control bytes matter here. */
                bool has_ctrl = false;
                for (const char *c = i.common_name; *c; c++)
                        if ((unsigned char) *c < 0x20 || *c == 0x7f)
                                has_ctrl = true;
                if (has_ctrl) {
                        free(i.common_name);
                        i.common_name = quoted;
                } else
                        free(quoted);
                if (!i.common_name)
                        goto oom;
        }

        r = sans_from_x509(x, &i.sans);
        if (r < 0)
                goto fail;

        i.subject = name_to_rfc2253(X509_get_subject_name(x));
        i.issuer = name_to_rfc2253(X509_get_issuer_name(x));
        if (!i.subject || !i.issuer)
                goto oom;

        i.algorithm = x509_describe_pubkey(x);
        if (!i.algorithm)
                goto oom;

        i.digest = digest_name(x);
        if (!i.digest)
                goto oom;

        i.not_before = asn1_time_to_usec(X509_get0_notBefore(x));
        i.not_after = asn1_time_to_usec(X509_get0_notAfter(x));

        i.fingerprint_sha256 = malloc(65);
        if (!i.fingerprint_sha256)
                goto oom;
        sha256_hex(i.der, i.der_len, i.fingerprint_sha256);

        i.serial = serial_to_hex(X509_get0_serialNumber(x));
        if (!i.serial)
                goto oom;

        BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);
        i.is_ca = bc && bc->ca;
        BASIC_CONSTRAINTS_free(bc);

        /* X509_self_signed() starts with the same name comparison; only a
         * self-issued certificate is worth the extension cache and the signature
         * check (a leaf we signed ourselves, with its undecoded key, is not). */
        i.self_signed = X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(x)) == 0 &&
                        X509_self_signed(x, 1) == 1;
        ERR_clear_error();

        *ret = i;
        return 0;

oom:
        r = -ENOMEM;
fail:
        ERR_clear_error();
        cert_info_done(&i);
        return r;
}
