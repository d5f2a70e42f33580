/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-limit: the in-process limit of CSR issuance on this machine, with
 * OpenSSL and nothing else (no bus, no store, no daemon).
 *
 *   bench-limit --threads T --count N --csr-file FILE --ca-cert PEM --ca-key PEM
 *
 * Each certificate: decode the CSR from PEM, verify its signature, build a v3
 * leaf like the Local CA does (CN subject, random 128-bit serial, validity,
 * the public key copied at the X509_PUBKEY level, basicConstraints, keyUsage,
 * EKU, SKI, AKI, subjectAltName), sign with SHA-256, encode to DER. Prints one
 * JSON object with the count, the seconds and certificates per second.
 *
 *   bench-limit --keygen --threads T --count N
 *
 * The reference for RequestCertificate rsa-2048: N RSA-2048 key generations. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static char **csrs;
static size_t n_csrs;
static X509 *ca_cert;
static EVP_PKEY *ca_key;
static ASN1_OCTET_STRING *ca_key_id;
static unsigned per_thread;

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int copy_pubkey(X509 *x, X509_REQ *req) {
        ASN1_OBJECT *obj = NULL;
        const unsigned char *bits = NULL;
        int len = 0, ptype;
        X509_ALGOR *alg = NULL;
        const void *pval;
        const ASN1_OBJECT *aobj;
        if (X509_PUBKEY_get0_param(&obj, &bits, &len, &alg, X509_REQ_get_X509_PUBKEY(req)) != 1 || !alg)
                return -1;
        X509_ALGOR_get0(&aobj, &ptype, &pval, alg);
        void *pcopy = NULL;
        if (ptype == V_ASN1_OBJECT)
                pcopy = OBJ_dup(pval);
        else if (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL && pval)
                pcopy = ASN1_STRING_dup(pval);
        unsigned char *bcopy = OPENSSL_memdup(bits, (size_t) len);
        return X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_dup(aobj), ptype, pcopy, bcopy, len) == 1 ? 0 : -1;
}

static int issue_one(const char *pem) {
        int ok = -1;
        BIO *bio = BIO_new_mem_buf(pem, -1);
        X509_REQ *req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!req)
                return -1;
        X509 *x = NULL;
        EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
        if (!pub || X509_REQ_verify(req, pub) != 1)
                goto out;

        /* The CN of the CSR's subject. */
        char cn[256] = "";
        X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, cn, sizeof cn);

        x = X509_new();
        unsigned char serial[16];
        if (!x || X509_set_version(x, X509_VERSION_3) != 1 || RAND_bytes(serial, sizeof serial) != 1)
                goto out;
        serial[0] &= 0x7f;
        serial[0] |= 0x01;
        BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
        ASN1_INTEGER *sn = BN_to_ASN1_INTEGER(bn, NULL);
        BN_free(bn);
        X509_set_serialNumber(x, sn);
        ASN1_INTEGER_free(sn);
        X509_set_issuer_name(x, X509_get_subject_name(ca_cert));
        X509_NAME *subj = X509_NAME_new();
        X509_NAME_add_entry_by_NID(subj, NID_commonName, MBSTRING_UTF8, (unsigned char *) cn, -1, -1, 0);
        X509_set_subject_name(x, subj);
        X509_NAME_free(subj);
        time_t t = time(NULL);
        X509_time_adj_ex(X509_getm_notBefore(x), 0, -300, &t);
        X509_time_adj_ex(X509_getm_notAfter(x), 30, 0, &t);
        if (copy_pubkey(x, req) < 0)
                goto out;

        BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
        bc->ca = 0;
        X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT);
        BASIC_CONSTRAINTS_free(bc);
        ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
        ASN1_BIT_STRING_set_bit(ku, 0, 1);
        X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_DEFAULT);
        ASN1_BIT_STRING_free(ku);
        EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
        sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth));
        sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth));
        X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT);
        sk_ASN1_OBJECT_free(eku);
        /* SKI: SHA-1 of the key bits. */
        const unsigned char *bits;
        int blen;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        X509_PUBKEY_get0_param(NULL, &bits, &blen, NULL, X509_get_X509_PUBKEY(x));
        EVP_Digest(bits, (size_t) blen, md, &mdlen, EVP_sha1(), NULL);
        ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(ski, md, (int) mdlen);
        X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, X509V3_ADD_DEFAULT);
        ASN1_OCTET_STRING_free(ski);
        AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
        akid->keyid = ASN1_OCTET_STRING_dup(ca_key_id);
        X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT);
        AUTHORITY_KEYID_free(akid);
        GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
        ASN1_STRING_set(ia5, cn, -1);
        GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
        sk_GENERAL_NAME_push(gens, g);
        X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT);
        GENERAL_NAMES_free(gens);

        if (X509_sign(x, ca_key, EVP_sha256()) <= 0)
                goto out;
        unsigned char *der = NULL;
        int dlen = i2d_X509(x, &der);
        OPENSSL_free(der);
        ok = dlen > 0 ? 0 : -1;
