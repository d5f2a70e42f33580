/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/err.h>

#include "keys.h"
#include "x509.h"

/* After our headers: GLib #undefs MIN/MAX before defining its own, macro.h does not. */
#include <glib.h>
#include <glib/gstdio.h>

/* Keys are generated once (RSA-4096 takes a while) and shared by the tests. */
static EVP_PKEY *keys[_KEY_ALGORITHM_MAX];

static EVP_PKEY *get_key(KeyAlgorithm a) {
        if (!keys[a])
                g_assert_cmpint(key_generate(a, &keys[a]), ==, 0);
        return keys[a];
}

static void random_master_key(MasterKey *mk) {
        g_assert_cmpint(random_bytes(mk->key, sizeof mk->key), ==, 0);
}

static void test_key_generate(void) {
        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++) {
                EVP_PKEY *k = get_key(a);
                unsigned bits;
                char *d = pkey_describe(k, &bits);

                g_assert_cmpstr(d, ==, key_algorithm_to_string(a));
                free(d);
                if (EVP_PKEY_is_a(k, "RSA")) {
                        BIGNUM *e = NULL;
                        g_assert_cmpint(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e), ==, 1);
                        g_assert_true(BN_is_word(e, 65537));
                        BN_free(e);
                }
                if (EVP_PKEY_is_a(k, "EC")) {
                        char enc[32];
                        g_assert_cmpint(EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_EC_ENCODING, enc,
                                                                       sizeof enc, NULL),
                                        ==, 1);
                        g_assert_cmpstr(enc, ==, OSSL_PKEY_EC_ENCODING_GROUP);
                }
                g_assert_cmpint(EVP_PKEY_get_bits(k), >, 0);
        }

        EVP_PKEY *k = NULL;
        g_assert_cmpint(key_generate(KEY_ALGORITHM_INVALID, &k), ==, -EINVAL);
        g_assert_cmpint(key_generate(_KEY_ALGORITHM_MAX, &k), ==, -EINVAL);
        g_assert_null(k);

        /* Two keys are different keys. */
        EVP_PKEY *k1 = NULL, *k2 = NULL;
        g_assert_cmpint(key_generate(KEY_ALGORITHM_EC_256, &k1), ==, 0);
        g_assert_cmpint(key_generate(KEY_ALGORITHM_EC_256, &k2), ==, 0);
        g_assert_cmpint(EVP_PKEY_eq(k1, k2), !=, 1);
        EVP_PKEY_free(k1);
        EVP_PKEY_free(k2);
}

static uint8_t *private_der(EVP_PKEY *k, size_t *ret_len) {
        unsigned char *der = NULL;
        int len = i2d_PrivateKey(k, &der);
        g_assert_cmpint(len, >, 0);
        *ret_len = (size_t) len;
        return der;
}

static void test_seal_round_trip(void) {
        MasterKey mk, other;

        random_master_key(&mk);
        random_master_key(&other);

        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++) {
                EVP_PKEY *k = get_key(a), *back = NULL;
                uint8_t *sealed = NULL, *sealed2 = NULL;
                size_t len, len2, clear_len;

                g_assert_cmpint(key_seal(&mk, k, &sealed, &len), ==, 0);
                g_assert_cmpint(key_unseal(&mk, sealed, len, &back), ==, 0);
                g_assert_cmpint(EVP_PKEY_eq(k, back), ==, 1);

                /* The private part too, not just the public one. */
                uint8_t *d1 = private_der(k, &clear_len), *d2;
                size_t l2;
                d2 = private_der(back, &l2);
                g_assert_cmpmem(d1, clear_len, d2, l2);
                OPENSSL_free(d2);

                /* The blob holds no clear key material: neither the encoded key nor a
                 * 16-byte window of it. */
                g_assert_null(memmem(sealed, len, d1, clear_len));
                for (size_t off = 0; off + 16 <= clear_len; off += 8)
                        g_assert_null(memmem(sealed, len, d1 + off, 16));
                OPENSSL_free(d1);

                /* Fresh salt and IV: sealing twice differs. */
                g_assert_cmpint(key_seal(&mk, k, &sealed2, &len2), ==, 0);
                g_assert_false(len == len2 && memcmp(sealed, sealed2, len) == 0);

                /* Another master key does not open it. */
                EVP_PKEY *wrong = NULL;
                int r = key_unseal(&other, sealed, len, &wrong);
                g_assert_cmpint(r, <, 0);
                g_assert_null(wrong);

                /* Tampering is detected or at least never yields the key. */
                sealed[len - 1] ^= 0x01;
                r = key_unseal(&mk, sealed, len, &wrong);
                if (r >= 0) {
                        g_assert_cmpint(EVP_PKEY_eq(k, wrong), !=, 1);
                        EVP_PKEY_free(wrong);
                }

                /* Truncated and garbage input. */
                g_assert_cmpint(key_unseal(&mk, sealed, len / 2, &wrong), ==, -EBADMSG);
                g_assert_cmpint(key_unseal(&mk, (const uint8_t *) "garbage", 7, &wrong), ==, -EBADMSG);
                g_assert_cmpint(ERR_peek_error(), ==, 0);

                free(sealed);
                free(sealed2);
                EVP_PKEY_free(back);
        }
        master_key_wipe(&mk);
        master_key_wipe(&other);
        for (size_t i = 0; i < sizeof mk.key; i++)
                g_assert_cmpint(mk.key[i], ==, 0);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(X509_SIG *, X509_SIG_free)

