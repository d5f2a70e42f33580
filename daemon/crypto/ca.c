/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The Local PKI CA: subject names, creation, loading and leaf signing. Its CRL is ca-crl.c. */

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca.h"
#include "error.h"
#include "keys.h"
#include "log.h"
#include "spki-encode.h"

#define CLOCK_SKEW_SEC (5 * 60)
#define VALIDITY_DAYS_MAX 36500U
#define SERIAL_SIZE 16

Ca *ca_free(Ca *ca) {
        if (!ca)
                return NULL;
        EVP_PKEY_free(ca->key);
        X509_free(ca->cert);
        ASN1_OCTET_STRING_free(ca->key_id);
        free(ca);
        return NULL;
}

static const struct {
        const char *name;
        int nid;
} name_attributes[] = {
        /* clang-format off */
        { "CN", NID_commonName },
        { "C", NID_countryName },
        { "L", NID_localityName },
        { "ST", NID_stateOrProvinceName },
        { "O", NID_organizationName },
        { "OU", NID_organizationalUnitName },
        { "DC", NID_domainComponent },
        { "STREET", NID_streetAddress },
        { "SERIALNUMBER", NID_serialNumber },
        /* clang-format on */
};

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char) tolower((unsigned char) c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* RFC 4514 order: the string starts with the most specific RDN ("CN=...,O=..."),
 * which is the last one in the encoded name. So entries are inserted at the front,
 * and X509_NAME_print_ex(XN_FLAG_RFC2253) gives back the string we were given. */
int x509_name_from_string(const char *s, X509_NAME **ret, char **ret_error) {
        _cleanup_(X509_NAME_freep) X509_NAME *name = NULL;
        _cleanup_free_ char *value = NULL;
        const char *p = s;

        if (isempty(s))
                return ret_error_set(ret_error, -EINVAL, "Empty subject name");

        name = X509_NAME_new();
        value = malloc(strlen(s) + 1);
        if (!name || !value)
                return -ENOMEM;

        for (;;) {
                const char *type_start, *type_end;
                size_t vlen = 0, vlen_trimmed = 0;
                int nid = NID_undef;

                while (*p == ' ')
                        p++;
                type_start = p;
                while (*p && *p != '=' && *p != ',')
                        p++;
                type_end = p;
                while (type_end > type_start && type_end[-1] == ' ')
                        type_end--;
                if (type_end == type_start)
                        return ret_error_set(ret_error, -EINVAL, "Subject '%s': empty attribute type", s);
                if (*p != '=')
                        return ret_error_set(ret_error, -EINVAL, "Subject '%s': '%.*s' has no '=' and value",
                                             s, (int) (type_end - type_start), type_start);

                for (size_t i = 0; i < ELEMENTSOF(name_attributes); i++)
                        if (strlen(name_attributes[i].name) == (size_t) (type_end - type_start) &&
                            strncasecmp(name_attributes[i].name, type_start,
                                        (size_t) (type_end - type_start)) == 0)
                                nid = name_attributes[i].nid;
                if (nid == NID_undef)
                        return ret_error_set(
                                ret_error, -EINVAL,
                                "Subject '%s': unknown attribute type '%.*s' (known: CN, C, L, ST, O, OU, "
                                "DC, STREET, serialNumber)",
                                s, (int) (type_end - type_start), type_start);

                p++; /* '=' */
                while (*p == ' ')
                        p++;
                while (*p && *p != ',') {
                        if (*p == '\\') {
                                if (p[1] == 0)
                                        return ret_error_set(ret_error, -EINVAL,
                                                             "Subject '%s': dangling '\\' at the end", s);
                                if (hexval(p[1]) >= 0 && p[2] && hexval(p[2]) >= 0) {
                                        value[vlen++] = (char) (hexval(p[1]) << 4 | hexval(p[2]));
                                        p += 3;
                                } else {
                                        value[vlen++] = p[1];
                                        p += 2;
                                }
                                vlen_trimmed = vlen; /* an escaped character is never trimmed */
                                continue;
                        }
                        value[vlen++] = *p++;
                        if (value[vlen - 1] != ' ')
                                vlen_trimmed = vlen;
                }
                vlen = vlen_trimmed;
                if (vlen == 0)
                        return ret_error_set(ret_error, -EINVAL, "Subject '%s': empty value for %.*s", s,
                                             (int) (type_end - type_start), type_start);
                if (memchr(value, 0, vlen))
                        return ret_error_set(ret_error, -EINVAL, "Subject '%s': value contains a NUL byte",
                                             s);

                if (X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (const unsigned char *) value,
                                               (int) vlen, 0, 0) != 1)
                        return ret_error_set(ret_error, -EINVAL,
                                             "Subject '%s': bad value '%.*s' for %.*s: %s", s, (int) vlen,
                                             value, (int) (type_end - type_start), type_start,
                                             openssl_last_error());

                if (*p == 0)
                        break;
                p++; /* ',' */
        }

        *ret = TAKE_PTR(name);
        return 0;
}

