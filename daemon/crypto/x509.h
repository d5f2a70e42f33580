/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1: X.509 parsing and validation primitives (no store, no bus). */

#include "macro.h"
#include "openssl-util.h"

#define CSR_MAX_SIZE (64U * 1024U)    /* bytes, PEM or DER */
#define SANS_MAX 1000U                /* hard ceiling on SANs in one request; policy MaxSANs is lower */
#define DNS_NAME_MAX 253U
#define DNS_LABEL_MAX 63U

/* Key algorithms by their contract names (DESIGN.md). */
typedef enum KeyAlgorithm {
        KEY_ALGORITHM_INVALID = -1,
        KEY_ALGORITHM_RSA_2048 = 0,
        KEY_ALGORITHM_RSA_3072,
        KEY_ALGORITHM_RSA_4096,
        KEY_ALGORITHM_EC_256,
        KEY_ALGORITHM_EC_384,
        KEY_ALGORITHM_ED25519,
        _KEY_ALGORITHM_MAX,
} KeyAlgorithm;

const char *key_algorithm_to_string(KeyAlgorithm a);
KeyAlgorithm key_algorithm_from_string(const char *s);

/* Describe any public key as a contract-style name: "rsa-2048", "rsa-1024",
 * "rsa-2047" (odd sizes as they are), "ec-256", "ec-384", "ec-521", "ed25519",
 * "ed448", else "unknown". ret_rsa_bits is set to the modulus size for RSA, 0
 * otherwise. Returns a newly allocated string. */
char *pkey_describe(EVP_PKEY *pkey, unsigned *ret_rsa_bits);

/* Validate and normalise one DNS name for a certificate: LDH labels, at most
 * one wildcard which must be the whole leftmost label, IDNs only as A-labels
 * ("xn--" with a valid punycode shape; raw UTF-8 is refused), label <= 63, name
 * <= 253, no empty labels, at least two labels, a trailing dot dropped,
 * lower-cased. On failure returns -EINVAL and *ret_error says what is wrong with
 * the quoted name (e.g. "'ex ample.com': label 'ex ample' contains ' '"). */
int dns_name_normalize(const char *name, char **ret_normalized, char **ret_error);

/* general-names.c: the names a certificate is for. A requested subject alternative name is a
 * string (DESIGN.md): an IPv4 or IPv6 literal is an iPAddress entry, one with a URI scheme
 * ("spiffe://...", "https://...", "urn:...") a URI entry, anything else a DNS name. The same
 * strings show a certificate's names (CertInfo.sans, SubjectAlternativeNames). */
#define URI_MAX 2048U

typedef enum SanType {
        SAN_DNS,
        SAN_IP,
        SAN_URI,
} SanType;

/* The type by the form alone; san_normalize() says whether the name is valid. Strings that
 * were meant as IP addresses (digits and dots only, hex digits and colons, "[...]") are
 * SAN_IP even when they are not valid ones; "host:443" is not a URI. */
SanType san_type(const char *name);
const char *san_type_to_string(SanType t);   /* "DNS name", "IP address", "URI" */

/* Validate and normalise one name by its type: a DNS name as dns_name_normalize(); an IP
 * address as its canonical text (inet_ntop(): "10.0.0.5", "2001:db8::1"); a URI: RFC 3986
 * characters only ('%' followed by two hex digits), a scheme and something after it, at
 * most URI_MAX characters, the host of an authority a DNS name or an IP literal (RFC 5280
 * 4.2.1.6: no wildcard, not empty), scheme and host lower-cased. -EINVAL with *ret_error
 * naming the quoted name. */
int san_normalize(const char *name, SanType *ret_type, char **ret_normalized, char **ret_error);

/* An IPv4 or IPv6 literal: returns 4 or 16 with the address in ret, else -EINVAL. */
int ip_address_parse(const char *s, uint8_t ret[static 16]);
int ip_address_to_string(const uint8_t *addr, size_t len, char ret[static 46]);

/* A network in CIDR notation ("10.0.0.0/8", "2001:db8::/32"; a bare address is a /32 or
 * /128). Bits set after the prefix are refused, naming the network that was meant. */
typedef struct IpNetwork {
        uint8_t addr[16];
        unsigned len;                  /* 4 or 16 */
        unsigned prefix;               /* bits */
} IpNetwork;

int ip_network_parse(const char *s, IpNetwork *ret, char **ret_error);
char *ip_network_to_string(const IpNetwork *n);     /* "10.0.0.0/8" */
/* An IPv4 network contains IPv4 addresses only, an IPv6 one IPv6 addresses only. */
bool ip_network_contains(const IpNetwork *n, const uint8_t *addr, size_t len);

/* The host of a URI's authority, lower-case, an IPv6 literal without its brackets: 1 and
 * *ret_host, or 0 and NULL when the URI has none ("urn:..."); -EINVAL when it is no URI. */
int uri_get_host(const char *uri, char **ret_host);

/* The entry for a normalised name: iPAddress, uniformResourceIdentifier or dNSName. */
int general_name_from_san(const char *name, GENERAL_NAME **ret);
/* Whether g is that name (DNS names compare case-insensitively). */
bool general_name_equal_san(const GENERAL_NAME *g, const char *name);