/* The format is part of the contract (keys on disk outlive versions): check it. */
static void test_seal_format(void) {
        MasterKey mk;
        uint8_t *sealed = NULL;
        size_t len;

        random_master_key(&mk);
        g_assert_cmpint(key_seal(&mk, get_key(KEY_ALGORITHM_EC_256), &sealed, &len), ==, 0);

        const unsigned char *p = sealed;
        _cleanup_(X509_SIG_freep) X509_SIG *sig = d2i_X509_SIG(NULL, &p, (long) len);
        g_assert_nonnull(sig);
        const X509_ALGOR *alg;
        const ASN1_OCTET_STRING *digest;
        X509_SIG_get0(sig, &alg, &digest);

        const ASN1_OBJECT *obj;
        int ptype;
        const void *pval;
        X509_ALGOR_get0(&obj, &ptype, &pval, alg);
        g_assert_cmpint(OBJ_obj2nid(obj), ==, NID_pbes2);
        g_assert_cmpint(ptype, ==, V_ASN1_SEQUENCE);

        PBE2PARAM *pbe2 = ASN1_item_unpack(pval, ASN1_ITEM_rptr(PBE2PARAM));
        g_assert_nonnull(pbe2);
        g_assert_cmpint(OBJ_obj2nid(pbe2->encryption->algorithm), ==, NID_aes_256_cbc);
        g_assert_cmpint(OBJ_obj2nid(pbe2->keyfunc->algorithm), ==, NID_id_pbkdf2);
        PBKDF2PARAM *kdf =
                ASN1_item_unpack(pbe2->keyfunc->parameter->value.sequence, ASN1_ITEM_rptr(PBKDF2PARAM));
        g_assert_nonnull(kdf);
        g_assert_cmpint(ASN1_INTEGER_get(kdf->iter), ==, 1);
        g_assert_nonnull(kdf->prf);
        g_assert_cmpint(OBJ_obj2nid(kdf->prf->algorithm), ==, NID_hmacWithSHA256);
        g_assert_cmpint(kdf->salt->value.octet_string->length, ==, 16);

        PBKDF2PARAM_free(kdf);
        PBE2PARAM_free(pbe2);
        free(sealed);
        master_key_wipe(&mk);
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(write(fd, data, len), ==, (ssize_t) len);
        g_assert_cmpint(fchmod(fd, mode), ==, 0);
        close(fd);
}

