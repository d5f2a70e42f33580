/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The JOSE pieces of the ACME client, checked against published vectors and
 * against OpenSSL's own verification. */

#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>

#include "acme-jws.h"

#include <glib.h>
#include <json-glib/json-glib.h>

/* RFC 7517 Appendix A.2, the P-256 example key. */
#define RFC7517_X "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4"
#define RFC7517_Y "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"
#define RFC7517_D "870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"

static void test_base64url_vectors(void) {
        /* RFC 4648 §10, without padding. */
        static const struct {
                const char *in, *out;
        } v[] = {
                {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
                {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                g_autofree char *e = base64url_encode(v[i].in, strlen(v[i].in));
                g_assert_cmpstr(e, ==, v[i].out);

                g_autofree uint8_t *d = NULL;
                size_t len = 0;
                g_assert_cmpint(base64url_decode(v[i].out, &d, &len), ==, 0);
                g_assert_cmpmem(d, len, v[i].in, strlen(v[i].in));
        }

        /* The URL-safe alphabet, and the decoder's tolerance of standard base64. */
        const uint8_t bytes[] = {0xfb, 0xff, 0xbf};
        g_autofree char *e = base64url_encode(bytes, sizeof bytes);
        g_assert_cmpstr(e, ==, "-_-_");
        g_autofree uint8_t *d1 = NULL, *d2 = NULL;
        size_t l1 = 0, l2 = 0;
        g_assert_cmpint(base64url_decode("+/+/", &d1, &l1), ==, 0);
        g_assert_cmpmem(d1, l1, bytes, sizeof bytes);
        g_assert_cmpint(base64url_decode("Zg==", &d2, &l2), ==, 0);
        g_assert_cmpmem(d2, l2, "f", 1);

        uint8_t *bad = NULL;
        size_t bl = 0;
        g_assert_cmpint(base64url_decode("Z", &bad, &bl), ==, -EINVAL);
        g_assert_cmpint(base64url_decode("Zm$v", &bad, &bl), ==, -EINVAL);
        g_assert_cmpint(base64url_decode("Zm9v Zg", &bad, &bl), ==, -EINVAL);
        g_assert_null(bad);
}

static void test_base64url_roundtrip(void) {
        for (size_t len = 0; len < 200; len++) {
                g_autofree uint8_t *buf = g_malloc(len + 1);
                for (size_t i = 0; i < len; i++)
                        buf[i] = (uint8_t) g_random_int();
                g_autofree char *e = base64url_encode(buf, len);
                g_assert_null(strpbrk(e, "+/="));
                g_autofree uint8_t *d = NULL;
                size_t dl = 0;
                g_assert_cmpint(base64url_decode(e, &d, &dl), ==, 0);
                g_assert_cmpmem(d, dl, buf, len);
        }
}

static uint8_t *decode(const char *s, size_t *ret_len) {
        uint8_t *d = NULL;
        g_assert_cmpint(base64url_decode(s, &d, ret_len), ==, 0);
        return d;
}

static EVP_PKEY *rfc7517_key(void) {
        size_t xl, yl, dl;
        g_autofree uint8_t *x = decode(RFC7517_X, &xl), *y = decode(RFC7517_Y, &yl),
                           *d = decode(RFC7517_D, &dl);
        uint8_t pub[65] = {0x04};
        g_assert_cmpuint(xl, ==, 32);
        g_assert_cmpuint(yl, ==, 32);
        memcpy(pub + 1, x, 32);
        memcpy(pub + 33, y, 32);

        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        BIGNUM *priv = BN_bin2bn(d, (int) dl, NULL);
        g_assert_true(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0));
        g_assert_true(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub));
        g_assert_true(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv));
        OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        EVP_PKEY *key = NULL;
        g_assert_cmpint(EVP_PKEY_fromdata_init(ctx), ==, 1);
        g_assert_cmpint(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params), ==, 1);
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        BN_clear_free(priv);
        return key;
}

