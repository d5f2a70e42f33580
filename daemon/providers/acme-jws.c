/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <openssl/core_names.h>
#include <openssl/hmac.h>

#include "acme-jws.h"
#include "log.h"

/* After macro.h: GLib redefines MIN() and MAX() the same way. */
#include <glib.h>
#include <json-glib/json-glib.h>

char *base64url_encode(const void *data, size_t len) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const uint8_t *p = data;
        char *out = g_malloc(len / 3 * 4 + 5), *o = out;
        size_t i;

        for (i = 0; i + 2 < len; i += 3) {
                *o++ = alphabet[p[i] >> 2];
                *o++ = alphabet[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
                *o++ = alphabet[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
                *o++ = alphabet[p[i + 2] & 63];
        }
        if (len - i == 1) {
                *o++ = alphabet[p[i] >> 2];
                *o++ = alphabet[(p[i] & 3) << 4];
        } else if (len - i == 2) {
                *o++ = alphabet[p[i] >> 2];
                *o++ = alphabet[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
                *o++ = alphabet[(p[i + 1] & 15) << 2];
        }
        *o = 0;
        return out;
}

static int base64url_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '-' || c == '+')
                return 62;
        if (c == '_' || c == '/')
                return 63;
        return -1;
}

int base64url_decode(const char *s, uint8_t **ret, size_t *ret_len) {
        size_t n = strlen(s);
        while (n > 0 && s[n - 1] == '=')
                n--;
        if (n % 4 == 1)
                return -EINVAL;

        uint8_t *out = g_malloc(n / 4 * 3 + 3);
        size_t o = 0;
        uint32_t acc = 0;
        unsigned bits = 0;
        for (size_t i = 0; i < n; i++) {
                int v = base64url_value(s[i]);
                if (v < 0) {
                        OPENSSL_cleanse(out, n / 4 * 3 + 3);
                        g_free(out);
                        return -EINVAL;
                }
                acc = (acc << 6) | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (uint8_t) (acc >> bits);
                }
        }
        acc = 0;
        *ret = out;
        *ret_len = o;
        return 0;
}

static char *json_node_to_compact(JsonNode *node) {
        g_autoptr(JsonGenerator) g = json_generator_new();
        json_generator_set_root(g, node);
        return json_generator_to_data(g, NULL);
}

static int sign_es256(EVP_PKEY *key, const char *input, char **ret_b64) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        size_t len = 0;

        if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
            EVP_DigestSign(md, NULL, &len, (const uint8_t *) input, strlen(input)) != 1)
                return log_error_errno(EIO, "ES256 signing failed: %s", openssl_last_error());

        g_autofree uint8_t *der = g_malloc(len);
        if (EVP_DigestSign(md, der, &len, (const uint8_t *) input, strlen(input)) != 1)
                return log_error_errno(EIO, "ES256 signing failed: %s", openssl_last_error());

        /* JWS wants the raw r||s, 32 bytes each, not the DER ECDSA-Sig-Value. */
        const uint8_t *p = der;
        ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long) len);
        if (!sig)
                return log_error_errno(EIO, "Cannot parse the ECDSA signature: %s", openssl_last_error());
        uint8_t raw[64];
        int ok = BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32 &&
                 BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32;
        ECDSA_SIG_free(sig);
        if (!ok)
                return log_error_errno(EIO, "ECDSA signature does not fit P-256");

        *ret_b64 = base64url_encode(raw, sizeof raw);
        return 0;
}

static JsonNode *parse_node(const char *json) {
        g_autoptr(JsonParser) parser = json_parser_new();
        if (!json_parser_load_from_data(parser, json, -1, NULL))
                return NULL;
        return json_node_copy(json_parser_get_root(parser));
}