static void test_master_key_state_dir(void) {
        g_autofree char *dir = g_dir_make_tmp("certkeeper-test-XXXXXX", NULL);
        g_autofree char *path = g_build_filename(dir, "master.key", NULL);
        MasterKey k1, k2;
        char *source = NULL, *error = NULL;
        struct stat st;

        g_unsetenv("CREDENTIALS_DIRECTORY");

        g_assert_cmpint(master_key_load(dir, &k1, &source, &error), ==, 0);
        g_assert_null(error);
        g_assert_cmpstr(source, ==, path);
        g_clear_pointer(&source, free);
        g_assert_cmpint(lstat(path, &st), ==, 0);
        g_assert_true(S_ISREG(st.st_mode));
        g_assert_cmpint(st.st_mode & 07777, ==, 0600);
        g_assert_cmpint(st.st_size, ==, MASTER_KEY_SIZE);

        /* No temporary file is left behind. */
        GDir *d = g_dir_open(dir, 0, NULL);
        const char *name;
        unsigned n = 0;
        while ((name = g_dir_read_name(d))) {
                g_assert_cmpstr(name, ==, "master.key");
                n++;
        }
        g_dir_close(d);
        g_assert_cmpuint(n, ==, 1);

        /* The file holds the key, and loading again gives the same one. */
        gchar *contents;
        gsize clen;
        g_assert_true(g_file_get_contents(path, &contents, &clen, NULL));
        g_assert_cmpmem(contents, clen, k1.key, sizeof k1.key);
        g_free(contents);
        g_assert_cmpint(master_key_load(dir, &k2, NULL, NULL), ==, 0);
        g_assert_cmpmem(k1.key, sizeof k1.key, k2.key, sizeof k2.key);

        /* A key sealed under it opens with the reloaded one. */
        uint8_t *sealed;
        size_t len;
        EVP_PKEY *back = NULL;
        g_assert_cmpint(key_seal(&k1, get_key(KEY_ALGORITHM_ED25519), &sealed, &len), ==, 0);
        g_assert_cmpint(key_unseal(&k2, sealed, len, &back), ==, 0);
        EVP_PKEY_free(back);
        free(sealed);

        /* Too wide a mode is refused, with a message. */
        g_assert_cmpint(chmod(path, 0644), ==, 0);
        g_assert_cmpint(master_key_load(dir, &k2, NULL, &error), ==, -EPERM);
        g_assert_nonnull(strstr(error, "0644"));
        g_assert_nonnull(strstr(error, path));
        g_clear_pointer(&error, free);
        g_assert_cmpint(chmod(path, 0400), ==, 0);
        g_assert_cmpint(master_key_load(dir, &k2, NULL, NULL), ==, 0);

        /* Wrong size is refused. */
        write_file(path, "short", 5, 0600);
        g_assert_cmpint(master_key_load(dir, &k2, NULL, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "5 bytes"));
        g_clear_pointer(&error, free);

        /* A symlink is refused. */
        g_assert_cmpint(unlink(path), ==, 0);
        g_autofree char *target = g_build_filename(dir, "elsewhere", NULL);
        write_file(target, k1.key, sizeof k1.key, 0600);
        g_assert_cmpint(symlink(target, path), ==, 0);
        g_assert_cmpint(master_key_load(dir, &k2, NULL, &error), ==, -ELOOP);
        g_assert_nonnull(strstr(error, "symlink"));
        g_clear_pointer(&error, free);
        unlink(path);
        unlink(target);

        /* A missing state directory is an error, not a crash. */
        g_autofree char *missing = g_build_filename(dir, "missing", NULL);
        g_assert_cmpint(master_key_load(missing, &k2, NULL, &error), ==, -ENOENT);
        g_assert_nonnull(error);
        g_clear_pointer(&error, free);

        g_rmdir(dir);
        master_key_wipe(&k1);
        master_key_wipe(&k2);
}

static void test_master_key_credential(void) {
        g_autofree char *dir = g_dir_make_tmp("certkeeper-test-XXXXXX", NULL);
        g_autofree char *creds = g_build_filename(dir, "creds", NULL);
        g_autofree char *cred = g_build_filename(creds, "certkeeper.master-key", NULL);
        g_autofree char *state_key = g_build_filename(dir, "master.key", NULL);
        MasterKey raw, k;
        char hex[66], *source = NULL, *error = NULL;

        g_assert_cmpint(g_mkdir(creds, 0700), ==, 0);
        g_setenv("CREDENTIALS_DIRECTORY", creds, TRUE);
        random_master_key(&raw);

        /* No credential file: fall back to the state directory. */
        g_assert_cmpint(master_key_load(dir, &k, &source, NULL), ==, 0);
        g_assert_cmpstr(source, ==, state_key);
        g_clear_pointer(&source, free);
        unlink(state_key);

        /* 32 raw bytes */
        write_file(cred, raw.key, sizeof raw.key, 0400);
        g_assert_cmpint(master_key_load(dir, &k, &source, NULL), ==, 0);
        g_assert_cmpstr(source, ==, "credential");
        g_clear_pointer(&source, free);
        g_assert_cmpmem(k.key, sizeof k.key, raw.key, sizeof raw.key);
        g_assert_false(g_file_test(state_key, G_FILE_TEST_EXISTS));

        /* 64 hex characters, with or without a newline, either case */
        for (size_t i = 0; i < 32; i++)
                sprintf(hex + 2 * i, i % 2 ? "%02x" : "%02X", raw.key[i]);
        for (int nl = 0; nl < 2; nl++) {
                if (nl)
                        strcat(hex, "\n");
                unlink(cred);
                write_file(cred, hex, strlen(hex), 0400);
                memset(&k, 0, sizeof k);
                g_assert_cmpint(master_key_load(dir, &k, NULL, NULL), ==, 0);
                g_assert_cmpmem(k.key, sizeof k.key, raw.key, sizeof raw.key);
        }

        /* Bad contents */
        hex[10] = 'g';
        unlink(cred);
        write_file(cred, hex, strlen(hex), 0400);
        g_assert_cmpint(master_key_load(dir, &k, NULL, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "hex"));
        g_clear_pointer(&error, free);
        unlink(cred);
        write_file(cred, "0123456789", 10, 0400);
        g_assert_cmpint(master_key_load(dir, &k, NULL, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "32 raw bytes or 64 hex"));
        g_clear_pointer(&error, free);

        unlink(cred);
        g_rmdir(creds);
        g_rmdir(dir);
        g_unsetenv("CREDENTIALS_DIRECTORY");
        master_key_wipe(&raw);
        master_key_wipe(&k);
}