static void test_jwk_thumbprint(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = rfc7517_key();
        g_autofree char *jwk = NULL, *thumb = NULL;

        g_assert_cmpint(acme_jwk(key, &jwk, &thumb), ==, 0);
        /* RFC 7638 §3.2: required members only, lexicographic order, no whitespace. */
        g_assert_cmpstr(jwk, ==,
                        "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" RFC7517_X "\",\"y\":\"" RFC7517_Y
                        "\"}");

        uint8_t digest[32];
        g_assert_cmpint(EVP_Digest(jwk, strlen(jwk), digest, NULL, EVP_sha256(), NULL), ==, 1);
        g_autofree char *expect = base64url_encode(digest, sizeof digest);
        g_assert_cmpstr(thumb, ==, expect);
        g_assert_cmpuint(strlen(thumb), ==, 43);

        /* Leading zero bytes of a coordinate are kept: every key gives 43-character x and y. */
        for (unsigned i = 0; i < 20; i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = EVP_EC_gen("P-256");
                g_autofree char *j = NULL, *t = NULL;
                g_assert_cmpint(acme_jwk(k, &j, &t), ==, 0);
                g_assert_cmpuint(strlen(j), ==, strlen(jwk));
        }
}

static JsonObject *parse(const char *json, JsonParser **ret) {
        JsonParser *p = json_parser_new();
        g_assert_true(json_parser_load_from_data(p, json, -1, NULL));
        g_assert_true(JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p)));
        *ret = p;
        return json_node_get_object(json_parser_get_root(p));
}

static char *decode_string(const char *b64) {
        size_t len;
        uint8_t *d = decode(b64, &len);
        char *s = g_strndup((const char *) d, len);
        g_free(d);
        return s;
}

static bool verify_es256(EVP_PKEY *key, const char *prot64, const char *payload64, const char *sig64) {
        size_t len;
        g_autofree uint8_t *raw = decode(sig64, &len);
        g_assert_cmpuint(len, ==, 64);

        ECDSA_SIG *sig = ECDSA_SIG_new();
        g_assert_true(ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL)));
        uint8_t *der = NULL;
        int der_len = i2d_ECDSA_SIG(sig, &der);
        ECDSA_SIG_free(sig);

        g_autofree char *input = g_strconcat(prot64, ".", payload64, NULL);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        g_assert_cmpint(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), ==, 1);
        int r = EVP_DigestVerify(md, der, (size_t) der_len, (const uint8_t *) input, strlen(input));
        EVP_MD_CTX_free(md);
        OPENSSL_free(der);
        return r == 1;
}

static void test_jws_embedded_jwk(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_EC_gen("P-256");
        g_autofree char *jwk = NULL, *thumb = NULL, *jws = NULL;
        g_assert_cmpint(acme_jwk(key, &jwk, &thumb), ==, 0);
        g_assert_cmpint(acme_jws_sign(key, jwk, NULL, "n0nce", "https://ca/new-acct", "{\"a\":1}", &jws), ==,
                        0);

        g_autoptr(JsonParser) p = NULL;
        JsonObject *o = parse(jws, &p);
        const char *prot64 = json_object_get_string_member(o, "protected");
        const char *payload64 = json_object_get_string_member(o, "payload");
        const char *sig64 = json_object_get_string_member(o, "signature");
        g_autofree char *payload = decode_string(payload64);
        g_assert_cmpstr(payload, ==, "{\"a\":1}");

        g_autofree char *prot = decode_string(prot64);
        g_autoptr(JsonParser) pp = NULL;
        JsonObject *h = parse(prot, &pp);
        g_assert_cmpstr(json_object_get_string_member(h, "alg"), ==, "ES256");
        g_assert_cmpstr(json_object_get_string_member(h, "nonce"), ==, "n0nce");
        g_assert_cmpstr(json_object_get_string_member(h, "url"), ==, "https://ca/new-acct");
        g_assert_false(json_object_has_member(h, "kid"));
        JsonObject *j = json_object_get_object_member(h, "jwk");
        g_assert_nonnull(j);
        g_assert_cmpstr(json_object_get_string_member(j, "kty"), ==, "EC");
        g_assert_cmpstr(json_object_get_string_member(j, "crv"), ==, "P-256");

        g_assert_true(verify_es256(key, prot64, payload64, sig64));
        /* The signature covers the payload. */
        g_assert_false(verify_es256(key, prot64, "eyJhIjoyfQ", sig64));
}

