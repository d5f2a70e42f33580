/* SPDX-License-Identifier: LGPL-2.1-or-later */

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

DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OCTET_STRING *, ASN1_OCTET_STRING_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_BIT_STRING *, ASN1_BIT_STRING_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BASIC_CONSTRAINTS *, BASIC_CONSTRAINTS_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(AUTHORITY_KEYID *, AUTHORITY_KEYID_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EXTENDED_KEY_USAGE *, EXTENDED_KEY_USAGE_free)

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

static int time_set(ASN1_TIME *t, uint64_t sec) {
        /* ASN1_TIME_set() picks UTCTime up to 2049 and GeneralizedTime after, as RFC 5280 asks. */
        return ASN1_TIME_set(t, (time_t) sec) ? 0 : -ENOMEM;
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

/* The CA's key identifier; a Ca not made by ca_create()/ca_load() lacks the cached one. */
static const ASN1_OCTET_STRING *ca_key_id(const Ca *ca) {
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
        if (time_set(X509_getm_notBefore(ca->cert), now - CLOCK_SKEW_SEC) < 0 ||
            time_set(X509_getm_notAfter(ca->cert), now + (uint64_t) s->validity_days * 86400) < 0)
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
            X509_set_subject_name(x, subject) != 1 || time_set(X509_getm_notBefore(x), not_before) < 0 ||
            time_set(X509_getm_notAfter(x), not_after) < 0)
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

        if (time_set(this_update, now / USEC_PER_SEC) < 0 ||
            time_set(next_update, (now + next_update_usec) / USEC_PER_SEC) < 0)
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
