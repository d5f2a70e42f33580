/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-verify: the ways to check a CSR's signature in OpenSSL 3.0, single
 * thread, µs per request (the choice behind daemon/crypto/spki.c):
 *
 *   bench-verify CSR.pem N
 *
 *   1. d2i_X509_REQ() + X509_REQ_verify(): what csr_parse() did (OSSL_DECODER)
 *   2. EVP_PKEY_fromdata(group, pub) + EVP_DigestVerify(): EVP without decoder
 *   3. EC_KEY with a cached EC_GROUP + ECDSA_verify(): what spki.c does
 *
 * Only EC keys (id-ecPublicKey on P-256) are measured. The deprecated calls
 * are the point of the comparison, hence the opt-in below. */
#undef OPENSSL_NO_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
static double now_us(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3; }
int main(int argc, char **argv) {
        if (argc != 3) {
                fprintf(stderr, "usage: bench-verify CSR.pem N\n");
                return 2;
        }
        int n = atoi(argv[2]);
        FILE *f = fopen(argv[1], "re");
        X509_REQ *req = f ? PEM_read_X509_REQ(f, NULL, NULL, NULL) : NULL;
        if (f)
                fclose(f);
        if (!req || n <= 0) {
                fprintf(stderr, "bench-verify: no CSR in %s, or bad N\n", argv[1]);
                return 1;
        }
        unsigned char *der = NULL; int der_len = i2d_X509_REQ(req, &der);
        unsigned char *tbs = NULL; int tbs_len = i2d_re_X509_REQ_tbs(req, &tbs);
        const ASN1_BIT_STRING *sig; const X509_ALGOR *alg; X509_REQ_get0_signature(req, &sig, &alg);
        const unsigned char *pk; int pklen; X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, X509_REQ_get_X509_PUBKEY(req));
        EVP_MD *sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        EC_GROUP *grp = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
        double t0 = now_us(); int ok = 0;
        for (int i = 0; i < n; i++) { const unsigned char *p = der; X509_REQ *r = d2i_X509_REQ(NULL, &p, der_len); ok += X509_REQ_verify(r, X509_REQ_get0_pubkey(r)) == 1; X509_REQ_free(r); }
        double t1 = now_us();
        for (int i = 0; i < n; i++) {
                EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL); EVP_PKEY *pkey = NULL;
                OSSL_PARAM params[] = { OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0), OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *) pk, pklen), OSSL_PARAM_END };
                EVP_PKEY_fromdata_init(kc); EVP_PKEY_fromdata(kc, &pkey, EVP_PKEY_PUBLIC_KEY, params);
                EVP_MD_CTX *mc = EVP_MD_CTX_new();
                ok += EVP_DigestVerifyInit_ex(mc, NULL, "SHA256", NULL, NULL, pkey, NULL) == 1 && EVP_DigestVerify(mc, sig->data, sig->length, tbs, tbs_len) == 1;
                EVP_MD_CTX_free(mc); EVP_PKEY_free(pkey); EVP_PKEY_CTX_free(kc);
        }
        double t2 = now_us();
        for (int i = 0; i < n; i++) {
                unsigned char h[64]; unsigned hl; EVP_Digest(tbs, tbs_len, h, &hl, sha256, NULL);
                EC_KEY *ec = EC_KEY_new(); EC_KEY_set_group(ec, grp); EC_KEY_oct2key(ec, pk, pklen, NULL);
                ok += ECDSA_verify(0, h, hl, sig->data, sig->length, ec) == 1; EC_KEY_free(ec);
        }
        double t3 = now_us();
        printf("ok=%d/%d  d2i+X509_REQ_verify %.1f us  fromdata+DigestVerify %.1f us  EC_KEY+ECDSA_verify %.1f us\n", ok, 3 * n, (t1 - t0) / n, (t2 - t1) / n, (t3 - t2) / n);
        return 0;
}
