/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The Local PKI CA's revocation list: RFC 5280 reason names and the v2 CRL, whose entries are
 * encoded here directly (ca.c signs certificates). */

#include <ctype.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca.h"
#include "log.h"

static const char *const revocation_reason_table[] = {
        [REVOCATION_REASON_UNSPECIFIED] = "unspecified",
        [REVOCATION_REASON_KEY_COMPROMISE] = "keyCompromise",
        [REVOCATION_REASON_CA_COMPROMISE] = "cACompromise",
        [REVOCATION_REASON_AFFILIATION_CHANGED] = "affiliationChanged",
        [REVOCATION_REASON_SUPERSEDED] = "superseded",
        [REVOCATION_REASON_CESSATION_OF_OPERATION] = "cessationOfOperation",
};

const char *revocation_reason_to_string(RevocationReason r) {
        if (r < 0 || (size_t) r >= ELEMENTSOF(revocation_reason_table))
                return NULL;
        return revocation_reason_table[r];
}

RevocationReason revocation_reason_from_string(const char *s) {
        if (!s || *s == 0)
                return REVOCATION_REASON_UNSPECIFIED;
        for (size_t i = 0; i < ELEMENTSOF(revocation_reason_table); i++)
                if (streq(s, revocation_reason_table[i]))
                        return (RevocationReason) i;
        return REVOCATION_REASON_INVALID;
}

/* The CRL's entries are DER-encoded here directly. OpenSSL's generic ASN.1
 * encoder re-walks nested structures to compute their lengths, which made a
 * CRL of 100,000 entries cost over a second of CPU; this costs a few ms. */

typedef struct CrlEntryDer {
        uint8_t serial[21];    /* DER INTEGER contents: minimal, positive */
        uint8_t serial_len;
        uint64_t revoked_at;
        RevocationReason reason;
} CrlEntryDer;

static int crl_entry_der_compare(const void *a, const void *b) {
        const CrlEntryDer *x = a, *y = b;
        /* Positive minimal INTEGERs: the longer is the larger, else byte order. */
        if (x->serial_len != y->serial_len)
                return x->serial_len < y->serial_len ? -1 : 1;
        return memcmp(x->serial, y->serial, x->serial_len);
}

