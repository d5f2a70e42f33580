/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <glib.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "macro.h"
#include "x509-usage.h"

/* The names of the keyUsage bits set in usage (OpenSSL's KU_* masks), NULL-terminated. */
static char **key_usage_names(uint32_t usage) {
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
        GPtrArray *ku = g_ptr_array_new();
        for (size_t i = 0; i < ELEMENTSOF(bits); i++)
                if (usage & bits[i].bit)
                        g_ptr_array_add(ku, g_strdup(bits[i].name));
        g_ptr_array_add(ku, NULL);
        return (char **) g_ptr_array_free(ku, FALSE);
}

/* The purposes of an extendedKeyUsage: OpenSSL's short names, else dotted OIDs. */
static char **extended_key_usage_names(const EXTENDED_KEY_USAGE *ext) {
        GPtrArray *eku = g_ptr_array_new();
        for (int i = 0; ext && i < sk_ASN1_OBJECT_num(ext); i++) {
                const ASN1_OBJECT *obj = sk_ASN1_OBJECT_value(ext, i);
                int nid = OBJ_obj2nid(obj);
                char buf[128];

                if (nid != NID_undef && OBJ_nid2sn(nid))
                        g_ptr_array_add(eku, g_strdup(OBJ_nid2sn(nid)));
                else if (OBJ_obj2txt(buf, sizeof buf, obj, 1) > 0)
                        g_ptr_array_add(eku, g_strdup(buf));
        }
        g_ptr_array_add(eku, NULL);
        return (char **) g_ptr_array_free(eku, FALSE);
}

int x509_usage(X509 *x, char ***ret_key_usage, char ***ret_extended_key_usage) {
        if (!x)
                return -EINVAL;
        /* X509_get_key_usage() says "all" (UINT32_MAX) when the extension is absent. */
        g_auto(GStrv) ku = X509_get_ext_by_NID(x, NID_key_usage, -1) >= 0 ? key_usage_names(X509_get_key_usage(x))
                                                                          : g_new0(char *, 1);
        EXTENDED_KEY_USAGE *ext = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
        g_auto(GStrv) eku = extended_key_usage_names(ext);
        EXTENDED_KEY_USAGE_free(ext);

        *ret_key_usage = g_steal_pointer(&ku);
        *ret_extended_key_usage = g_steal_pointer(&eku);
        return 0;
}

/* The TLV at *p, before end: its tag, class and content; *p moves past it. DER only (no
 * indefinite lengths). */
static int der_next(const unsigned char **p, const unsigned char *end, int *ret_tag, int *ret_class,
                    const unsigned char **ret_content, long *ret_len) {
        const unsigned char *q = *p;
        long len;
        int tag, cls;

        if (q >= end)
                return -EBADMSG;
        int k = ASN1_get_object(&q, &len, &tag, &cls, end - q);
        if ((k & 0x80) || k == 0x21 || len < 0 || len > end - q)
                return -EBADMSG;
        *ret_tag = tag;
        *ret_class = cls;
        *ret_content = q;
        *ret_len = len;
        *p = q + len;
        return 0;
}

/* keyUsage and extendedKeyUsage read from the extensions of the DER, without decoding the rest
 * of the certificate: d2i_X509() also decodes the public key, which in OpenSSL 3 builds a
 * decoder context per certificate (HACKING.md, "Issuance hot path"), and both properties are
 * read for every InterfacesAdded of a new certificate. Only for what our Local CA writes: a
 * certificate whose extensions are among basicConstraints, keyUsage, extendedKeyUsage, the key
 * identifiers and subjectAltName, each once (OpenSSL marks a certificate with any duplicate or
 * broken extension invalid, and then reports no key usage at all: that takes d2i_X509()).
 * -EBADMSG for anything else (the caller decodes the whole certificate). */