static const EVP_MD *digest_from_string(const char *s) {
        if (isempty(s) || streq(s, "sha256"))
                return EVP_sha256();
        if (streq(s, "sha384"))
                return EVP_sha384();
        if (streq(s, "sha512"))
                return EVP_sha512();
        return NULL;
}

static bool pkey_is_eddsa(EVP_PKEY *pkey) {
        return EVP_PKEY_is_a(pkey, "ED25519") || EVP_PKEY_is_a(pkey, "ED448");
}

/* A random positive serial of exactly 16 bytes: the top bit is cleared so that the
 * DER INTEGER is positive without a leading zero byte (RFC 5280 allows up to 20
 * octets, we stay at 16), and the next bit is set so that it is never zero and
 * always 16 bytes long. That leaves 126 random bits, far above the 64 that
 * CA/Browser Forum rules ask for. */
static int random_serial(ASN1_INTEGER **ret) {
        uint8_t b[SERIAL_SIZE];
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        int r;

        r = random_bytes(b, sizeof b);
        if (r < 0)
                return r;
        b[0] = (uint8_t) ((b[0] & 0x7f) | 0x40);

        bn = BN_bin2bn(b, sizeof b, NULL);
        if (!bn)
                return -ENOMEM;
        *ret = BN_to_ASN1_INTEGER(bn, NULL);
        return *ret ? 0 : -ENOMEM;
}

/* RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents. */
static ASN1_OCTET_STRING *key_id_from_bitstr(const ASN1_BIT_STRING *bits) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        ASN1_OCTET_STRING *o;

        if (!bits)
                return NULL;
        if (EVP_Digest(ASN1_STRING_get0_data(bits), (size_t) ASN1_STRING_length(bits), md, &mdlen,
                       EVP_sha1(), NULL) != 1)
                return NULL;
        o = ASN1_OCTET_STRING_new();
        if (!o || ASN1_OCTET_STRING_set(o, md, (int) mdlen) != 1) {
                ASN1_OCTET_STRING_free(o);
                return NULL;
        }
        return o;
}

static uint64_t asn1_time_to_sec(const ASN1_TIME *t) {
        struct tm tm = {0};
        time_t s;

        if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
                return 0;
        s = timegm(&tm);
        return s > 0 ? (uint64_t) s : 0;
}

static int add_basic_constraints(X509 *x, bool ca) {
        _cleanup_(BASIC_CONSTRAINTS_freep) BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();

        if (!bc)
                return -ENOMEM;
        bc->ca = ca ? 0xff : 0;
        if (X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT) != 1)
                return -EIO;
        return 0;
}

static int add_key_usage(X509 *x, const int *bits, size_t n) {
        _cleanup_(ASN1_BIT_STRING_freep) ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();

        if (!ku)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (ASN1_BIT_STRING_set_bit(ku, bits[i], 1) != 1)
                        return -ENOMEM;
        if (X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_DEFAULT) != 1)
                return -EIO;
        return 0;
}

/* SKI of x, and an AKI naming issuer_key_id, or x's own SKI when self-signed (NULL). */
static int add_key_ids(X509 *x, const ASN1_OCTET_STRING *issuer_key_id) {
        _cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *ski =
                key_id_from_bitstr(X509_get0_pubkey_bitstr(x));
        _cleanup_(AUTHORITY_KEYID_freep) AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();

        if (!ski || !akid)
                return -ENOMEM;
        if (X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, X509V3_ADD_DEFAULT) != 1)
                return -EIO;
        akid->keyid = ASN1_OCTET_STRING_dup(issuer_key_id ? issuer_key_id : ski);
        if (!akid->keyid)
                return -ENOMEM;
        if (X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) != 1)
                return -EIO;
        return 0;
}