int acme_jws_sign(EVP_PKEY *key, const char *jwk, const char *kid, const char *nonce, const char *url,
                  const char *payload, char **ret) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "alg");
        json_builder_add_string_value(b, "ES256");
        if (kid) {
                json_builder_set_member_name(b, "kid");
                json_builder_add_string_value(b, kid);
        } else {
                json_builder_set_member_name(b, "jwk");
                JsonNode *n = parse_node(jwk);
                if (!n)
                        return -EINVAL;
                json_builder_add_value(b, n);
        }
        json_builder_set_member_name(b, "nonce");
        json_builder_add_string_value(b, nonce);
        json_builder_set_member_name(b, "url");
        json_builder_add_string_value(b, url);
        json_builder_end_object(b);

        g_autoptr(JsonNode) prot_node = json_builder_get_root(b);
        g_autofree char *prot = json_node_to_compact(prot_node);
        g_autofree char *prot64 = base64url_encode(prot, strlen(prot));
        g_autofree char *payload64 = payload ? base64url_encode(payload, strlen(payload)) : g_strdup("");
        g_autofree char *input = g_strconcat(prot64, ".", payload64, NULL);
        g_autofree char *sig64 = NULL;
        int r = sign_es256(key, input, &sig64);
        if (r < 0)
                return r;

        g_autoptr(JsonBuilder) o = json_builder_new();
        json_builder_begin_object(o);
        json_builder_set_member_name(o, "protected");
        json_builder_add_string_value(o, prot64);
        json_builder_set_member_name(o, "payload");
        json_builder_add_string_value(o, payload64);
        json_builder_set_member_name(o, "signature");
        json_builder_add_string_value(o, sig64);
        json_builder_end_object(o);
        g_autoptr(JsonNode) root = json_builder_get_root(o);
        *ret = json_node_to_compact(root);
        return 0;
}

char *acme_eab_sign(const char *eab_kid, const uint8_t *mac_key, size_t mac_key_len, const char *jwk,
                    const char *url) {
        g_autofree char *prot = NULL;
        {
                g_autoptr(JsonBuilder) b = json_builder_new();
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "alg");
                json_builder_add_string_value(b, "HS256");
                json_builder_set_member_name(b, "kid");
                json_builder_add_string_value(b, eab_kid);
                json_builder_set_member_name(b, "url");
                json_builder_add_string_value(b, url);
                json_builder_end_object(b);
                g_autoptr(JsonNode) n = json_builder_get_root(b);
                prot = json_node_to_compact(n);
        }
        g_autofree char *prot64 = base64url_encode(prot, strlen(prot));
        g_autofree char *payload64 = base64url_encode(jwk, strlen(jwk));
        g_autofree char *input = g_strconcat(prot64, ".", payload64, NULL);

        uint8_t mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        if (!HMAC(EVP_sha256(), mac_key, (int) mac_key_len, (const uint8_t *) input, strlen(input), mac,
                  &mac_len))
                return NULL;
        g_autofree char *sig64 = base64url_encode(mac, mac_len);

        g_autoptr(JsonBuilder) o = json_builder_new();
        json_builder_begin_object(o);
        json_builder_set_member_name(o, "protected");
        json_builder_add_string_value(o, prot64);
        json_builder_set_member_name(o, "payload");
        json_builder_add_string_value(o, payload64);
        json_builder_set_member_name(o, "signature");
        json_builder_add_string_value(o, sig64);
        json_builder_end_object(o);
        g_autoptr(JsonNode) root = json_builder_get_root(o);
        OPENSSL_cleanse(mac, sizeof mac);
        return json_node_to_compact(root);
}

int acme_jwk(EVP_PKEY *k, char **ret_jwk, char **ret_thumbprint) {
        _cleanup_(BN_freep) BIGNUM *x = NULL, *y = NULL;
        uint8_t xb[32], yb[32];

        if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
            EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1 || BN_bn2binpad(x, xb, 32) != 32 ||
            BN_bn2binpad(y, yb, 32) != 32)
                return -EINVAL;

        g_autofree char *x64 = base64url_encode(xb, 32), *y64 = base64url_encode(yb, 32);
        g_autofree char *jwk =
                g_strdup_printf("{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x64, y64);
        uint8_t digest[32];
        if (EVP_Digest(jwk, strlen(jwk), digest, NULL, EVP_sha256(), NULL) != 1)
                return -EIO;
        *ret_thumbprint = base64url_encode(digest, sizeof digest);
        *ret_jwk = TAKE_PTR(jwk);
        return 0;
}
