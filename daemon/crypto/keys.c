/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "error.h"
#include "fileio.h"
#include "keys.h"
#include "log.h"

#define MASTER_KEY_CREDENTIAL "certkeeper.master-key"
#define MASTER_KEY_FILE "master.key"
#define SEAL_SALT_SIZE 16

int random_bytes(void *buf, size_t n) {
        uint8_t *p = buf;

        while (n > 0) {
                int chunk = (int) MIN(n, (size_t) INT_MAX);
                if (RAND_priv_bytes(p, chunk) != 1)
                        return -EIO;
                p += chunk;
                n -= (size_t) chunk;
        }
        return 0;
}

int random_uniform(uint32_t bound, uint32_t *ret) {
        uint32_t v, threshold;
        int r;

        if (bound == 0 || !ret)
                return -EINVAL;

        /* Values below 2^32 mod bound would make the low results more likely; draw
         * again for them. At most half of the range is rejected, so this ends fast. */
        threshold = (uint32_t) (-bound) % bound;
        do {
                r = random_bytes(&v, sizeof v);
                if (r < 0)
                        return r;
        } while (v < threshold);

        *ret = v % bound;
        return 0;
}

void master_key_wipe(MasterKey *k) {
        if (k)
                OPENSSL_cleanse(k->key, sizeof k->key);
}