static void test_random_uniform(void) {
        uint32_t v, counts[6] = {0};

        g_assert_cmpint(random_uniform(0, &v), ==, -EINVAL);
        for (int i = 0; i < 100; i++) {
                g_assert_cmpint(random_uniform(1, &v), ==, 0);
                g_assert_cmpuint(v, ==, 0);
        }
        /* The worst case for rejection: just over half the range is rejected. */
        for (int i = 0; i < 1000; i++) {
                g_assert_cmpint(random_uniform(0x80000001U, &v), ==, 0);
                g_assert_cmpuint(v, <, 0x80000001U);
        }
        /* Six buckets, 60000 draws: each count is 10000 ± ~91 (1 sd); allow 10 sd. */
        for (int i = 0; i < 60000; i++) {
                g_assert_cmpint(random_uniform(6, &v), ==, 0);
                g_assert_cmpuint(v, <, 6);
                counts[v]++;
        }
        for (int i = 0; i < 6; i++) {
                g_assert_cmpuint(counts[i], >, 9100);
                g_assert_cmpuint(counts[i], <, 10900);
        }

        /* Six-digit codes cover their range. */
        uint32_t lo = UINT32_MAX, hi = 0;
        for (int i = 0; i < 20000; i++) {
                g_assert_cmpint(random_uniform(1000000, &v), ==, 0);
                lo = MIN(lo, v);
                hi = MAX(hi, v);
        }
        g_assert_cmpuint(lo, <, 1000);
        g_assert_cmpuint(hi, >, 999000);
}

static void test_random_bytes(void) {
        uint8_t a[64] = {0}, b[64] = {0};

        g_assert_cmpint(random_bytes(a, sizeof a), ==, 0);
        g_assert_cmpint(random_bytes(b, sizeof b), ==, 0);
        g_assert_cmpint(memcmp(a, b, sizeof a), !=, 0);
        g_assert_cmpint(random_bytes(a, 0), ==, 0);
}