static int ca_finish(Ca *ca) {
        const ASN1_OCTET_STRING *ski;

        /* Prefer the SKI the certificate carries (an imported CA may use another
         * method); fall back to computing it. */
        ski = X509_get0_subject_key_id(ca->cert);
        ca->key_id =
                ski ? ASN1_OCTET_STRING_dup(ski) : key_id_from_bitstr(X509_get0_pubkey_bitstr(ca->cert));
        if (!ca->key_id)
                return -ENOMEM;
        ca->not_after = asn1_time_to_sec(X509_get0_notAfter(ca->cert)) * USEC_PER_SEC;
        return 0;
}

const ASN1_OCTET_STRING *ca_key_id(const Ca *ca) {
        return ca->key_id ? ca->key_id : X509_get0_subject_key_id(ca->cert);
}

int ca_create(const CaSettings *s, Ca **ret, char **ret_error) {
        _cleanup_(X509_NAME_freep) X509_NAME *name = NULL;
        _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *serial = NULL;
        _cleanup_(ca_freep) Ca *ca = NULL;
        const EVP_MD *md;
        uint64_t now;
        int r;

        if (!s || !ret)
                return -EINVAL;

        r = x509_name_from_string(s->subject, &name, ret_error);
        if (r < 0)
                return r;
        if (!key_algorithm_to_string(s->key_algorithm))
                return ret_error_set(ret_error, -EINVAL, "Invalid CA key algorithm %i",
                                     (int) s->key_algorithm);
        if (s->validity_days < 1 || s->validity_days > VALIDITY_DAYS_MAX)
                return ret_error_set(ret_error, -EINVAL, "CA validity of %u days is out of range 1..%u",
                                     s->validity_days, VALIDITY_DAYS_MAX);
        md = digest_from_string(s->digest);
        if (!md)
                return ret_error_set(ret_error, -EINVAL,
                                     "Unknown digest '%s' (expected sha256, sha384 or sha512)", s->digest);
        if (s->key_algorithm == KEY_ALGORITHM_ED25519)
                md = NULL;

        ca = calloc(1, sizeof *ca);
        if (!ca)
                return -ENOMEM;
        ca->md = md;

        r = key_generate(s->key_algorithm, &ca->key);
        if (r < 0)
                return ret_error_set(ret_error, r, "Cannot generate the CA key (%s)",
                                     key_algorithm_to_string(s->key_algorithm));

        ca->cert = X509_new();
        if (!ca->cert)
                return -ENOMEM;
        r = random_serial(&serial);
        if (r < 0)
                return r;

        now = now_usec() / USEC_PER_SEC;
        if (X509_set_version(ca->cert, X509_VERSION_3) != 1 ||
            X509_set_serialNumber(ca->cert, serial) != 1 || X509_set_subject_name(ca->cert, name) != 1 ||
            X509_set_issuer_name(ca->cert, name) != 1 || X509_set_pubkey(ca->cert, ca->key) != 1)
                return ret_error_set(ret_error, -EIO, "Cannot build the CA certificate: %s",
                                     openssl_last_error());
        if (asn1_time_set_sec(X509_getm_notBefore(ca->cert), now - CLOCK_SKEW_SEC) < 0 ||
            asn1_time_set_sec(X509_getm_notAfter(ca->cert), now + (uint64_t) s->validity_days * 86400) < 0)
                return -ENOMEM;

        static const int ku[] = {5 /* keyCertSign */, 6 /* cRLSign */};
        r = add_basic_constraints(ca->cert, true);
        if (r >= 0)
                r = add_key_usage(ca->cert, ku, ELEMENTSOF(ku));
        if (r >= 0)
                r = add_key_ids(ca->cert, NULL);
        if (r < 0)
                return ret_error_set(ret_error, r, "Cannot add CA extensions: %s", openssl_last_error());

        if (X509_sign(ca->cert, ca->key, ca->md) <= 0)
                return ret_error_set(ret_error, -EIO, "Cannot sign the CA certificate: %s",
                                     openssl_last_error());

        r = ca_finish(ca);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(ca);
        return 0;
}

int ca_load(EVP_PKEY *key, X509 *cert, const char *digest, Ca **ret) {
        _cleanup_(ca_freep) Ca *ca = NULL;
        const EVP_MD *md;
        int r;

        if (!key || !cert || !ret)
                return -EINVAL;
        if (X509_check_private_key(cert, key) != 1) {
                ERR_clear_error();
                return log_debug_errno(EINVAL, "CA key does not match the CA certificate.");
        }
        md = digest_from_string(digest);
        if (!md)
                return -EINVAL;

        ca = calloc(1, sizeof *ca);
        if (!ca)
                return -ENOMEM;
        ca->md = pkey_is_eddsa(key) ? NULL : md;
        if (EVP_PKEY_up_ref(key) != 1)
                return -EIO;
        ca->key = key;
        if (X509_up_ref(cert) != 1)
                return -EIO;
        ca->cert = cert;

        r = ca_finish(ca);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(ca);
        return 0;
}

