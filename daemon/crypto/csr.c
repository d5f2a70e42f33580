/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Certificate signing requests: the fast reading (our ASN.1 template, spki.c,
 * no OSSL_DECODER), OpenSSL's generic X509_REQ path, and the names taken from a
 * request. */

#include <arpa/inet.h>
#include <ctype.h>

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "log.h"
#include "spki.h"
#include "x509-internal.h"
#include "x509.h"

Csr *csr_free(Csr *c) {
        if (!c)
                return NULL;
        X509_PUBKEY_free(c->pubkey);
        free(c->common_name);
        strv_free(c->dns_names);
        free(c->key_algorithm);
        free(c->der);
        free(c);
        return NULL;
}

static void x509_extensions_freep(STACK_OF(X509_EXTENSION) * *p) {
        if (*p)
                sk_X509_EXTENSION_pop_free(*p, X509_EXTENSION_free);
}

int x509_pubkey_set_encoded(X509_PUBKEY *dst, const X509_ALGOR *alg, const unsigned char *key, int key_len) {
        ASN1_OBJECT *aobj_copy = NULL;
        int ptype = V_ASN1_UNDEF;
        const void *pval = NULL;
        const ASN1_OBJECT *aobj = NULL;
        void *pval_copy = NULL;
        unsigned char *penc = NULL;

        if (!dst || !alg || !key || key_len <= 0)
                return -EBADMSG;
        X509_ALGOR_get0(&aobj, &ptype, &pval, alg);

        aobj_copy = OBJ_dup(aobj);
        if (!aobj_copy)
                return -ENOMEM;
        if (ptype == V_ASN1_OBJECT)
                pval_copy = OBJ_dup(pval);
        else if (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL && pval)
                pval_copy = ASN1_STRING_dup(pval);
        penc = OPENSSL_memdup(key, (size_t) key_len);
        if ((ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL && pval && !pval_copy) || !penc)
                goto fail;

        if (X509_PUBKEY_set0_param(dst, aobj_copy, ptype, pval_copy, penc, key_len) != 1)
                goto fail;
        return 0;

fail:
        ASN1_OBJECT_free(aobj_copy);
        if (ptype == V_ASN1_OBJECT)
                ASN1_OBJECT_free(pval_copy);
        else
                ASN1_STRING_free(pval_copy);
        OPENSSL_free(penc);
        return -ENOMEM;
}

static int x509_pubkey_new_encoded(const X509_ALGOR *alg, const unsigned char *key, int key_len,
                                   X509_PUBKEY **ret) {
        X509_PUBKEY *pub = X509_PUBKEY_new();
        int r;

        if (!pub)
                return -ENOMEM;
        r = x509_pubkey_set_encoded(pub, alg, key, key_len);
        if (r < 0) {
                X509_PUBKEY_free(pub);
                return r;
        }
        *ret = pub;
        return 0;
}

/* CertificationRequest (RFC 2986) exactly as OpenSSL's X509_REQ template reads
 * it, except that the SubjectPublicKeyInfo stays a plain AlgorithmIdentifier and
 * BIT STRING: the X509_PUBKEY item would decode the key through OSSL_DECODER
 * right away, which is most of the cost of d2i_X509_REQ() in OpenSSL 3.0. The
 * info keeps its received encoding (what the signature covers, and what
 * i2d_X509_REQ() writes back). */
typedef struct CkSpki {
        X509_ALGOR *algor;
        ASN1_BIT_STRING *public_key;
} CkSpki;