static void test_csr_build(void) {
        char *names[] = {(char *) "www.example.com", (char *) "example.com", NULL};

        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++) {
                EVP_PKEY *k = get_key(a);
                uint8_t *der = NULL;
                size_t len;
                _cleanup_(csr_freep) Csr *c = NULL;
                char *error = NULL;

                g_assert_cmpint(csr_build(k, "www.example.com", names, &der, &len), ==, 0);
                /* csr_parse() checks the signature with X509_REQ_verify(). */
                if (csr_parse(der, len, &c, &error) < 0)
                        g_error("%s: %s", key_algorithm_to_string(a), error);
                g_assert_cmpstr(c->common_name, ==, "www.example.com");
                g_assert_cmpuint(c->n_dns_names, ==, 2);
                g_assert_cmpstr(c->dns_names[1], ==, "example.com");
                const unsigned char *p = c->der;
                X509_REQ *xr = d2i_X509_REQ(NULL, &p, (long) c->der_len);
                g_assert_nonnull(xr);
                g_assert_cmpint(EVP_PKEY_eq(X509_REQ_get0_pubkey(xr), k), ==, 1);
                unsigned char *spki_a = NULL, *spki_b = NULL;
                int la = i2d_X509_PUBKEY(c->pubkey, &spki_a), lb = i2d_PUBKEY(k, &spki_b);
                g_assert_cmpmem(spki_a, (size_t) la, spki_b, (size_t) lb);
                OPENSSL_free(spki_a);
                OPENSSL_free(spki_b);
                g_assert_cmpstr(c->key_algorithm, ==, key_algorithm_to_string(a));

                int mdnid = -1, pknid;
                g_assert_cmpint(OBJ_find_sigid_algs(X509_REQ_get_signature_nid(xr), &mdnid, &pknid), ==,
                                1);
                X509_REQ_free(xr);
                g_assert_cmpint(mdnid, ==, a == KEY_ALGORITHM_ED25519 ? NID_undef : NID_sha256);
                free(der);
        }

        /* A CN too long for the CN field goes in the SAN only. */
        const char *longname =
                "a-very-long-host-name-that-does-not-fit.in-the-64-character-cn-field.example.com";
        char *names2[] = {(char *) longname, NULL};
        uint8_t *der = NULL;
        size_t len;
        _cleanup_(csr_freep) Csr *c = NULL;
        g_assert_cmpint(csr_build(get_key(KEY_ALGORITHM_EC_256), longname, names2, &der, &len), ==, 0);
        g_assert_cmpint(csr_parse(der, len, &c, NULL), ==, 0);
        g_assert_null(c->common_name);
        g_assert_cmpstr(c->dns_names[0], ==, longname);

        /* The CN goes into the SAN (first) when the names leave it out, once: ACME
         * CAs compare the SAN with the order's identifiers, CN included. */
        {
                char *others[] = { (char *) "api.example.com", (char *) "WWW.example.com", NULL };
                uint8_t *d = NULL;
                size_t l;
                _cleanup_(csr_freep) Csr *c2 = NULL;
                g_assert_cmpint(csr_build(get_key(KEY_ALGORITHM_EC_256), "www.example.com", others, &d, &l), ==, 0);
                g_assert_cmpint(csr_parse(d, l, &c2, NULL), ==, 0);
                g_assert_cmpuint(c2->n_dns_names, ==, 2);
                g_assert_cmpstr(c2->dns_names[0], ==, "www.example.com");
                g_assert_cmpstr(c2->dns_names[1], ==, "api.example.com");
                free(d);
        }
        {
                uint8_t *d = NULL;
                size_t l;
                _cleanup_(csr_freep) Csr *c3 = NULL;
                g_assert_cmpint(csr_build(get_key(KEY_ALGORITHM_EC_256), "solo.example.com", NULL, &d, &l), ==, 0);
                g_assert_cmpint(csr_parse(d, l, &c3, NULL), ==, 0);
                g_assert_cmpuint(c3->n_dns_names, ==, 1);
                g_assert_cmpstr(c3->dns_names[0], ==, "solo.example.com");
                free(d);
        }
        free(der);
}

typedef struct ThreadData {
        const MasterKey *mk;
        int failures;
} ThreadData;

static gpointer seal_thread(gpointer data) {
        ThreadData *t = data;

        for (int i = 0; i < 50; i++) {
                EVP_PKEY *k = NULL, *back = NULL;
                uint8_t *sealed = NULL, *der = NULL;
                size_t len, dlen;

                if (key_generate(i % 2 ? KEY_ALGORITHM_EC_256 : KEY_ALGORITHM_ED25519, &k) < 0 ||
                    key_seal(t->mk, k, &sealed, &len) < 0 || key_unseal(t->mk, sealed, len, &back) < 0 ||
                    EVP_PKEY_eq(k, back) != 1 || csr_build(k, "t.example.com", NULL, &der, &dlen) < 0)
                        t->failures++;
                EVP_PKEY_free(k);
                EVP_PKEY_free(back);
                free(sealed);
                free(der);
        }
        return NULL;
}

static void test_threads(void) {
        MasterKey mk;
        ThreadData data[4];
        GThread *threads[4];

        random_master_key(&mk);
        for (size_t i = 0; i < 4; i++) {
                data[i] = (ThreadData){.mk = &mk};
                threads[i] = g_thread_new("seal", seal_thread, &data[i]);
        }
        for (size_t i = 0; i < 4; i++) {
                g_thread_join(threads[i]);
                g_assert_cmpint(data[i].failures, ==, 0);
        }
        master_key_wipe(&mk);
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/keys/generate", test_key_generate);
        g_test_add_func("/keys/seal/round-trip", test_seal_round_trip);
        g_test_add_func("/keys/seal/format", test_seal_format);
        g_test_add_func("/keys/master-key/state-dir", test_master_key_state_dir);
        g_test_add_func("/keys/master-key/credential", test_master_key_credential);
        g_test_add_func("/keys/random/uniform", test_random_uniform);
        g_test_add_func("/keys/random/bytes", test_random_bytes);
        g_test_add_func("/keys/csr-build", test_csr_build);
        g_test_add_func("/keys/threads/seal-unseal", test_threads);
        r = g_test_run();
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                EVP_PKEY_free(keys[i]);
        return r;
}
