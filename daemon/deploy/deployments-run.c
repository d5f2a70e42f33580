/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <glib.h>

#include "deploy-files.h"
#include "deployments-run.h"
#include "helper-run.h"
#include "keyfile.h"
#include "log.h"
#include "x509.h"

DeployJob *deploy_job_free(DeployJob *j) {
        if (!j)
                return NULL;
        g_free(j->name);
        g_free(j->directory);
        if (j->sealed_key) {
                OPENSSL_cleanse(j->sealed_key, j->sealed_key_len);
                g_free(j->sealed_key);
        }
        g_free(j->der);
        g_free(j->chain_pem);
        g_strfreev(j->exec);
        g_strfreev(j->env);
        g_strfreev(j->units);
        g_free(j->error);
        g_free(j);
        return NULL;
}

static void fail(DeployJob *j, int r, const char *fmt, ...) _printf_(3, 4);
static void fail(DeployJob *j, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        g_free(j->error);
        j->error = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        if (strlen(j->error) > DEPLOY_ERROR_MAX)
                j->error[DEPLOY_ERROR_MAX] = 0;
        j->r = r < 0 ? r : -EIO;
}

static char *bio_text(BIO *b) {
        char *p = NULL;
        long n = BIO_get_mem_data(b, &p);
        return n > 0 ? g_strndup(p, (gsize) n) : g_strdup("");
}

/* The last lines of a helper's output, for LastError: at most max bytes, valid UTF-8. */
static char *output_tail(const char *out, size_t len, size_t max) {
        const char *start = len > max ? out + len - max : out;
        char *s = g_utf8_make_valid(start, -1);
        g_strstrip(s);
        return s;
}

static void run_exec(DeployJob *j) {
        HelperRun h = { 0 };
        int r = helper_run(j->exec, j->env, j->exec_timeout_sec, DEPLOY_EXEC_OUTPUT_MAX, DEPLOY_EXEC_OUTPUT_MAX, &h);
        if (r < 0) {
                fail(j, r, "Exec %s could not be started: %s", j->exec[0], strerror(-r));
                return;
        }
        if (h.timed_out)
                fail(j, -ETIME, "Exec %s did not finish within %u s and was killed", j->exec[0], j->exec_timeout_sec);
        else if (h.exit_code != 0) {
                g_autofree char *err = output_tail(h.err ? h.err : "", h.err_len, 1024);
                g_autofree char *out = output_tail(h.out ? h.out : "", h.out_len, 1024);
                g_autofree char *what = h.exit_code >= 0 ? g_strdup_printf("exited with status %d", h.exit_code)
                                                         : g_strdup_printf("was killed by signal %d", h.signal);
                fail(j, -EPROTO, "Exec %s %s%s%s%s%s", j->exec[0], what, *err ? "; stderr: " : "", err,
                     *out ? "; stdout: " : "", out);
        }
        helper_run_done(&h);
}

void deploy_job_run(void *userdata) {
        DeployJob *j = userdata;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        _cleanup_(X509_freep) X509 *leaf = NULL;

        if (!j->sealed_key) {
                fail(j, -ENOKEY, "the daemon holds no private key for certificate %" PRIu64, j->certificate_id);
                return;
        }
        int r = key_unseal(j->master_key, j->sealed_key, j->sealed_key_len, &pkey);
        if (r < 0) {
                fail(j, r, "cannot unseal the key of certificate %" PRIu64 ": %s", j->certificate_id, strerror(-r));
                return;
        }
        const unsigned char *p = j->der;
        leaf = d2i_X509(NULL, &p, (long) j->der_len);
        if (!leaf) {
                fail(j, -EBADMSG, "certificate %" PRIu64 " in the store cannot be decoded", j->certificate_id);
                return;
        }
        /* Before anything is swapped: the key and the certificate belong together. */
        if (X509_check_private_key(leaf, pkey) != 1) {
                fail(j, -EKEYREJECTED, "the key does not match certificate %" PRIu64 ": nothing was deployed",
                     j->certificate_id);
                return;
        }

        _cleanup_(BIO_free_allp) BIO *kb = BIO_new(BIO_s_secmem());
        _cleanup_(BIO_free_allp) BIO *cb = BIO_new(BIO_s_mem());
        if (!kb || !cb || PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
            PEM_write_bio_X509(cb, leaf) != 1) {
                fail(j, -ENOMEM, "cannot encode the key and certificate: %s", openssl_last_error());
                return;
        }
        _cleanup_erase_free_ char *key_pem = NULL;
        {
                char *kp = NULL;
                long n = BIO_get_mem_data(kb, &kp);
                key_pem = malloc((size_t) MAX(n, 0) + 1);
                if (!key_pem) {
                        fail(j, -ENOMEM, "out of memory");
                        return;
                }
                memcpy(key_pem, kp, (size_t) MAX(n, 0));
                key_pem[MAX(n, 0)] = 0;
        }
        g_autofree char *cert_pem = bio_text(cb);

        g_autofree char *err = NULL;
        r = deploy_files_write(&(DeployFiles) { .directory = j->directory, .uid = j->uid, .gid = j->gid,
                                                .key_mode = j->key_mode, .key_pem = key_pem,
                                                .cert_pem = cert_pem, .chain_pem = j->chain_pem },
                               NULL, &err);
        if (r < 0) {
                fail(j, r, "%s", err ? err : strerror(-r));
                return;
        }
        if (j->exec && j->exec[0])
                run_exec(j);
}