static int unhex_char(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Read at most max bytes from fd; returns the count. */
static ssize_t read_full(int fd, void *buf, size_t max) {
        uint8_t *p = buf;
        size_t done = 0;

        while (done < max) {
                ssize_t n = read(fd, p + done, max - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                done += (size_t) n;
        }
        return (ssize_t) done;
}

static int load_credential(const char *path, MasterKey *ret, char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        /* 64 hex digits, maybe a newline, and one byte more to notice a longer file. */
        uint8_t buf[2 * MASTER_KEY_SIZE + 2];
        ssize_t n;
        int r = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno; /* -ENOENT: no credential, the caller falls back */

        n = read_full(fd, buf, sizeof buf);
        if (n < 0)
                return ret_error_set(ret_error, (int) n, "Cannot read master key credential '%s': %m", path);

        if (n == 2 * MASTER_KEY_SIZE + 1 && buf[n - 1] == '\n')
                n--;
        if (n == MASTER_KEY_SIZE)
                memcpy(ret->key, buf, MASTER_KEY_SIZE);
        else if (n == 2 * MASTER_KEY_SIZE) {
                for (size_t i = 0; i < MASTER_KEY_SIZE; i++) {
                        int hi = unhex_char((char) buf[2 * i]), lo = unhex_char((char) buf[2 * i + 1]);
                        if (hi < 0 || lo < 0) {
                                r = ret_error_set(ret_error, -EINVAL,
                                                  "Master key credential '%s' is 64 bytes long but not hex",
                                                  path);
                                break;
                        }
                        ret->key[i] = (uint8_t) (hi << 4 | lo);
                }
        } else
                r = ret_error_set(
                        ret_error, -EINVAL,
                        "Master key credential '%s' must hold 32 raw bytes or 64 hex characters, not %zi "
                        "bytes",
                        path, n);

        OPENSSL_cleanse(buf, sizeof buf);
        if (r < 0)
                master_key_wipe(ret);
        return r;
}

static int load_key_file(const char *path, int fd, MasterKey *ret, char **ret_error) {
        struct stat st;
        ssize_t n;

        if (fstat(fd, &st) < 0)
                return ret_error_set(ret_error, -errno, "Cannot stat '%s': %m", path);
        if (!S_ISREG(st.st_mode))
                return ret_error_set(ret_error, -EINVAL, "Master key '%s' is not a regular file", path);
        if ((st.st_mode & 07777 & ~(mode_t) 0600) != 0)
                return ret_error_set(
                        ret_error, -EPERM,
                        "Master key '%s' has mode %04o, wider than 0600; refusing to use it (fix with "
                        "chmod 0600)",
                        path, (unsigned) (st.st_mode & 07777));
        if (st.st_size != MASTER_KEY_SIZE)
                return ret_error_set(ret_error, -EINVAL, "Master key '%s' is %jd bytes long, expected %u",
                                     path, (intmax_t) st.st_size, MASTER_KEY_SIZE);

        n = read_full(fd, ret->key, MASTER_KEY_SIZE);
        if (n < 0)
                return ret_error_set(ret_error, (int) n, "Cannot read master key '%s': %m", path);
        if (n != MASTER_KEY_SIZE) {
                master_key_wipe(ret);
                return ret_error_set(ret_error, -EINVAL, "Master key '%s' is truncated", path);
        }
        return 0;
}

/* Create state_dir/master.key atomically (fileio.c: a temporary file, fsync'ed and renamed into
 * place without replacing anything), so that a crash leaves either no key or a complete one, and
 * two racing starts agree on one key. */
static int create_key_file(const char *state_dir, const char *path, MasterKey *ret, char **ret_error) {
        _cleanup_(atomic_file_discard) AtomicFile f = ATOMIC_FILE_NULL;
        _cleanup_close_ int dfd = -EBADF;
        MasterKey k = {0};
        int r;

        dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return ret_error_set(ret_error, -errno, "Cannot open state directory '%s': %m", state_dir);

        r = atomic_file_open_at(dfd, MASTER_KEY_FILE, 0600, (uid_t) -1, (gid_t) -1, ATOMIC_FILE_NOREPLACE, &f);
        if (r < 0)
                return ret_error_set(ret_error, r, "Cannot create a temporary file in '%s': %m", state_dir);

        r = random_bytes(k.key, sizeof k.key);
        if (r < 0) {
                master_key_wipe(&k);
                return ret_error_set(ret_error, r, "Cannot generate a master key: %s", openssl_last_error());
        }

        r = loop_write(f.fd, k.key, sizeof k.key);
        if (r < 0) {
                master_key_wipe(&k);
                return ret_error_set(ret_error, r, "Cannot write a new master key in '%s': %m", state_dir);
        }

        r = atomic_file_commit(&f);
        if (r < 0) {
                master_key_wipe(&k);
                if (r == -EEXIST)
                        return r; /* somebody else won the race: the caller loads theirs */
                return ret_error_set(ret_error, r, "Cannot move the new master key into place at '%s': %m",
                                     path);
        }

        *ret = k;
        master_key_wipe(&k);
        return 0;
}

int master_key_load(const char *state_dir, MasterKey *ret, char **ret_source, char **ret_error) {
        _cleanup_free_ char *path = NULL;
        const char *creds;
        int r;

        if (!ret)
                return -EINVAL;

        creds = secure_getenv("CREDENTIALS_DIRECTORY");
        if (!isempty(creds)) {
                _cleanup_free_ char *cpath = NULL;

                if (asprintf(&cpath, "%s/" MASTER_KEY_CREDENTIAL, creds) < 0)
                        return -ENOMEM;
                r = load_credential(cpath, ret, ret_error);
                if (r >= 0) {
                        if (ret_source) {
                                *ret_source = strdup("credential");
                                if (!*ret_source) {
                                        master_key_wipe(ret);
                                        return -ENOMEM;
                                }
                        }
                        return 0;
                }
                if (r != -ENOENT) {
                        if (ret_error && !*ret_error)
                                (void) ret_error_set(ret_error, r,
                                                     "Cannot open master key credential '%s': %m", cpath);
                        return r;
                }
        }

        if (isempty(state_dir))
                return ret_error_set(ret_error, -EINVAL, "No state directory for the master key");
        if (asprintf(&path, "%s/" MASTER_KEY_FILE, state_dir) < 0)
                return -ENOMEM;

        for (unsigned attempt = 0;; attempt++) {
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);

                if (fd >= 0)
                        r = load_key_file(path, fd, ret, ret_error);
                else if (errno == ENOENT) {
                        r = create_key_file(state_dir, path, ret, ret_error);
                        if (r == -EEXIST && attempt == 0)
                                continue;
                } else if (errno == ELOOP)
                        r = ret_error_set(ret_error, -ELOOP,
                                          "Master key '%s' is a symlink; refusing to follow it", path);
                else
                        r = ret_error_set(ret_error, -errno, "Cannot open master key '%s': %m", path);
                break;
        }
        if (r < 0)
                return r;

        if (ret_source) {
                *ret_source = TAKE_PTR(path);
        }
        return 0;
}

int key_generate(KeyAlgorithm a, EVP_PKEY **ret) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        OSSL_PARAM params[3];
        EVP_PKEY *pkey = NULL;
        size_t bits;
        unsigned e = 65537;

        if (!ret)
                return -EINVAL;

        switch (a) {
        case KEY_ALGORITHM_RSA_2048:
        case KEY_ALGORITHM_RSA_3072:
        case KEY_ALGORITHM_RSA_4096:
                bits = a == KEY_ALGORITHM_RSA_2048 ? 2048 : a == KEY_ALGORITHM_RSA_3072 ? 3072 : 4096;
                ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
                params[0] = OSSL_PARAM_construct_size_t(OSSL_PKEY_PARAM_RSA_BITS, &bits);
                params[1] = OSSL_PARAM_construct_uint(OSSL_PKEY_PARAM_RSA_E, &e);
                params[2] = OSSL_PARAM_construct_end();
                break;
        case KEY_ALGORITHM_EC_256:
        case KEY_ALGORITHM_EC_384:
                ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
                params[0] = OSSL_PARAM_construct_utf8_string(
                        OSSL_PKEY_PARAM_GROUP_NAME, a == KEY_ALGORITHM_EC_256 ? "P-256" : "P-384", 0);
                /* Named curves only: explicit parameters are refused by most peers. */
                params[1] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING,
                                                             OSSL_PKEY_EC_ENCODING_GROUP, 0);
                params[2] = OSSL_PARAM_construct_end();
                break;
        case KEY_ALGORITHM_ED25519:
                ctx = EVP_PKEY_CTX_new_from_name(NULL, "ED25519", NULL);
                params[0] = OSSL_PARAM_construct_end();
                break;
        default:
                return -EINVAL;
        }

        if (!ctx)
                return -ENOMEM;
        if (EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_CTX_set_params(ctx, params) <= 0 ||
            EVP_PKEY_generate(ctx, &pkey) <= 0) {
                log_debug("Key generation (%s) failed: %s", key_algorithm_to_string(a),
                          openssl_last_error());
                return -EIO;
        }

        *ret = pkey;
        return 0;
}