/* Copy a public key at the X509_PUBKEY level: algorithm identifier and key bits,
 * without decoding the key. X509_set_pubkey(X509_REQ_get0_pubkey()) would
 * re-encode the key through the encoder framework and decode it again (~1.8x the
 * cost of the whole signing). The copy's in-memory EVP_PKEY is left unset. */
static int x509_pubkey_copy(X509_PUBKEY *dst, const X509_PUBKEY *src) {
        const unsigned char *pk = NULL;
        int pklen = 0;
        X509_ALGOR *alg = NULL;

        if (X509_PUBKEY_get0_param(NULL, &pk, &pklen, &alg, src) != 1 || !alg || pklen <= 0)
                return -EBADMSG;
        return x509_pubkey_set_encoded(dst, alg, pk, pklen);
}

/* name is normalised (san_normalize()): an IP address, a URI or a DNS name. */
static int general_names_add(GENERAL_NAMES *gens, const char *name) {
        GENERAL_NAME *g = NULL;
        int r;

        /* Skip names already present (case-insensitively: DNS names are). */
        for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++)
                if (general_name_equal_san(sk_GENERAL_NAME_value(gens, i), name))
                        return 0;

        r = general_name_from_san(name, &g);
        if (r < 0)
                return r;
        if (!sk_GENERAL_NAME_push(gens, g)) {
                GENERAL_NAME_free(g);
                return -ENOMEM;
        }
        return 0;
}