ASN1_SEQUENCE(CkSpki) = {
        ASN1_SIMPLE(CkSpki, algor, X509_ALGOR),
        ASN1_SIMPLE(CkSpki, public_key, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CkSpki)

typedef struct CkReqInfo {
        ASN1_ENCODING enc;
        ASN1_INTEGER *version;
        X509_NAME *subject;
        CkSpki *spki;
        STACK_OF(X509_ATTRIBUTE) *attributes;
} CkReqInfo;

ASN1_SEQUENCE_enc(CkReqInfo, enc, 0) = {
        ASN1_SIMPLE(CkReqInfo, version, ASN1_INTEGER),
        ASN1_SIMPLE(CkReqInfo, subject, X509_NAME),
        ASN1_SIMPLE(CkReqInfo, spki, CkSpki),
        /* [0] IMPLICIT, not optional in RFC 2986, but as lenient as OpenSSL. */
        ASN1_IMP_SET_OF_OPT(CkReqInfo, attributes, X509_ATTRIBUTE, 0),
} static_ASN1_SEQUENCE_END_ref(CkReqInfo, CkReqInfo)

typedef struct CkReq {
        CkReqInfo *info;
        X509_ALGOR *sig_alg;
        ASN1_BIT_STRING *signature;
} CkReq;

ASN1_SEQUENCE(CkReq) = {
        ASN1_SIMPLE(CkReq, info, CkReqInfo),
        ASN1_SIMPLE(CkReq, sig_alg, X509_ALGOR),
        ASN1_SIMPLE(CkReq, signature, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CkReq)

static void ck_req_freep(CkReq **p) {
        ASN1_item_free((ASN1_VALUE *) *p, ASN1_ITEM_rptr(CkReq));
}

static int base64_value(unsigned char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

/* The plain shape of a PEM CSR: optional leading white space, a BEGIN line for
 * "CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST", lines of base64 (padding
 * only at the very end), the matching END line, anything after it. Returns 1
 * with the DER in *ret (malloc'd), 0 for any other shape (headers, other blocks
 * first, odd white space...), which PEM_read_bio_X509_REQ() then handles, or
 * -ENOMEM. Input is bounded by CSR_MAX_SIZE. */
static int pem_csr_decode(const char *data, size_t size, uint8_t **ret, size_t *ret_len) {
        static const char *const labels[] = { "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST" };
        const char *p = data, *end = data + size, *label = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        size_t n_out = 0, n_pad = 0;
        uint32_t acc = 0;
        unsigned n_acc = 0;

        while (p < end && isspace((unsigned char) *p))
                p++;
        /* PEM_read_bio() skips whole lines only: the BEGIN must start a line. */
        if (p > data && p[-1] != '\n')
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(labels) && !label; i++) {
                size_t l = strlen(labels[i]);
                if ((size_t) (end - p) > STRLEN("-----BEGIN ") + l + STRLEN("-----") &&
                    memcmp(p, "-----BEGIN ", STRLEN("-----BEGIN ")) == 0 &&
                    memcmp(p + STRLEN("-----BEGIN "), labels[i], l) == 0 &&
                    memcmp(p + STRLEN("-----BEGIN ") + l, "-----", STRLEN("-----")) == 0)
                        label = labels[i];
        }
        if (!label)
                return 0;
        p += STRLEN("-----BEGIN ") + strlen(label) + STRLEN("-----");
        if (p < end && *p == '\r')
                p++;
        if (p >= end || *p != '\n')
                return 0;
        p++;

        out = malloc(size / 4 * 3 + 3);
        if (!out)
                return -ENOMEM;

        for (;;) {
                const char *eol = memchr(p, '\n', (size_t) (end - p));
                const char *line_end = eol ? eol : end;

                if (line_end > p && line_end[-1] == '\r')
                        line_end--;
                if (line_end - p >= 5 && memcmp(p, "-----", 5) == 0) {
                        size_t l = strlen(label);
                        if ((size_t) (line_end - p) != STRLEN("-----END ") + l + STRLEN("-----") ||
                            memcmp(p, "-----END ", STRLEN("-----END ")) != 0 ||
                            memcmp(p + STRLEN("-----END "), label, l) != 0 ||
                            memcmp(p + STRLEN("-----END ") + l, "-----", STRLEN("-----")) != 0)
                                return 0;
                        break;
                }
                if (!eol || line_end == p)
                        return 0; /* no END line, or an empty line */
                for (const char *c = p; c < line_end; c++) {
                        int v;
                        if (*c == '=') {
                                n_pad++;
                                continue;
                        }
                        v = base64_value((unsigned char) *c);
                        if (v < 0 || n_pad > 0)
                                return 0; /* not base64, or data after padding */
                        acc = (acc << 6) | (uint32_t) v;
                        if (++n_acc == 4) {
                                out[n_out++] = (uint8_t) (acc >> 16);
                                out[n_out++] = (uint8_t) (acc >> 8);
                                out[n_out++] = (uint8_t) acc;
                                acc = 0;
                                n_acc = 0;
                        }
                }
                p = eol + 1;
        }

        /* Whole quantums only: 2 or 3 characters ended by as many '=' as make four. */
        if (n_pad > 2 || (n_acc + n_pad) % 4 != 0 || (n_pad > 0 && n_acc == 0))
                return 0;
        if (n_acc == 2)
                out[n_out++] = (uint8_t) (acc >> 4);
        else if (n_acc == 3) {
                out[n_out++] = (uint8_t) (acc >> 10);
                out[n_out++] = (uint8_t) (acc >> 2);
        }
        if (n_out == 0)
                return 0;
        *ret = TAKE_PTR(out);
        *ret_len = n_out;
        return 1;
}

/* What csr_parse() takes from a request after the signature has been checked,
 * the same for both ways of reading it: CN, SANs (DNS names, IP addresses as text, URIs)
 * and their limits. */
static int csr_fill_names(Csr *c, const X509_NAME *subject, STACK_OF(X509_EXTENSION) *exts,
                          char **ret_error) {
        _cleanup_(general_names_freep) GENERAL_NAMES *gens = NULL;
        int r;

        r = name_get_cn(subject, &c->common_name);
        if (r == -EBADMSG)
                return ret_error_set(ret_error, r, "the request's common name is not a valid string");
        if (r < 0)
                return r;

        if (exts) {
                int crit = -1;
                gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
                if (!gens && crit == -2)
                        return ret_error_set(ret_error, -EBADMSG,
                                         "the request has more than one subjectAltName");
                if (!gens && crit >= 0)
                        return ret_error_set(ret_error, -EBADMSG,
                                         "the request's subjectAltName cannot be parsed");
        }
        ERR_clear_error();

        int n_gens = gens ? sk_GENERAL_NAME_num(gens) : 0;
        if ((size_t) n_gens > SANS_MAX)
                return ret_error_set(ret_error, -EMSGSIZE,
                                 "the request has %i subject alternative names, more than the limit of %u",
                                 n_gens, SANS_MAX);

        c->dns_names = calloc((size_t) n_gens + 1, sizeof(char *));
        if (!c->dns_names)
                return -ENOMEM;
        for (int i = 0; i < n_gens; i++) {
                const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                int type;
                const ASN1_STRING *s = GENERAL_NAME_get0_value(g, &type);

                /* Other types (e-mail addresses, directory names...) are not names we
                 * issue for: they are left out, as every other extension of a request. */
                if (type != GEN_DNS && type != GEN_IPADD && type != GEN_URI)
                        continue;
                const unsigned char *bytes = ASN1_STRING_get0_data(s);
                int l = ASN1_STRING_length(s);
                if (type == GEN_IPADD) {
                        char buf[INET6_ADDRSTRLEN];
                        if (ip_address_to_string(bytes, (size_t) MAX(l, 0), buf) < 0)
                                return ret_error_set(ret_error, -EBADMSG,
                                                 "an iPAddress in the request is %i bytes long, neither 4 "
                                                 "(IPv4) nor 16 (IPv6)",
                                                 l);
                        c->dns_names[c->n_dns_names] = strdup(buf);
                } else {
                        if (l < 0 || memchr(bytes, 0, (size_t) l))
                                return ret_error_set(ret_error, -EBADMSG, "a %s in the request contains a NUL byte",
                                                 type == GEN_DNS ? "dNSName" : "URI");
                        c->dns_names[c->n_dns_names] = strndup((const char *) bytes, (size_t) l);
                }
                if (!c->dns_names[c->n_dns_names])
                        return -ENOMEM;
                c->n_dns_names++;
        }
        return 0;
}

static int csr_set_der(Csr *c, unsigned char *der, int der_len, char **ret_error) {
        if (der_len <= 0)
                return ret_error_set(ret_error, -EBADMSG, "cannot encode the request: %s", openssl_last_error());
        c->der = malloc((size_t) der_len);
        if (!c->der) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        memcpy(c->der, der, (size_t) der_len);
        c->der_len = (size_t) der_len;
        OPENSSL_free(der);
        return 0;
}

/* The fast way: the request read with our template, the key checked and the
 * signature verified by spki.c, no OSSL_DECODER. Returns 1 with *ret when the
 * request is plainly good, 0 when anything is unusual (an unhandled key type,
 * a bad signature, trailing data, ...): then csr_parse_openssl() decides and
 * explains, exactly as it always has. Errors after the signature check (names)
 * are final either way. */
static int csr_parse_fast(const uint8_t *der, size_t der_len, Csr **ret, char **ret_error) {
        _cleanup_(ck_req_freep) CkReq *req = NULL;
        _cleanup_(csr_freep) Csr *c = NULL;
        const unsigned char *p = der;
        SpkiKey key;
        int r;

        req = (CkReq *) ASN1_item_d2i(NULL, &p, (long) der_len, ASN1_ITEM_rptr(CkReq));
        if (!req || p != der + der_len) {
                ERR_clear_error();
                return 0;
        }
        const CkReqInfo *info = req->info;
        if (ASN1_INTEGER_get(info->version) != 0 || !info->enc.enc || info->enc.len <= 0)
                return 0;
        if (spki_key_load(info->spki->algor, info->spki->public_key, &key) <= 0)
                return 0;
        r = spki_key_verify(&key, req->sig_alg, req->signature, info->enc.enc, (size_t) info->enc.len);
        if (r <= 0)
                return r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;

        /* The extensions exactly as X509_REQ_get_extensions() finds them (which
         * attribute, which value, how lenient): on a request that only carries the
         * attributes, so that nothing decodes the key. */
        _cleanup_(x509_extensions_freep) STACK_OF(X509_EXTENSION) *exts = NULL;
        {
                _cleanup_(X509_REQ_freep) X509_REQ *attrs = X509_REQ_new();
                if (!attrs)
                        return -ENOMEM;
                for (int i = 0; i < sk_X509_ATTRIBUTE_num(info->attributes); i++)
                        if (X509_REQ_add1_attr(attrs, sk_X509_ATTRIBUTE_value(info->attributes, i)) != 1)
                                return -ENOMEM;
                exts = X509_REQ_get_extensions(attrs);
        }
        r = csr_fill_names(c, info->subject, exts, ret_error);
        if (r < 0)
                return r;

        c->key_algorithm = spki_key_describe(&key, &c->rsa_bits);
        if (!c->key_algorithm)
                return -ENOMEM;
        r = x509_pubkey_new_encoded(info->spki->algor, ASN1_STRING_get0_data(info->spki->public_key),
                                    ASN1_STRING_length(info->spki->public_key), &c->pubkey);
        if (r < 0)
                return r;

        /* The received info and the re-encoded rest, as i2d_X509_REQ() writes it. */
        unsigned char *out = NULL;
        int out_len = ASN1_item_i2d((const ASN1_VALUE *) req, &out, ASN1_ITEM_rptr(CkReq));
        r = csr_set_der(c, out, out_len, ret_error);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 1;
}

/* The generic way, through OpenSSL's X509_REQ (which decodes the key with
 * OSSL_DECODER): every key type OpenSSL knows, and the readable reason for
 * every request that is refused. */
static int csr_parse_openssl(const void *data, size_t size, Csr **ret, char **ret_error) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_(csr_freep) Csr *c = NULL;
        int r;

        if (looks_like_pem(data, size)) {
                _cleanup_(BIO_free_allp) BIO *bio = BIO_new_mem_buf(data, (int) size);
                if (!bio)
                        return -ENOMEM;
                req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
                if (!req)
                        return ret_error_set(ret_error, -EBADMSG, "not a PEM certificate request: %s",
                                         openssl_last_error());
        } else {
                const unsigned char *p = data;
                req = d2i_X509_REQ(NULL, &p, (long) size);
                if (!req)
                        return ret_error_set(ret_error, -EBADMSG,
                                         "neither a PEM nor a DER certificate request: %s",
                                         openssl_last_error());
                if (p != (const unsigned char *) data + size)
                        return ret_error_set(ret_error, -EBADMSG,
                                         "%zu bytes of trailing data after the DER request",
                                         size - (size_t) (p - (const unsigned char *) data));
        }

        EVP_PKEY *pkey = X509_REQ_get0_pubkey(req);
        if (!pkey)
                return ret_error_set(ret_error, -EBADMSG, "the request's public key cannot be decoded: %s",
                                 openssl_last_error());
        r = X509_REQ_verify(req, pkey);
        if (r <= 0)
                return ret_error_set(ret_error, -EKEYREJECTED,
                                 "the request's signature does not verify with its public key: %s",
                                 openssl_last_error());

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;

        _cleanup_(x509_extensions_freep) STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
        r = csr_fill_names(c, X509_REQ_get_subject_name(req), exts, ret_error);
        if (r < 0)
                return r;

        c->key_algorithm = pkey_describe(pkey, &c->rsa_bits);
        if (!c->key_algorithm)
                return -ENOMEM;

        const unsigned char *key = NULL;
        int key_len = 0;
        X509_ALGOR *alg = NULL;
        if (X509_PUBKEY_get0_param(NULL, &key, &key_len, &alg, X509_REQ_get_X509_PUBKEY(req)) != 1)
                return ret_error_set(ret_error, -EBADMSG, "the request has no public key");
        r = x509_pubkey_new_encoded(alg, key, key_len, &c->pubkey);
        if (r < 0)
                return r;

        unsigned char *der = NULL;
        int der_len = i2d_X509_REQ(req, &der);
        r = csr_set_der(c, der, der_len, ret_error);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

static X509_REQ *csr_request_assemble(const uint8_t *der, size_t len) {
        _cleanup_(ck_req_freep) CkReq *cr = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        const unsigned char *p = der;
        unsigned char *out = NULL;
        ASN1_BIT_STRING *sig = NULL;
        SpkiKey key;
        int n;

        cr = (CkReq *) ASN1_item_d2i(NULL, &p, (long) len, ASN1_ITEM_rptr(CkReq));
        if (!cr || p != der + len || ASN1_INTEGER_get(cr->info->version) != 0)
                return NULL;
        const CkReqInfo *info = cr->info;
        if (spki_key_load(info->spki->algor, info->spki->public_key, &key) <= 0)
                return NULL;
        pkey = spki_key_to_pkey(&key);
        req = X509_REQ_new();
        if (!pkey || !req)
                return NULL;
        if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
            X509_REQ_set_subject_name(req, info->subject) != 1 || X509_REQ_set_pubkey(req, pkey) != 1)
                return NULL;
        /* The key as it was encoded (parameters and all), the EVP_PKEY still attached. */
        if (x509_pubkey_set_encoded(X509_REQ_get_X509_PUBKEY(req), info->spki->algor,
                                    ASN1_STRING_get0_data(info->spki->public_key),
                                    ASN1_STRING_length(info->spki->public_key)) < 0)
                return NULL;
        for (int i = 0; i < sk_X509_ATTRIBUTE_num(info->attributes); i++)
                if (X509_REQ_add1_attr(req, sk_X509_ATTRIBUTE_value(info->attributes, i)) != 1)
                        return NULL;
        sig = ASN1_STRING_dup(cr->signature);
        if (!sig || X509_REQ_set1_signature_algo(req, cr->sig_alg) != 1) {
                ASN1_BIT_STRING_free(sig);
                return NULL;
        }
        X509_REQ_set0_signature(req, sig);

        /* Only a request that encodes back to the very same bytes: the signature
         * covers them, and providers send this request on. */
        n = i2d_X509_REQ(req, &out);
        bool same = n > 0 && (size_t) n == len && memcmp(out, der, len) == 0;
        OPENSSL_free(out);
        return same ? TAKE_PTR(req) : NULL;
}

X509_REQ *csr_request_from_der(const uint8_t *der, size_t len) {
        X509_REQ *req;

        if (!der || len == 0 || len > LONG_MAX)
                return NULL;
        if (len <= CSR_MAX_SIZE) {
                req = csr_request_assemble(der, len);
                ERR_clear_error();
                if (req)
                        return req;
        }
        const unsigned char *p = der;
        return d2i_X509_REQ(NULL, &p, (long) len);
}

static uint64_t stats_fast, stats_generic;

void csr_parse_stats(uint64_t *ret_fast, uint64_t *ret_generic) {
        if (ret_fast)
                *ret_fast = __atomic_load_n(&stats_fast, __ATOMIC_RELAXED);
        if (ret_generic)
                *ret_generic = __atomic_load_n(&stats_generic, __ATOMIC_RELAXED);
}

int csr_parse(const void *data, size_t size, Csr **ret, char **ret_error) {
        _cleanup_free_ uint8_t *pem_der = NULL;
        const uint8_t *der = data;
        size_t der_len = size;
        int r;

        if (!data && size > 0)
                return -EINVAL;
        if (size > CSR_MAX_SIZE)
                return ret_error_set(ret_error, -EMSGSIZE, "CSR is %zu bytes, more than the limit of %u bytes",
                                 size, CSR_MAX_SIZE);
        if (size == 0)
                return ret_error_set(ret_error, -EBADMSG, "CSR is empty");

        r = 1;
        if (looks_like_pem(data, size)) {
                r = pem_csr_decode(data, size, &pem_der, &der_len);
                der = pem_der;
        }
        if (r < 0)
                return r;
        if (r > 0) {
                r = csr_parse_fast(der, der_len, ret, ret_error);
                if (r != 0) {
                        __atomic_add_fetch(&stats_fast, 1, __ATOMIC_RELAXED);
                        return MIN(r, 0);
                }
        }
        __atomic_add_fetch(&stats_generic, 1, __ATOMIC_RELAXED);
        return csr_parse_openssl(data, size, ret, ret_error);
}