/* The PBES2 password is the master key in hex: PKCS#8 takes a password, and hex
 * keeps every one of its 256 bits. */
static void master_key_password(const MasterKey *mk, char pass[static 2 * MASTER_KEY_SIZE + 1]) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < MASTER_KEY_SIZE; i++) {
                pass[2 * i] = digits[mk->key[i] >> 4];
                pass[2 * i + 1] = digits[mk->key[i] & 0xf];
        }
        pass[2 * MASTER_KEY_SIZE] = 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(PKCS8_PRIV_KEY_INFO *, PKCS8_PRIV_KEY_INFO_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_SIG *, X509_SIG_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_ALGOR *, X509_ALGOR_free)

int key_seal(const MasterKey *mk, EVP_PKEY *pkey, uint8_t **ret_sealed, size_t *ret_len) {
        _cleanup_(PKCS8_PRIV_KEY_INFO_freep) PKCS8_PRIV_KEY_INFO *p8 = NULL;
        _cleanup_(X509_ALGOR_freep) X509_ALGOR *pbe = NULL;
        _cleanup_(X509_SIG_freep) X509_SIG *sig = NULL;
        unsigned char salt[SEAL_SALT_SIZE];
        char pass[2 * MASTER_KEY_SIZE + 1];
        unsigned char *der = NULL;
        int r, len;

        if (!mk || !pkey || !ret_sealed || !ret_len)
                return -EINVAL;

        /* PKCS8_PRIV_KEY_INFO_free() clears the key material it holds. */
        p8 = EVP_PKEY2PKCS8(pkey);
        if (!p8)
                return log_debug_errno(EINVAL, "Cannot convert key to PKCS#8: %s", openssl_last_error());

        r = random_bytes(salt, sizeof salt);
        if (r < 0)
                return r;

        /* PBES2 with AES-256-CBC and PBKDF2-HMAC-SHA256 at one iteration: the password
         * is a random 256-bit key, so there is nothing for key stretching to protect
         * against, while every key operation (each signature) would pay for it. The
         * salt and IV are still fresh for every key. */
        pbe = PKCS5_pbe2_set_iv_ex(EVP_aes_256_cbc(), 1, salt, sizeof salt, NULL, NID_hmacWithSHA256, NULL);
        if (!pbe)
                return log_debug_errno(EIO, "Cannot set up PBES2: %s", openssl_last_error());

        master_key_password(mk, pass);
        sig = PKCS8_set0_pbe_ex(pass, (int) strlen(pass), p8, pbe, NULL, NULL);
        OPENSSL_cleanse(pass, sizeof pass);
        if (!sig)
                return log_debug_errno(EIO, "Cannot encrypt key: %s", openssl_last_error());
        pbe = NULL; /* now owned by sig */

        len = i2d_X509_SIG(sig, &der);
        if (len <= 0)
                return -EIO;

        *ret_sealed = malloc((size_t) len);
        if (!*ret_sealed) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        memcpy(*ret_sealed, der, (size_t) len);
        *ret_len = (size_t) len;
        OPENSSL_free(der);
        return 0;
}