static int hex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char) tolower((unsigned char) c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* A serial in hex as DER INTEGER contents: no redundant leading zero
 * bytes, a 0x00 in front when the top bit is set (serials are positive). */
static int serial_der_from_hex(const char *hex, CrlEntryDer *e) {
        uint8_t bytes[20];
        size_t len, n, i = 0;

        if (isempty(hex))
                return -EINVAL;
        while (hex[0] == '0' && hex[1])
                hex++;
        len = strlen(hex);
        if (len > 40) /* RFC 5280: at most 20 octets */
                return -EINVAL;
        n = (len + 1) / 2;
        for (size_t k = 0; k < n; k++) {
                int hi = 0, lo;
                if (k == 0 && len % 2 == 1)
                        hi = 0;
                else if ((hi = hex_digit(hex[i++])) < 0)
                        return -EINVAL;
                if ((lo = hex_digit(hex[i++])) < 0)
                        return -EINVAL;
                bytes[k] = (uint8_t) (hi << 4 | lo);
        }
        e->serial_len = 0;
        if (bytes[0] & 0x80)
                e->serial[e->serial_len++] = 0;
        memcpy(e->serial + e->serial_len, bytes, n);
        e->serial_len += (uint8_t) n;
        return 0;
}

/* Append a DER tag and definite length; returns the bytes written. */
static size_t der_header(uint8_t *p, uint8_t tag, size_t len) {
        size_t k = 0;
        p[k++] = tag;
        if (len < 0x80)
                p[k++] = (uint8_t) len;
        else {
                size_t bytes = 0;
                for (size_t l = len; l > 0; l >>= 8)
                        bytes++;
                p[k++] = (uint8_t) (0x80 | bytes);
                for (size_t b = bytes; b > 0; b--)
                        p[k++] = (uint8_t) (len >> (8 * (b - 1)));
        }
        return k;
}

static size_t der_header_size(size_t len) {
        uint8_t buf[16];
        return der_header(buf, 0, len);
}

/* RFC 5280 Time: UTCTime through 2049, GeneralizedTime from 2050. Writes the
 * whole TLV (15 or 17 bytes). */
static int der_time(uint8_t *p, uint64_t sec, size_t *ret_len) {
        struct tm tm;
        time_t t = (time_t) sec;
        char buf[32];

        if (!gmtime_r(&t, &tm))
                return -EINVAL;
        if (tm.tm_year + 1900 < 1950 || tm.tm_year + 1900 > 9999)
                return -ERANGE;
        if (tm.tm_year + 1900 < 2050) {
                snprintf(buf, sizeof buf, "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
                p[0] = V_ASN1_UTCTIME;
        } else {
                snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
                p[0] = V_ASN1_GENERALIZEDTIME;
        }
        size_t len = strlen(buf);
        p[1] = (uint8_t) len;
        memcpy(p + 2, buf, len);
        *ret_len = 2 + len;
        return 0;
}

/* Extensions ::= SEQUENCE { Extension { id-ce-cRLReasons, OCTET STRING { ENUMERATED reason } } } */
static const uint8_t crl_reason_ext[] = { 0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d,
                                          0x15, 0x04, 0x03, 0x0a, 0x01 /* , reason */ };

/* Split one DER TLV at p (inside [p, end)): its total size. */
static int der_tlv_size(const uint8_t *p, const uint8_t *end, size_t *ret) {
        const unsigned char *q = p;
        long len;
        int tag, class;

        if (ASN1_get_object(&q, &len, &tag, &class, end - p) & 0x80)
                return -EBADMSG;
        *ret = (size_t) (q - p) + (size_t) len;
        return *ret <= (size_t) (end - p) ? 0 : -EBADMSG;
}

/* crl is signed and has no entries. Build its DER with the entries spliced
 * into the TBS (after nextUpdate, before the [0] extensions) and signed anew
 * with the algorithm OpenSSL chose. */
static int crl_add_entries_and_sign(const Ca *ca, X509_CRL *crl, const CrlEntry *entries, size_t n, uint8_t **ret,
                                    size_t *ret_len) {
        _cleanup_free_ CrlEntryDer *e = NULL;
        _cleanup_free_ uint8_t *list = NULL, *tbs2 = NULL, *sig = NULL, *out = NULL;
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md_ctx = NULL;
        unsigned char *tbs = NULL, *alg = NULL;
        size_t list_len = 0, sig_len = 0;
        int tbs_len, alg_len, r;

        e = calloc(n, sizeof *e);
        if (!e)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = serial_der_from_hex(entries[i].serial_hex, &e[i]);
                if (r < 0)
                        return log_debug_errno(r, "Bad serial '%s' in CRL entry.", strempty(entries[i].serial_hex));
                if (entries[i].reason != REVOCATION_REASON_UNSPECIFIED &&
                    !revocation_reason_to_string(entries[i].reason))
                        return -EINVAL;
                e[i].revoked_at = entries[i].revoked_at;
                e[i].reason = entries[i].reason;
        }
        /* Sorted by serial, as OpenSSL's X509_CRL_sort() would, for a stable output. */
        qsort(e, n, sizeof *e, crl_entry_der_compare);

        /* Each entry: SEQUENCE { INTEGER, Time, [Extensions] }, at most 2 + 23 + 17 + 14 bytes. */
        size_t max_entry = 2 + 23 + 17 + sizeof crl_reason_ext + 1;
        if (n > (SIZE_MAX - 16) / max_entry)
                return -E2BIG;
        list = malloc(16 + n * max_entry);
        if (!list)
                return -ENOMEM;
        uint8_t *p = list + 16; /* room for the SEQUENCE OF header, moved into place below */
        for (size_t i = 0; i < n; i++) {
                uint8_t body[64];
                size_t k = 0, tl;

                k += der_header(body + k, V_ASN1_INTEGER, e[i].serial_len);
                memcpy(body + k, e[i].serial, e[i].serial_len);
                k += e[i].serial_len;
                r = der_time(body + k, e[i].revoked_at / USEC_PER_SEC, &tl);
                if (r < 0)
                        return r;
                k += tl;
                /* RFC 5280 5.3.1: unspecified is expressed by leaving the reasonCode out. */
                if (e[i].reason != REVOCATION_REASON_UNSPECIFIED) {
                        memcpy(body + k, crl_reason_ext, sizeof crl_reason_ext);
                        k += sizeof crl_reason_ext;
                        body[k++] = (uint8_t) e[i].reason;
                }
                p += der_header(p, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, k);
                memcpy(p, body, k);
                p += k;
        }
        size_t content = (size_t) (p - (list + 16));
        size_t h = der_header_size(content);
        der_header(list + 16 - h, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, content);
        uint8_t *list_start = list + 16 - h;
        list_len = h + content;

        /* The TBS as OpenSSL encoded it, and the signature algorithm. */
        tbs_len = i2d_re_X509_CRL_tbs(crl, &tbs);
        const X509_ALGOR *sigalg = NULL;
        X509_CRL_get0_signature(crl, NULL, &sigalg);
        alg_len = sigalg ? i2d_X509_ALGOR(sigalg, &alg) : -1;
        if (tbs_len <= 0 || alg_len <= 0) {
                OPENSSL_free(tbs);
                OPENSSL_free(alg);
                return -EIO;
        }

        /* Find where the entries go: after version, signature, issuer, thisUpdate, nextUpdate. */
        const uint8_t *tend = tbs + tbs_len, *q = tbs;
        size_t tl;
        r = der_tlv_size(q, tend, &tl);
        if (r >= 0 && tl != (size_t) tbs_len)
                r = -EBADMSG;
        const uint8_t *body = NULL, *insert = NULL;
        if (r >= 0) {
                const unsigned char *c = tbs;
                long l;
                int tag, class;
                (void) ASN1_get_object(&c, &l, &tag, &class, tbs_len);
                body = c;
                insert = tend;
                for (const uint8_t *x = body; x < tend; x += tl) {
                        if (*x == (V_ASN1_CONTEXT_SPECIFIC | V_ASN1_CONSTRUCTED | 0)) {
                                insert = x;
                                break;
                        }
                        r = der_tlv_size(x, tend, &tl);
                        if (r < 0)
                                break;
                }
        }
        if (r >= 0) {
                size_t body_len = (size_t) (tend - body) + list_len;
                size_t new_len = der_header_size(body_len) + body_len;
                tbs2 = malloc(new_len);
                if (!tbs2)
                        r = -ENOMEM;
                else {
                        uint8_t *w = tbs2;
                        w += der_header(w, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, body_len);
                        memcpy(w, body, (size_t) (insert - body));
                        w += insert - body;
                        memcpy(w, list_start, list_len);
                        w += list_len;
                        memcpy(w, insert, (size_t) (tend - insert));
                        tbs_len = (int) new_len;
                }
        }
        OPENSSL_free(tbs);
        if (r < 0) {
                OPENSSL_free(alg);
                return log_debug_errno(r, "Cannot parse the CRL OpenSSL encoded.");
        }

        /* Sign the new TBS with the key and digest OpenSSL signed the empty one with
         * (RSA PKCS#1 v1.5, ECDSA, or Ed25519 without a digest). */
        md_ctx = EVP_MD_CTX_new();
        if (!md_ctx || EVP_DigestSignInit(md_ctx, NULL, ca->md, NULL, ca->key) != 1 ||
            EVP_DigestSign(md_ctx, NULL, &sig_len, tbs2, (size_t) tbs_len) != 1 || !(sig = malloc(sig_len)) ||
            EVP_DigestSign(md_ctx, sig, &sig_len, tbs2, (size_t) tbs_len) != 1) {
                OPENSSL_free(alg);
                return log_debug_errno(EIO, "Cannot sign CRL: %s", openssl_last_error());
        }

        /* CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, BIT STRING signature } */
        size_t bits_len = 1 + sig_len;
        size_t all = (size_t) tbs_len + (size_t) alg_len + der_header_size(bits_len) + bits_len;
        out = malloc(der_header_size(all) + all);
        if (!out) {
                OPENSSL_free(alg);
                return -ENOMEM;
        }
        uint8_t *w = out;
        w += der_header(w, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, all);
        memcpy(w, tbs2, (size_t) tbs_len);
        w += tbs_len;
        memcpy(w, alg, (size_t) alg_len);
        w += alg_len;
        OPENSSL_free(alg);
        w += der_header(w, V_ASN1_BIT_STRING, bits_len);
        *w++ = 0; /* no unused bits */
        memcpy(w, sig, sig_len);
        w += sig_len;

        *ret_len = (size_t) (w - out);
        *ret = TAKE_PTR(out);
        return 0;
}


int ca_make_crl(const Ca *ca, const CrlEntry *entries, size_t n, uint64_t crl_number, uint64_t now,
                uint64_t next_update_usec, char **ret_pem) {
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        _cleanup_(ASN1_TIME_freep) ASN1_TIME *this_update = NULL, *next_update = NULL;
        _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *number = NULL;
        _cleanup_(AUTHORITY_KEYID_freep) AUTHORITY_KEYID *akid = NULL;
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        int r;

        if (!ca || !ca->key || !ca->cert || (!entries && n > 0) || !ret_pem)
                return -EINVAL;
        if (now == 0)
                now = now_usec();

        crl = X509_CRL_new();
        this_update = ASN1_TIME_new();
        next_update = ASN1_TIME_new();
        number = ASN1_INTEGER_new();
        akid = AUTHORITY_KEYID_new();
        if (!crl || !this_update || !next_update || !number || !akid)
                return -ENOMEM;

        if (asn1_time_set_sec(this_update, now / USEC_PER_SEC) < 0 ||
            asn1_time_set_sec(next_update, (now + next_update_usec) / USEC_PER_SEC) < 0)
                return -ENOMEM;
        if (X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
            X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) != 1 ||
            X509_CRL_set1_lastUpdate(crl, this_update) != 1 ||
            X509_CRL_set1_nextUpdate(crl, next_update) != 1)
                return log_debug_errno(EIO, "Cannot build CRL: %s", openssl_last_error());

        if (ASN1_INTEGER_set_uint64(number, crl_number) != 1 ||
            X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, X509V3_ADD_DEFAULT) != 1)
                return -EIO;
        if (!ca_key_id(ca))
                return -EINVAL;
        akid->keyid = ASN1_OCTET_STRING_dup(ca_key_id(ca));
        if (!akid->keyid)
                return -ENOMEM;
        if (X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) != 1)
                return -EIO;

        /* Sign the CRL without entries: OpenSSL sets the signature algorithm
         * and encodes everything but the entries, which we encode ourselves. */
        if (X509_CRL_sign(crl, ca->key, ca->md) <= 0)
                return log_debug_errno(EIO, "Cannot sign CRL: %s", openssl_last_error());

        bio = BIO_new(BIO_s_mem());
        if (!bio)
                return -ENOMEM;
        if (n == 0) {
                /* RFC 5280: no revokedCertificates at all when there is none. */
                if (PEM_write_bio_X509_CRL(bio, crl) != 1)
                        return -ENOMEM;
        } else {
                _cleanup_free_ uint8_t *der = NULL;
                size_t der_len = 0;

                r = crl_add_entries_and_sign(ca, crl, entries, n, &der, &der_len);
                if (r < 0)
                        return r;
                if (der_len > LONG_MAX || PEM_write_bio(bio, PEM_STRING_X509_CRL, "", der, (long) der_len) <= 0)
                        return -ENOMEM;
        }

        char *data = NULL;
        long len = BIO_get_mem_data(bio, &data);
        if (len <= 0)
                return -EIO;
        *ret_pem = strndup(data, (size_t) len);
        return *ret_pem ? 0 : -ENOMEM;
}