static int usage_from_extensions(const uint8_t *der, size_t len, char ***ret_key_usage,
                                 char ***ret_extended_key_usage) {
        static const unsigned char oid_ku[] = { 0x55, 0x1d, 0x0f }, oid_eku[] = { 0x55, 0x1d, 0x25 };
        /* id-ce 14 SKI, 15 KU, 17 SAN, 19 BC, 35 AKI, 37 EKU */
        static const unsigned char known[] = { 14, 15, 17, 19, 35, 37 };
        unsigned seen = 0;
        const unsigned char *p = der, *end = der + len, *c, *kuv = NULL, *ekuv = NULL;
        long l, kul = 0, ekul = 0;
        int tag, cls;

        /* Certificate ::= SEQUENCE { tbsCertificate, ... }; TBSCertificate ::= SEQUENCE {...} */
        if (der_next(&p, end, &tag, &cls, &c, &l) < 0 || tag != V_ASN1_SEQUENCE || cls != V_ASN1_UNIVERSAL ||
            p != end)
                return -EBADMSG;
        p = c;
        end = c + l;
        if (der_next(&p, end, &tag, &cls, &c, &l) < 0 || tag != V_ASN1_SEQUENCE || cls != V_ASN1_UNIVERSAL)
                return -EBADMSG;
        p = c;
        end = c + l;
        /* Its elements up to extensions [3] EXPLICIT, the last. */
        const unsigned char *exts = NULL;
        long exts_len = 0;
        while (p < end) {
                if (der_next(&p, end, &tag, &cls, &c, &l) < 0)
                        return -EBADMSG;
                if (cls == V_ASN1_CONTEXT_SPECIFIC && tag == 3) {
                        exts = c;
                        exts_len = l;
                }
        }
        if (exts) {
                p = exts;
                end = exts + exts_len;
                if (der_next(&p, end, &tag, &cls, &c, &l) < 0 || tag != V_ASN1_SEQUENCE || p != end)
                        return -EBADMSG;
                p = c;
                end = c + l;
                while (p < end) {
                        /* Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } */
                        const unsigned char *e, *oid, *val;
                        long el, oidl, vall;
                        if (der_next(&p, end, &tag, &cls, &e, &el) < 0 || tag != V_ASN1_SEQUENCE)
                                return -EBADMSG;
                        const unsigned char *q = e, *qend = e + el;
                        if (der_next(&q, qend, &tag, &cls, &oid, &oidl) < 0 || tag != V_ASN1_OBJECT)
                                return -EBADMSG;
                        if (der_next(&q, qend, &tag, &cls, &val, &vall) < 0)
                                return -EBADMSG;
                        if (tag == V_ASN1_BOOLEAN && der_next(&q, qend, &tag, &cls, &val, &vall) < 0)
                                return -EBADMSG;
                        if (tag != V_ASN1_OCTET_STRING || q != qend)
                                return -EBADMSG;
                        if (oidl != 3 || oid[0] != 0x55 || oid[1] != 0x1d)
                                return -EBADMSG;
                        const unsigned char *k = memchr(known, oid[2], sizeof known);
                        if (!k || (seen & (1U << (k - known))))
                                return -EBADMSG;
                        seen |= 1U << (k - known);
                        bool is_ku = memcmp(oid, oid_ku, sizeof oid_ku) == 0;
                        bool is_eku = memcmp(oid, oid_eku, sizeof oid_eku) == 0;
                        if (is_ku) {
                                kuv = val;
                                kul = vall;
                        } else if (is_eku) {
                                ekuv = val;
                                ekul = vall;
                        }
                }
        }

        g_auto(GStrv) ku = NULL, eku = NULL;
        if (kuv) {
                const unsigned char *q = kuv;
                ASN1_BIT_STRING *bits = d2i_ASN1_BIT_STRING(NULL, &q, kul);
                if (!bits || q != kuv + kul) {
                        ASN1_BIT_STRING_free(bits);
                        return -EBADMSG;
                }
                /* As OpenSSL's x509v3_cache_extensions() makes X509_get_key_usage(). */
                uint32_t usage = 0;
                if (bits->length > 0)
                        usage = bits->data[0] | (bits->length > 1 ? (uint32_t) bits->data[1] << 8 : 0);
                ASN1_BIT_STRING_free(bits);
                ku = key_usage_names(usage);
        } else
                ku = g_new0(char *, 1);
        if (ekuv) {
                const unsigned char *q = ekuv;
                EXTENDED_KEY_USAGE *ext = d2i_EXTENDED_KEY_USAGE(NULL, &q, ekul);
                if (!ext || q != ekuv + ekul) {
                        EXTENDED_KEY_USAGE_free(ext);
                        return -EBADMSG;
                }
                eku = extended_key_usage_names(ext);
                EXTENDED_KEY_USAGE_free(ext);
        } else
                eku = g_new0(char *, 1);
        *ret_key_usage = g_steal_pointer(&ku);
        *ret_extended_key_usage = g_steal_pointer(&eku);
        return 0;
}

int x509_usage_from_der(const uint8_t *der, size_t len, char ***ret_key_usage, char ***ret_extended_key_usage) {
        if (usage_from_extensions(der, len, ret_key_usage, ret_extended_key_usage) >= 0)
                return 0;

        const unsigned char *p = der;
        X509 *x = d2i_X509(NULL, &p, (long) len);
        int r;

        if (!x)
                return -EBADMSG;
        r = x509_usage(x, ret_key_usage, ret_extended_key_usage);
        X509_free(x);
        return r;
}