int key_unseal(const MasterKey *mk, const uint8_t *sealed, size_t len, EVP_PKEY **ret) {
        _cleanup_(PKCS8_PRIV_KEY_INFO_freep) PKCS8_PRIV_KEY_INFO *p8 = NULL;
        _cleanup_(X509_SIG_freep) X509_SIG *sig = NULL;
        char pass[2 * MASTER_KEY_SIZE + 1];
        const unsigned char *p = sealed;
        EVP_PKEY *pkey;

        if (!mk || !sealed || !ret || len == 0 || len > INT32_MAX)
                return -EINVAL;

        sig = d2i_X509_SIG(NULL, &p, (long) len);
        if (!sig || p != sealed + len) {
                ERR_clear_error();
                return -EBADMSG;
        }

        master_key_password(mk, pass);
        p8 = PKCS8_decrypt_ex(sig, pass, (int) strlen(pass), NULL, NULL);
        OPENSSL_cleanse(pass, sizeof pass);
        if (!p8) {
                /* Almost always the wrong master key (bad padding). */
                ERR_clear_error();
                return -EKEYREJECTED;
        }

        pkey = EVP_PKCS82PKEY_ex(p8, NULL, NULL);
        if (!pkey) {
                ERR_clear_error();
                return -EBADMSG;
        }
        *ret = pkey;
        return 0;
}

static void x509_extension_stack_freep(STACK_OF(X509_EXTENSION) * *p) {
        if (*p)
                sk_X509_EXTENSION_pop_free(*p, X509_EXTENSION_free);
}

/* Ed25519 and Ed448 sign the message itself: no separate digest. */
static const EVP_MD *pkey_default_md(EVP_PKEY *pkey) {
        if (EVP_PKEY_is_a(pkey, "ED25519") || EVP_PKEY_is_a(pkey, "ED448"))
                return NULL;
        return EVP_sha256();
}

int csr_build(EVP_PKEY *pkey, const char *cn, char *const *dns_names, uint8_t **ret_der, size_t *ret_len) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_(x509_extension_stack_freep) STACK_OF(X509_EXTENSION) *exts = NULL;
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = NULL;
        unsigned char *der = NULL;
        size_t n = 0;
        int len;

        if (!pkey || !ret_der || !ret_len)
                return -EINVAL;

        req = X509_REQ_new();
        if (!req)
                return -ENOMEM;
        if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1)
                return -EIO;

        /* The CN field holds at most 64 characters (RFC 5280 ub-common-name); a longer
         * name is carried by the SAN alone, as ACME CAs expect; so is a URI (ca_sign_leaf()). */
        if (!isempty(cn) && strlen(cn) <= 64 && san_type(cn) != SAN_URI) {
                X509_NAME *name = X509_REQ_get_subject_name(req);
                if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                               (const unsigned char *) cn, -1, -1, 0) != 1)
                        return log_debug_errno(EINVAL, "Bad common name: %s", openssl_last_error());
        }

        if (X509_REQ_set_pubkey(req, pkey) != 1)
                return log_debug_errno(EINVAL, "Cannot set CSR key: %s", openssl_last_error());

        /* The SAN carries the CN too (first, unless listed already): CAs that take
         * CSRs (ACME ones, cfssl) issue for the SAN and compare it with the names
         * of the order, and browsers ignore the CN. */
        size_t n_given = 0;
        for (char *const *i = dns_names; i && *i; i++)
                n_given++;
        if (n_given > SANS_MAX + 1)
                return -E2BIG;
        _cleanup_free_ const char **names = calloc(n_given + 1, sizeof(char *));
        if (!names)
                return -ENOMEM;
        if (!isempty(cn))
                names[n++] = cn;
        for (size_t i = 0; i < n_given; i++) {
                bool dup = isempty(dns_names[i]);
                for (size_t k = 0; k < n && !dup; k++)
                        dup = san_equal(names[k], dns_names[i]);
                if (!dup)
                        names[n++] = dns_names[i];
        }
        if (n > SANS_MAX)
                return -E2BIG;
        if (n > 0) {
                gens = GENERAL_NAMES_new();
                if (!gens)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        GENERAL_NAME *g = NULL;

                        /* Each name as the entry of its type (DESIGN.md): IP address, URI, DNS name. */
                        if (general_name_from_san(names[i], &g) < 0)
                                return -ENOMEM;
                        if (!sk_GENERAL_NAME_push(gens, g)) {
                                GENERAL_NAME_free(g);
                                return -ENOMEM;
                        }
                }
                if (X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1 ||
                    X509_REQ_add_extensions(req, exts) != 1)
                        return log_debug_errno(EIO, "Cannot add SAN to CSR: %s", openssl_last_error());
        }

        if (X509_REQ_sign(req, pkey, pkey_default_md(pkey)) <= 0)
                return log_debug_errno(EIO, "Cannot sign CSR: %s", openssl_last_error());

        len = i2d_X509_REQ(req, &der);
        if (len <= 0)
                return -EIO;
        *ret_der = malloc((size_t) len);
        if (!*ret_der) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        memcpy(*ret_der, der, (size_t) len);
        *ret_len = (size_t) len;
        OPENSSL_free(der);
        return 0;
}