/* Whether two normalised names are the same entry: IP addresses by value, URIs exactly, DNS
 * names case-insensitively. */
bool san_equal(const char *a, const char *b);

/* The form names are looked up in ("which certificates cover this name"): an IP address
 * canonical, a URI normalised (as found when it is not valid), anything else lower-case
 * without a trailing dot. The same for the names stored and the name asked for. */
char *san_lookup_form(const char *name);
/* The wildcard name that covers a DNS name (RFC 6125 6.4.3: one label): "*.example.com"
 * for "www.example.com"; NULL for a wildcard, an IP address, a URI, or a name of fewer
 * than three labels. */
char *san_wildcard_parent(const char *name);

/* A parsed, signature-checked CSR. */
typedef struct Csr {
        X509_PUBKEY *pubkey;     /* the subjectPublicKeyInfo as encoded, never decoded: use it with
                                  * i2d_X509_PUBKEY(), X509_PUBKEY_get0_param() or as
                                  * LeafRequest.spki; X509_PUBKEY_get0() on it fails. Decode
                                  * der with d2i_X509_REQ() where an X509_REQ is needed. */
        char *common_name;       /* subject CN or NULL */
        char **dns_names;        /* SANs as found (not normalised): dNSNames, URIs, and iPAddresses as
                                  * text (x509.h "general-names.c"), NULL-terminated, never NULL */
        size_t n_dns_names;
        char *key_algorithm;     /* pkey_describe() of the public key */
        unsigned rsa_bits;
        uint8_t *der;            /* canonical DER of the request */
        size_t der_len;
} Csr;

Csr *csr_free(Csr *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Csr *, csr_free)

/* Parse PEM ("-----BEGIN CERTIFICATE REQUEST-----" or "NEW CERTIFICATE
 * REQUEST") or DER; checks the size limit, the structure, and the signature.
 * Errors: -EMSGSIZE (too large), -EBADMSG (not a CSR), -EKEYREJECTED (bad
 * signature); *ret_error is a readable reason. */
int csr_parse(const void *data, size_t size, Csr **ret, char **ret_error);

/* d2i_X509_REQ() of a DER request (as stored from Csr.der), without
 * OSSL_DECODER for EC and RSA keys: the X509_REQ is assembled from the parts,
 * with an EVP_PKEY built from the encoding, and only returned when it encodes
 * back to exactly der; anything else is decoded by d2i_X509_REQ(). The
 * signature is not checked (csr_parse() did that before storing). NULL when
 * der is not a request. */
X509_REQ *csr_request_from_der(const uint8_t *der, size_t len);

/* How many csr_parse() calls were decided by the fast path (our ASN.1
 * template and spki.c, no OSSL_DECODER) and how many by OpenSSL's generic
 * X509_REQ path (other key types, unusual encodings, every refusal before the
 * names are looked at). Process-wide, for tests and benchmarks. */
void csr_parse_stats(uint64_t *ret_fast, uint64_t *ret_generic);

/* Set dst to the algorithm identifier alg and the key bits key (copies both),
 * without decoding the key: dst's in-memory EVP_PKEY stays unset. */
int x509_pubkey_set_encoded(X509_PUBKEY *dst, const X509_ALGOR *alg, const unsigned char *key, int key_len);

/* Everything the inventory shows about a certificate, extracted once when it
 * is stored (lists never parse certificates). */
typedef struct CertInfo {
        char *common_name;       /* may be "" */
        char **sans;             /* DNS names, IP addresses as text and URIs (see SanType),
                                  * NULL-terminated, never NULL */
        char *subject;           /* RFC 2253 one line, e.g. "CN=www.example.com,O=Example" */
        char *issuer;
        char *algorithm;         /* pkey_describe() */
        char *digest;            /* signature digest: "sha256", "sha384", "sha512", "sha1", "none" for ed25519 */
        uint64_t not_before;     /* usec since the epoch */
        uint64_t not_after;
        char *fingerprint_sha256; /* lowercase hex, no separators */
        char *serial;            /* lowercase hex, no leading zeros, "0" for zero */
        bool is_ca;              /* basicConstraints CA:TRUE */
        bool self_signed;        /* subject == issuer and verifies with own key */
        uint8_t *der;
        size_t der_len;
} CertInfo;

void cert_info_done(CertInfo *i);
int cert_info_from_x509(X509 *x, CertInfo *ret);

/* PEM <-> X509 helpers. x509_to_pem returns a newly allocated string. */
char *x509_to_pem(X509 *x);
X509 *x509_from_der(const uint8_t *der, size_t len);
X509 *x509_from_pem(const char *pem);
/* Every certificate in a PEM buffer, or the single DER certificate; NULL if none. */
STACK_OF(X509) *x509_stack_from_data(const void *data, size_t len);

/* SHA-256 of a buffer as lowercase hex (65 bytes incl. NUL). */
void sha256_hex(const void *data, size_t len, char ret[static 65]);