static void test_jws_kid_post_as_get(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_EC_gen("P-256");
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *other = EVP_EC_gen("P-256");
        g_autofree char *jwk = NULL, *thumb = NULL, *jws = NULL;
        g_assert_cmpint(acme_jwk(key, &jwk, &thumb), ==, 0);
        g_assert_cmpint(acme_jws_sign(key, jwk, "https://ca/acct/1", "n2", "https://ca/order/7", NULL, &jws),
                        ==, 0);

        g_autoptr(JsonParser) p = NULL;
        JsonObject *o = parse(jws, &p);
        const char *prot64 = json_object_get_string_member(o, "protected");
        g_assert_cmpstr(json_object_get_string_member(o, "payload"), ==, "");
        g_autofree char *prot = decode_string(prot64);
        g_autoptr(JsonParser) pp = NULL;
        JsonObject *h = parse(prot, &pp);
        g_assert_cmpstr(json_object_get_string_member(h, "kid"), ==, "https://ca/acct/1");
        g_assert_false(json_object_has_member(h, "jwk"));

        const char *sig64 = json_object_get_string_member(o, "signature");
        g_assert_true(verify_es256(key, prot64, "", sig64));
        g_assert_false(verify_es256(other, prot64, "", sig64));
}

static void test_eab(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_EC_gen("P-256");
        g_autofree char *jwk = NULL, *thumb = NULL;
        g_assert_cmpint(acme_jwk(key, &jwk, &thumb), ==, 0);

        const uint8_t mac_key[] = "0123456789abcdef0123456789abcdef";
        g_autofree char *eab = acme_eab_sign("kid-9", mac_key, 32, jwk, "https://ca/new-acct");
        g_assert_nonnull(eab);

        g_autoptr(JsonParser) p = NULL;
        JsonObject *o = parse(eab, &p);
        const char *prot64 = json_object_get_string_member(o, "protected");
        const char *payload64 = json_object_get_string_member(o, "payload");
        g_autofree char *payload = decode_string(payload64);
        g_assert_cmpstr(payload, ==, jwk);

        g_autofree char *prot = decode_string(prot64);
        g_autoptr(JsonParser) pp = NULL;
        JsonObject *h = parse(prot, &pp);
        g_assert_cmpstr(json_object_get_string_member(h, "alg"), ==, "HS256");
        g_assert_cmpstr(json_object_get_string_member(h, "kid"), ==, "kid-9");
        g_assert_cmpstr(json_object_get_string_member(h, "url"), ==, "https://ca/new-acct");
        g_assert_false(json_object_has_member(h, "nonce")); /* RFC 8555 §7.3.4 */

        g_autofree char *input = g_strconcat(prot64, ".", payload64, NULL);
        uint8_t mac[32];
        unsigned mac_len = 0;
        g_assert_nonnull(
                HMAC(EVP_sha256(), mac_key, 32, (const uint8_t *) input, strlen(input), mac, &mac_len));
        g_autofree char *expect = base64url_encode(mac, mac_len);
        g_assert_cmpstr(json_object_get_string_member(o, "signature"), ==, expect);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/acme-jws/base64url-vectors", test_base64url_vectors);
        g_test_add_func("/acme-jws/base64url-roundtrip", test_base64url_roundtrip);
        g_test_add_func("/acme-jws/jwk-thumbprint", test_jwk_thumbprint);
        g_test_add_func("/acme-jws/jws-embedded-jwk", test_jws_embedded_jwk);
        g_test_add_func("/acme-jws/jws-kid-post-as-get", test_jws_kid_post_as_get);
        g_test_add_func("/acme-jws/eab", test_eab);

        return g_test_run();
}