out:
        X509_free(x);
        X509_REQ_free(req);
        return ok;
}

static bool keygen;

static void *thread_run(void *p) {
        size_t base = (size_t) (uintptr_t) p;
        for (unsigned i = 0; keygen && i < per_thread; i++) {
                EVP_PKEY *k = EVP_RSA_gen(2048);
                if (!k) {
                        fprintf(stderr, "bench-limit: RSA key generation failed\n");
                        exit(1);
                }
                EVP_PKEY_free(k);
        }
        for (unsigned i = 0; !keygen && i < per_thread; i++)
                if (issue_one(csrs[(base * per_thread + i) % n_csrs]) < 0) {
                        fprintf(stderr, "bench-limit: issuance failed\n");
                        exit(1);
                }
        return NULL;
}

static int load_csrs(const char *path) {
        g_autofree char *text = NULL;
        if (!g_file_get_contents(path, &text, NULL, NULL))
                return -1;
        GPtrArray *a = g_ptr_array_new();
        const char *end = "-----END CERTIFICATE REQUEST-----";
        for (char *s = text, *b, *e; (b = strstr(s, "-----BEGIN CERTIFICATE REQUEST-----")) && (e = strstr(b, end));
             s = e) {
                e += strlen(end);
                g_ptr_array_add(a, g_strndup(b, (gsize) (e - b)));
        }
        n_csrs = a->len;
        csrs = (char **) g_ptr_array_free(a, false);
        return n_csrs > 0 ? 0 : -1;
}

int main(int argc, char **argv) {
        unsigned threads = 1, count = 1000;
        const char *csr_file = NULL, *cert_file = NULL, *key_file = NULL;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
                        threads = (unsigned) strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
                        count = (unsigned) strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--csr-file") == 0 && i + 1 < argc)
                        csr_file = argv[++i];
                else if (strcmp(argv[i], "--ca-cert") == 0 && i + 1 < argc)
                        cert_file = argv[++i];
                else if (strcmp(argv[i], "--keygen") == 0)
                        keygen = true;
                else if (strcmp(argv[i], "--ca-key") == 0 && i + 1 < argc)
                        key_file = argv[++i];
                else {
                        fprintf(stderr, "usage: bench-limit --threads T --count N --csr-file F --ca-cert C --ca-key K\n");
                        return 2;
                }
        }
        if (threads == 0 || threads > 64 || count < threads || (!keygen && (!csr_file || !cert_file || !key_file))) {
                fprintf(stderr, "bench-limit: missing or bad arguments\n");
                return 2;
        }
        if (keygen)
                goto run;
        if (load_csrs(csr_file) < 0) {
                fprintf(stderr, "bench-limit: no CSRs in %s\n", csr_file);
                return 1;
        }
        FILE *f = fopen(cert_file, "re");
        ca_cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
        if (f)
                fclose(f);
        f = fopen(key_file, "re");
        ca_key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
        if (f)
                fclose(f);
        if (!ca_cert || !ca_key) {
                fprintf(stderr, "bench-limit: cannot read the CA certificate or key\n");
                return 1;
        }
        const ASN1_OCTET_STRING *kid = X509_get0_subject_key_id(ca_cert);
        ca_key_id = kid ? ASN1_OCTET_STRING_dup(kid) : ASN1_OCTET_STRING_new();

run:
        per_thread = count / threads;
        pthread_t *t = g_new(pthread_t, threads);
        double t0 = now_s();
        for (unsigned i = 0; i < threads; i++)
                pthread_create(&t[i], NULL, thread_run, (void *) (uintptr_t) i);
        for (unsigned i = 0; i < threads; i++)
                pthread_join(t[i], NULL);
        double secs = now_s() - t0;
        unsigned n = per_thread * threads;
        printf("{\"count\": %u, \"threads\": %u, \"seconds\": %.6f, \"per_second\": %.1f}\n", n, threads, secs,
               (double) n / secs);
        return 0;
}