int ca_sign_leaf(const Ca *ca, const LeafRequest *req, X509 **ret, char **ret_error) {
        _cleanup_(X509_freep) X509 *x = NULL;
        _cleanup_(X509_NAME_freep) X509_NAME *subject = NULL;
        _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *serial = NULL;
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = NULL;
        _cleanup_(EXTENDED_KEY_USAGE_freep) EXTENDED_KEY_USAGE *eku = NULL;
        _cleanup_free_ char *cn_normalized = NULL;
        uint64_t now, not_before, not_after, ca_not_after;
        bool rsa, cn_in_subject;
        size_t n_names = 0;
        int r;

        if (!ca || !ca->key || !ca->cert || !req || !ret)
                return -EINVAL;
        if (isempty(req->common_name))
                return ret_error_set(ret_error, -EINVAL, "A leaf certificate needs a common name");
        if (!!req->csr + !!req->spki + !!req->pkey != 1)
                return ret_error_set(ret_error, -EINVAL,
                                     "Exactly one of a CSR and a public key must be given");
        if (req->validity_days < 1 || req->validity_days > VALIDITY_DAYS_MAX)
                return ret_error_set(ret_error, -EINVAL, "Validity of %u days is out of range 1..%u",
                                     req->validity_days, VALIDITY_DAYS_MAX);
        for (char *const *i = req->dns_names; i && *i; i++)
                n_names++;
        if (n_names > SANS_MAX)
                return ret_error_set(ret_error, -E2BIG, "%zu names, more than the limit of %u", n_names,
                                     SANS_MAX);

        /* The CN goes into the SAN too, so it must be a name a SAN can be: a DNS name, an
         * IP address or a URI. */
        SanType cn_type;
        r = san_normalize(req->common_name, &cn_type, &cn_normalized, ret_error);
        if (r < 0)
                return r;

        x = X509_new();
        subject = X509_NAME_new();
        gens = GENERAL_NAMES_new();
        eku = sk_ASN1_OBJECT_new_null();
        if (!x || !subject || !gens || !eku)
                return -ENOMEM;

        /* ub-common-name is 64: a longer name lives in the SAN alone, with an empty
         * subject, and the SAN is then critical (RFC 5280 §4.2.1.6). So does a URI (a
         * SPIFFE ID, say): a subject CN is a host's name, and no verifier looks for a URI
         * there. */
        cn_in_subject = strlen(req->common_name) <= 64 && cn_type != SAN_URI;
        if (cn_in_subject &&
            X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                       (const unsigned char *) req->common_name, -1, -1, 0) != 1)
                return ret_error_set(ret_error, -EINVAL, "Bad common name '%s': %s", req->common_name,
                                     openssl_last_error());

        r = random_serial(&serial);
        if (r < 0)
                return r;

        now = (req->now > 0 ? req->now : now_usec()) / USEC_PER_SEC;
        not_before = now > CLOCK_SKEW_SEC ? now - CLOCK_SKEW_SEC : 0;
        not_after = now + (uint64_t) req->validity_days * 86400;
        ca_not_after = ca->not_after > 0 ? ca->not_after / USEC_PER_SEC
                                         : asn1_time_to_sec(X509_get0_notAfter(ca->cert));
        if (not_after > ca_not_after)
                not_after = ca_not_after;
        if (not_after <= now)
                return ret_error_set(ret_error, -EINVAL, "The CA certificate has expired");

        if (X509_set_version(x, X509_VERSION_3) != 1 || X509_set_serialNumber(x, serial) != 1 ||
            X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1 ||
            X509_set_subject_name(x, subject) != 1 || asn1_time_set_sec(X509_getm_notBefore(x), not_before) < 0 ||
            asn1_time_set_sec(X509_getm_notAfter(x), not_after) < 0)
                return ret_error_set(ret_error, -EIO, "Cannot build the certificate: %s",
                                     openssl_last_error());

        if (req->csr || req->spki) {
                const X509_PUBKEY *pub = req->spki ? req->spki : X509_REQ_get_X509_PUBKEY(req->csr);
                ASN1_OBJECT *alg = NULL;

                if (!pub)
                        return ret_error_set(ret_error, -EBADMSG, "The CSR has no public key");
                r = x509_pubkey_copy(X509_get_X509_PUBKEY(x), pub);
                if (r < 0)
                        return ret_error_set(ret_error, r, "Cannot copy the CSR's public key");
                (void) X509_PUBKEY_get0_param(&alg, NULL, NULL, NULL, pub);
                rsa = OBJ_obj2nid(alg) == NID_rsaEncryption || OBJ_obj2nid(alg) == NID_rsassaPss;
        } else {
                /* Without the encoder framework where the key type allows (spki-encode.c). */
                r = spki_set_from_pkey(X509_get_X509_PUBKEY(x), req->pkey);
                if (r == -EOPNOTSUPP)
                        r = X509_set_pubkey(x, req->pkey) == 1 ? 0 : -EINVAL;
                if (r < 0)
                        return ret_error_set(ret_error, r, "Cannot set the public key: %s",
                                             openssl_last_error());
                rsa = EVP_PKEY_is_a(req->pkey, "RSA") || EVP_PKEY_is_a(req->pkey, "RSA-PSS");
        }

        r = general_names_add(gens, cn_normalized);
        if (r < 0)
                return r;
        for (char *const *i = req->dns_names; i && *i; i++) {
                _cleanup_free_ char *normalized = NULL;

                /* Callers pass normalised names; check anyway, since nothing that is not
                 * a valid DNS name, IP address or URI may end up in a certificate we sign. */
                r = san_normalize(*i, NULL, &normalized, ret_error);
                if (r < 0)
                        return r;
                r = general_names_add(gens, normalized);
                if (r < 0)
                        return r;
        }

        if (!sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)) ||
            !sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)))
                return -ENOMEM;

        static const int ku_rsa[] = {0 /* digitalSignature */, 2 /* keyEncipherment */};
        static const int ku_other[] = {0 /* digitalSignature */};
        r = add_basic_constraints(x, false);
        if (r >= 0)
                r = rsa ? add_key_usage(x, ku_rsa, ELEMENTSOF(ku_rsa))
                        : add_key_usage(x, ku_other, ELEMENTSOF(ku_other));
        if (r >= 0 && X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT) != 1)
                r = -EIO;
        if (r >= 0)
                r = ca_key_id(ca) ? add_key_ids(x, ca_key_id(ca)) : -EINVAL;
        if (r >= 0 &&
            X509_add1_ext_i2d(x, NID_subject_alt_name, gens, !cn_in_subject, X509V3_ADD_DEFAULT) != 1)
                r = -EIO;
        if (r < 0)
                return ret_error_set(ret_error, r, "Cannot add extensions: %s", openssl_last_error());

        if (X509_sign(x, ca->key, ca->md) <= 0)
                return ret_error_set(ret_error, -EIO, "Cannot sign the certificate: %s",
                                     openssl_last_error());

        *ret = TAKE_PTR(x);
        return 0;
}
