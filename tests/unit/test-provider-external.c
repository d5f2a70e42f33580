/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The external-CA provider against real helper programs: shell scripts written
 * here that sign with `openssl x509 -req`, certmonger's own local-submit when
 * installed, and certkeeper-cfssl-submit against a real `cfssl serve`. */

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <openssl/pem.h>

#include "provider-external.h"

#include <glib.h>
#include <glib/gstdio.h>

typedef struct Fixture {
        char *dir;
        X509_REQ *csr;
        X509 *ca;
} Fixture;

static char *const dns_names[] = { "www.example.com", "example.com", NULL };

static void run_or_die(const char *cwd, const char *command) {
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL, *err = NULL;
        char *argv[] = { "/bin/sh", "-c", (char *) command, NULL };
        int status;

        g_assert_true(g_spawn_sync(cwd, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error));
        if (!g_spawn_check_wait_status(status, NULL))
                g_error("'%s' failed: %s%s", command, out, err);
}

static X509 *read_cert(const char *path) {
        _cleanup_(BIO_free_allp) BIO *b = BIO_new_file(path, "r");
        g_assert_nonnull(b);
        return PEM_read_bio_X509(b, NULL, NULL, NULL);
}

static void fixture_setup(Fixture *f, gconstpointer data) {
        _cleanup_(BIO_free_allp) BIO *b = NULL;
        g_autofree char *csr_path = NULL, *ca_path = NULL;

        f->dir = g_dir_make_tmp("test-provider-external-XXXXXX", NULL);
        g_assert_nonnull(f->dir);

        run_or_die(f->dir,
                   "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
                   "-subj '/CN=certkeeper test CA' -days 2 -out ca.pem 2>&1 && "
                   "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key "
                   "-subj /CN=www.example.com "
                   "-addext subjectAltName=DNS:www.example.com,DNS:example.com,email:admin@example.com,"
                   "IP:192.0.2.1 -out req.csr 2>&1");

        csr_path = g_build_filename(f->dir, "req.csr", NULL);
        b = BIO_new_file(csr_path, "r");
        g_assert_nonnull(b);
        f->csr = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
        g_assert_nonnull(f->csr);

        ca_path = g_build_filename(f->dir, "ca.pem", NULL);
        f->ca = read_cert(ca_path);
        g_assert_nonnull(f->ca);
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);

        run_or_die("/", cmd);
        g_free(f->dir);
        X509_REQ_free(f->csr);
        X509_free(f->ca);
}

/* Writes DIR/NAME with body (DIR substituted for @DIR@) and the given mode. */
static char *write_script(Fixture *f, const char *name, const char *body, mode_t mode) {
        g_autofree char *path = g_build_filename(f->dir, name, NULL);
        g_autoptr(GString) s = g_string_new(body);

        g_string_replace(s, "@DIR@", f->dir, 0);
        g_assert_true(g_file_set_contents(path, s->str, (gssize) s->len, NULL));
        g_assert_cmpint(chmod(path, mode), ==, 0);
        return TAKE_PTR(path);
}

static Provider *make_provider(const char *const *argv, unsigned timeout_sec) {
        ExternalCaConfig c = {
                .name = (char *) "testca",
                .helper_argv = (char **) argv,
                .timeout_sec = timeout_sec,
        };
        g_autofree char *error = NULL;
        Provider *p = NULL;

        g_assert_cmpint(provider_external_new(&c, &p, &error), ==, 0);
        g_assert_nonnull(p);
        g_assert_cmpstr(p->name, ==, "testca");
        g_assert_cmpstr(p->ops->order_type, ==, "external-ca");
        g_assert_true(p->ops->needs_csr);
        return p;
}

static Provider *script_provider(Fixture *f, const char *body, unsigned timeout_sec) {
        static unsigned counter = 0;
        g_autofree char *name = g_strdup_printf("helper-%u", counter++);
        g_autofree char *path = write_script(f, name, body, 0755);
        const char *argv[] = { path, NULL };

        return make_provider(argv, timeout_sec);
}

static void issue(Fixture *f, Provider *p, const char *cookie, ProviderResult *ret) {
        ProviderRequest req = {
                .order_id = 1,
                .common_name = "www.example.com",
                .dns_names = dns_names,
                .csr = f->csr,
                .cookie = cookie,
        };

        g_assert_cmpint(p->ops->issue(p, &req, ret), ==, 0);
}

static X509 *pem_to_cert(const char *pem) {
        _cleanup_(BIO_free_allp) BIO *b = BIO_new_mem_buf(pem, -1);
        return PEM_read_bio_X509(b, NULL, NULL, NULL);
}

static unsigned count_lines(Fixture *f, const char *name) {
        g_autofree char *path = g_build_filename(f->dir, name, NULL), *data = NULL;
        unsigned n = 0;

        if (!g_file_get_contents(path, &data, NULL, NULL))
                return 0;
        for (const char *s = data; *s; s++)
                n += *s == '\n';
        return n;
}

/* Signs CERTMONGER_CSR with the test CA; FETCH-ROOTS counts its calls. */
#define SIGNING_HELPER(after_leaf)                                                                           \
        "#!/bin/sh\n"                                                                                        \
        "case \"$CERTMONGER_OPERATION\" in\n"                                                                \
        "SUBMIT|POLL) ;;\n"                                                                                  \
        "FETCH-ROOTS) echo call >> @DIR@/roots-calls; echo 'Test CA'; cat @DIR@/ca.pem; exit 0;;\n"          \
        "IDENTIFY) echo 'scripted helper 1.0'; exit 0;;\n"                                                   \
        "*) exit 6;;\n"                                                                                      \
        "esac\n"                                                                                             \
        "t=$(mktemp -d)\n"                                                                                   \
        "printf '%s\\n' \"$CERTMONGER_CSR\" > $t/req.csr\n"                                                  \
        "openssl x509 -req -in $t/req.csr -CA @DIR@/ca.pem -CAkey @DIR@/ca.key -set_serial $$ -days 1 "      \
        "-copy_extensions copy -out $t/leaf.pem 2>$t/err || { echo \"openssl: $(head -1 $t/err)\"; "         \
        "rm -rf $t; exit 2; }\n"                                                                             \
        "cat $t/leaf.pem\n" after_leaf "rm -rf $t\n"                                                         \
        "exit 0\n"

static void check_issued(Fixture *f, const ProviderResult *r) {
        _cleanup_(X509_freep) X509 *leaf = NULL, *chain = NULL;

        if (r->outcome != PROVIDER_ISSUED)
                g_test_message("not issued: %s", strempty(r->error));
        g_assert_cmpint(r->outcome, ==, PROVIDER_ISSUED);
        g_assert_nonnull(r->certificate_pem);
        leaf = pem_to_cert(r->certificate_pem);
        g_assert_nonnull(leaf);
        g_assert_cmpint(X509_verify(leaf, X509_get0_pubkey(f->ca)), ==, 1);
        g_assert_cmpint(X509_check_host(leaf, "example.com", 0, 0, NULL), ==, 1);
        /* Only the leaf in certificate_pem. */
        g_assert_null(strstr(strstr(r->certificate_pem, "-----END CERTIFICATE-----"), "BEGIN"));

        g_assert_nonnull(r->chain_pem);
        chain = pem_to_cert(r->chain_pem);
        g_assert_nonnull(chain);
        g_assert_cmpint(X509_cmp(chain, f->ca), ==, 0);
}

static void test_issued_with_chain(Fixture *f, gconstpointer data) {
        _cleanup_(provider_freep) Provider *p = script_provider(f, SIGNING_HELPER("cat @DIR@/ca.pem\n"), 10);
        ProviderResult r;

        issue(f, p, NULL, &r);
        check_issued(f, &r);
        /* The helper's chain reached the root: no FETCH-ROOTS needed. */
        g_assert_cmpuint(count_lines(f, "roots-calls"), ==, 0);
        provider_result_done(&r);
}

/* Root first, then the leaf: the leaf is found by the request's key. */
static void test_issued_root_first(Fixture *f, gconstpointer data) {
        _cleanup_(provider_freep) Provider *p = script_provider(
                f, "#!/bin/sh\n[ \"$CERTMONGER_OPERATION\" = SUBMIT ] || exit 6\n"
                   "cat @DIR@/ca.pem\nexec @DIR@/signer\n", 10);
        ProviderResult r;

        g_free(write_script(f, "signer", SIGNING_HELPER(""), 0755));
        issue(f, p, NULL, &r);
        check_issued(f, &r);
        provider_result_done(&r);
}

/* A certificate that is not for the request's key is refused. */
static void test_issued_wrong_key(Fixture *f, gconstpointer data) {
        _cleanup_(provider_freep) Provider *p = script_provider(f, "#!/bin/sh\ncat @DIR@/ca.pem\n", 10);
        ProviderResult r;

        issue(f, p, NULL, &r);
        g_assert_cmpint(r.outcome, ==, PROVIDER_REJECTED);
        g_assert_nonnull(strstr(r.error, "no certificate for the request's key"));
        g_assert_null(r.certificate_pem);
        provider_result_done(&r);
}

static void test_issued_chain_from_roots(Fixture *f, gconstpointer data) {
        _cleanup_(provider_freep) Provider *p = script_provider(f, SIGNING_HELPER(""), 10);
        _cleanup_free_ char *id = NULL;
        ProviderResult r;

        issue(f, p, NULL, &r);
        check_issued(f, &r);
        provider_result_done(&r);
        issue(f, p, NULL, &r);
        check_issued(f, &r);
        provider_result_done(&r);
        /* The chain came from FETCH-ROOTS, asked once and then cached. */
        g_assert_cmpuint(count_lines(f, "roots-calls"), ==, 1);

        id = p->ops->identify(p);
        g_assert_cmpstr(id, ==, "scripted helper 1.0");
}

typedef struct ThreadArgs {
        Fixture *f;
        Provider *p;
        ProviderResult r;
} ThreadArgs;

static void *issue_thread(void *userdata) {
        ThreadArgs *a = userdata;

        issue(a->f, a->p, NULL, &a->r);
        return NULL;
}

/* issue() runs on several worker threads at once against one provider. */
static void test_concurrent(Fixture *f, gconstpointer data) {
        _cleanup_(provider_freep) Provider *p = script_provider(f, SIGNING_HELPER(""), 20);
        ThreadArgs args[4];
        GThread *threads[ELEMENTSOF(args)];

        for (size_t i = 0; i < ELEMENTSOF(args); i++) {
                args[i] = (ThreadArgs) { .f = f, .p = p };
                threads[i] = g_thread_new("issue", issue_thread, &args[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(args); i++) {
                g_thread_join(threads[i]);
                check_issued(f, &args[i].r);
                provider_result_done(&args[i].r);
        }
        g_assert_cmpuint(count_lines(f, "roots-calls"), >=, 1);
        g_assert_cmpuint(count_lines(f, "roots-calls"), <=, ELEMENTSOF(args));
}

static void test_wait_then_poll(Fixture *f, gconstpointer data) {
        _cleanup_(provider_freep) Provider *p = script_provider(
                f,
                "#!/bin/sh\n"
                "if [ \"$CERTMONGER_OPERATION\" = SUBMIT ]; then echo 'cookie 123'; exit 1; fi\n"
                "if [ \"$CERTMONGER_OPERATION\" = FETCH-ROOTS ]; then exit 6; fi\n"
                "[ \"$CERTMONGER_OPERATION\" = POLL ] && [ \"$CERTMONGER_CA_COOKIE\" = 'cookie 123' ] || "
                "{ echo \"bad poll: $CERTMONGER_OPERATION $CERTMONGER_CA_COOKIE\"; exit 2; }\n"
                "exec @DIR@/signer\n",
                10);
        ProviderResult r;

        g_free(write_script(f, "signer", SIGNING_HELPER("cat @DIR@/ca.pem\n"), 0755));

        issue(f, p, NULL, &r);
        g_assert_cmpint(r.outcome, ==, PROVIDER_WAIT);
        g_assert_cmpstr(r.cookie, ==, "cookie 123");
        g_assert_cmpuint(r.retry_after_usec, >=, 30 * USEC_PER_SEC);
        g_assert_nonnull(r.error);

        _cleanup_free_ char *cookie = TAKE_PTR(r.cookie);
        provider_result_done(&r);
        issue(f, p, cookie, &r);
        check_issued(f, &r);
        provider_result_done(&r);
}

static void test_wait_with_delay(Fixture *f, gconstpointer data) {
        _cleanup_(provider_freep) Provider *p =
                script_provider(f, "#!/bin/sh\nprintf '120\\nticket-7\\n'\nexit 5\n", 10);
        _cleanup_(provider_freep) Provider *bad =
                script_provider(f, "#!/bin/sh\nprintf 'soon\\nticket-7\\n'\nexit 5\n", 10);
        ProviderResult r;

        issue(f, p, NULL, &r);
        g_assert_cmpint(r.outcome, ==, PROVIDER_WAIT);
        g_assert_cmpuint(r.retry_after_usec, ==, 120 * USEC_PER_SEC);
        g_assert_cmpstr(r.cookie, ==, "ticket-7");
        provider_result_done(&r);

        issue(f, bad, NULL, &r);
        g_assert_cmpint(r.outcome, ==, PROVIDER_REJECTED);
        g_assert_nonnull(strstr(r.error, "not a number of seconds"));
        provider_result_done(&r);
}

typedef struct ExitCase {
        const char *script;
        ProviderOutcome outcome;
        const char *needles[3];
} ExitCase;

static void test_exit_codes(Fixture *f, gconstpointer data) {
        static const ExitCase cases[] = {
                { "#!/bin/sh\necho 'Policy forbids example.com'\nexit 2\n", PROVIDER_REJECTED,
                  { "testca", "rejected", "Policy forbids example.com" } },
                { "#!/bin/sh\necho 'connection refused'\nexit 3\n", PROVIDER_UNREACHABLE,
                  { "testca", "could not be reached", "connection refused" } },
                { "#!/bin/sh\necho 'no API key configured'\nexit 4\n", PROVIDER_REJECTED,
                  { "under-configured", "no API key configured", "helper" } },
                { "#!/bin/sh\nexit 6\n", PROVIDER_REJECTED, { "does not support", "SUBMIT", "status 6" } },
                /* Nothing on stdout: the first line of stderr explains. */
                { "#!/bin/sh\necho 'first problem' >&2\necho 'second' >&2\nexit 3\n", PROVIDER_UNREACHABLE,
                  { "first problem", NULL, NULL } },
                { "#!/bin/sh\necho 'needs SCEP'\nexit 16\n", PROVIDER_REJECTED,
                  { "unexpected status 16", "needs SCEP", NULL } },
                { "#!/bin/sh\necho 'all good'\nexit 0\n", PROVIDER_REJECTED, { "no PEM certificate", NULL, NULL } },
                { "#!/bin/sh\nkill -SEGV $$\n", PROVIDER_UNREACHABLE, { "signal SIGSEGV", NULL, NULL } },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(provider_freep) Provider *p = script_provider(f, cases[i].script, 10);
                ProviderResult r;

                issue(f, p, NULL, &r);
                g_test_message("case %zu: %s", i, r.error);
                g_assert_cmpint(r.outcome, ==, cases[i].outcome);
                g_assert_nonnull(r.error);
                g_assert_null(r.certificate_pem);
                for (size_t j = 0; j < ELEMENTSOF(cases[i].needles) && cases[i].needles[j]; j++)
                        g_assert_nonnull(strstr(r.error, cases[i].needles[j]));
                provider_result_done(&r);
        }
}

static bool process_gone(pid_t pid) {
        g_autofree char *path = g_strdup_printf("/proc/%i/stat", (int) pid), *stat = NULL;
        const char *s;

        if (!g_file_get_contents(path, &stat, NULL, NULL))
                return true;
        s = strrchr(stat, ')');
        return s && s[1] == ' ' && s[2] == 'Z';
}

static pid_t read_pid(Fixture *f, const char *name) {
        g_autofree char *path = g_build_filename(f->dir, name, NULL), *data = NULL;

        g_assert_true(g_file_get_contents(path, &data, NULL, NULL));
        return (pid_t) atoi(data);
}

static void test_hang(Fixture *f, gconstpointer data) {
        /* One that dies on SIGTERM, one that ignores it and needs SIGKILL. */
        static const char *const scripts[] = {
                "#!/bin/sh\nsleep 30 & echo $! > @DIR@/child.pid\nwait\n",
                "#!/bin/sh\ntrap '' TERM\nsleep 30 & echo $! > @DIR@/child.pid\nwait\nwait\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(scripts); i++) {
                _cleanup_(provider_freep) Provider *p = script_provider(f, scripts[i], 1);
                ProviderResult r;
                gint64 start = g_get_monotonic_time(), elapsed;

                issue(f, p, NULL, &r);
                elapsed = g_get_monotonic_time() - start;
                g_test_message("hang %zu: %s after %" G_GINT64_FORMAT " ms", i, r.error, elapsed / 1000);
                g_assert_cmpint(r.outcome, ==, PROVIDER_UNREACHABLE);
                g_assert_nonnull(strstr(r.error, "did not finish SUBMIT within 1 s"));
                g_assert_cmpint(elapsed, >=, 1 * G_USEC_PER_SEC);
                g_assert_cmpint(elapsed, <, (i == 0 ? 2 : 4) * G_USEC_PER_SEC);
                /* What it started went with it (signalled at once; it may take a moment to die). */
                pid_t child = read_pid(f, "child.pid");
                for (gint64 deadline = g_get_monotonic_time() + 2 * G_USEC_PER_SEC; !process_gone(child);) {
                        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                        g_usleep(10 * 1000);
                }
                provider_result_done(&r);
        }
}

static void test_flood(Fixture *f, gconstpointer data) {
        static const char *const scripts[] = { "#!/bin/sh\nexec yes\n", "#!/bin/sh\nexec yes >&2\n" };
        static const char *const streams[] = { "more than 1024 KiB on stdout", "more than 64 KiB on stderr" };

        for (size_t i = 0; i < ELEMENTSOF(scripts); i++) {
                _cleanup_(provider_freep) Provider *p = script_provider(f, scripts[i], 10);
                ProviderResult r;
                gint64 start = g_get_monotonic_time();

                issue(f, p, NULL, &r);
                g_test_message("flood %zu: %s", i, r.error);
                g_assert_cmpint(r.outcome, ==, PROVIDER_REJECTED);
                g_assert_nonnull(strstr(r.error, "flooded its output"));
                g_assert_nonnull(strstr(r.error, streams[i]));
                g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_USEC_PER_SEC);
                provider_result_done(&r);
        }
}

static void test_not_runnable(Fixture *f, gconstpointer data) {
        g_autofree char *noexec = write_script(f, "noexec", "#!/bin/sh\nexit 0\n", 0644);
        g_autofree char *absent = g_build_filename(f->dir, "absent", NULL);
        const char *argv1[] = { noexec, NULL }, *argv2[] = { absent, NULL },
                   *argv3[] = { "certkeeper-no-such-helper", NULL };
        const char *const *argvs[] = { argv1, argv2, argv3 };
        const char *needles[] = { "Permission denied", "No such file or directory", "No such file or directory" };

        for (size_t i = 0; i < ELEMENTSOF(argvs); i++) {
                _cleanup_(provider_freep) Provider *p = make_provider(argvs[i], 10);
                _cleanup_free_ char *id = NULL;
                ProviderResult r;

                issue(f, p, NULL, &r);
                g_test_message("%s", r.error);
                g_assert_cmpint(r.outcome, ==, PROVIDER_REJECTED);
                g_assert_nonnull(strstr(r.error, "could not be started"));
                g_assert_nonnull(strstr(r.error, argvs[i][0]));
                g_assert_nonnull(strstr(r.error, needles[i]));
                provider_result_done(&r);

                id = p->ops->identify(p);
                g_assert_nonnull(id);
                g_assert_nonnull(strstr(id, "could not be started"));
        }
}

static void test_bad_config(Fixture *f, gconstpointer data) {
        char *empty[] = { NULL };
        ExternalCaConfig c = { .name = (char *) "x", .helper_argv = empty, .timeout_sec = 1 };
        g_autofree char *error = NULL;
        Provider *p = NULL;

        g_assert_cmpint(provider_external_new(&c, &p, &error), ==, -EINVAL);
        g_assert_null(p);
        g_assert_nonnull(strstr(error, "Helper="));
}

static void test_clean_environment(Fixture *f, gconstpointer data) {
        _cleanup_(provider_freep) Provider *p = script_provider(
                f,
                "#!/bin/sh\n"
                "cat /proc/$$/environ > @DIR@/env\n"
                "ls /proc/$$/fd > @DIR@/fds\n"
                "readlink /proc/$$/fd/0 > @DIR@/stdin\n"
                "pwd > @DIR@/cwd\n"
                "echo 'seen'\n"
                "exit 2\n",
                10);
        g_autofree char *env_path = g_build_filename(f->dir, "env", NULL), *env = NULL;
        g_autofree char *fds_path = g_build_filename(f->dir, "fds", NULL), *fds = NULL;
        g_autofree char *stdin_path = g_build_filename(f->dir, "stdin", NULL), *stdin_target = NULL;
        g_autofree char *cwd_path = g_build_filename(f->dir, "cwd", NULL), *cwd = NULL;
        g_autoptr(GHashTable) vars = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_autofree char *fd_name = NULL;
        _cleanup_close_ int leak = -EBADF;
        ProviderResult r;
        gsize len;

        /* Neither our environment nor an inheritable descriptor may reach the helper. */
        g_setenv("CERTKEEPER_SECRET_TEST", "must-not-leak", TRUE);
        leak = open("/dev/null", O_RDONLY); /* deliberately without O_CLOEXEC */
        g_assert_cmpint(leak, >=, 0);
        fd_name = g_strdup_printf("%i", leak);

        issue(f, p, NULL, &r);
        g_assert_cmpint(r.outcome, ==, PROVIDER_REJECTED);
        provider_result_done(&r);
        g_unsetenv("CERTKEEPER_SECRET_TEST");

        g_assert_true(g_file_get_contents(env_path, &env, &len, NULL));
        for (const char *s = env; s < env + len; s += strlen(s) + 1) {
                const char *eq = strchr(s, '=');

                g_assert_nonnull(eq);
                g_test_message("helper env: %s", s);
                g_assert_true(g_str_has_prefix(s, "CERTMONGER_") || g_str_has_prefix(s, "PATH=") ||
                              g_str_has_prefix(s, "LANG="));
                g_hash_table_insert(vars, g_strndup(s, (gsize) (eq - s)), g_strdup(eq + 1));
        }
        g_assert_cmpstr(g_hash_table_lookup(vars, "PATH"), ==, "/usr/sbin:/usr/bin:/sbin:/bin");
        g_assert_cmpstr(g_hash_table_lookup(vars, "LANG"), ==, "C.UTF-8");
        g_assert_cmpstr(g_hash_table_lookup(vars, "CERTMONGER_OPERATION"), ==, "SUBMIT");
        g_assert_cmpstr(g_hash_table_lookup(vars, "CERTMONGER_CA_NICKNAME"), ==, "testca");
        g_assert_cmpstr(g_hash_table_lookup(vars, "CERTMONGER_REQ_SUBJECT"), ==, "CN=www.example.com");
        g_assert_cmpstr(g_hash_table_lookup(vars, "CERTMONGER_REQ_HOSTNAME"), ==, "www.example.com\nexample.com");
        g_assert_cmpstr(g_hash_table_lookup(vars, "CERTMONGER_REQ_EMAIL"), ==, "admin@example.com");
        g_assert_cmpstr(g_hash_table_lookup(vars, "CERTMONGER_REQ_IP_ADDRESS"), ==, "192.0.2.1");
        g_assert_cmpstr(g_hash_table_lookup(vars, "CERTMONGER_KEY_TYPE"), ==, "EC");
        g_assert_true(g_str_has_prefix(g_hash_table_lookup(vars, "CERTMONGER_CSR"),
                                       "-----BEGIN CERTIFICATE REQUEST-----\n"));
        g_assert_false(g_hash_table_contains(vars, "CERTMONGER_CA_COOKIE"));
        g_assert_false(g_hash_table_contains(vars, "CERTKEEPER_SECRET_TEST"));

        g_assert_true(g_file_get_contents(fds_path, &fds, NULL, NULL));
        g_auto(GStrv) fd_list = g_strsplit(g_strstrip(fds), "\n", -1);
        g_assert_false(g_strv_contains((const char *const *) fd_list, fd_name));

        g_assert_true(g_file_get_contents(stdin_path, &stdin_target, NULL, NULL));
        g_assert_cmpstr(g_strstrip(stdin_target), ==, "/dev/null");
        g_assert_true(g_file_get_contents(cwd_path, &cwd, NULL, NULL));
        g_assert_cmpstr(g_strstrip(cwd), ==, "/");
}

/* certmonger's own local CA helper, unchanged: it needs only -d DIR for its state. */
static void test_certmonger_local_submit(Fixture *f, gconstpointer data) {
        static const char local_submit[] = "/usr/lib/certmonger/local-submit";
        g_autofree char *state = g_build_filename(f->dir, "local-ca", NULL);
        const char *argv[] = { local_submit, "-d", state, NULL };
        _cleanup_(X509_freep) X509 *leaf = NULL, *root = NULL;
        _cleanup_free_ char *id = NULL;
        Provider *p;
        ProviderResult r;

        if (access(local_submit, X_OK) < 0) {
                g_test_skip("certmonger's local-submit is not installed");
                return;
        }
        g_assert_cmpint(g_mkdir(state, 0700), ==, 0);
        p = make_provider(argv, 30);

        issue(f, p, NULL, &r);
        g_test_message("local-submit: %s", strempty(r.error));
        g_assert_cmpint(r.outcome, ==, PROVIDER_ISSUED);
        leaf = pem_to_cert(r.certificate_pem);
        g_assert_nonnull(leaf);
        g_assert_cmpint(X509_check_host(leaf, "www.example.com", 0, 0, NULL), ==, 1);
        /* local-submit prints just the leaf; the root came from its FETCH-ROOTS. */
        g_assert_nonnull(r.chain_pem);
        root = pem_to_cert(r.chain_pem);
        g_assert_nonnull(root);
        g_assert_cmpint(X509_verify(leaf, X509_get0_pubkey(root)), ==, 1);
        g_assert_cmpint(X509_check_issued(root, root), ==, X509_V_OK);
        provider_result_done(&r);

        id = p->ops->identify(p);
        g_assert_nonnull(strstr(id, "certmonger"));
        provider_free(p);
}

/* ---- cfssl ---------------------------------------------------------------------------------------- */

static int free_port(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof sa;
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(bind(fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
        g_assert_cmpint(getsockname(fd, (struct sockaddr *) &sa, &l), ==, 0);
        return ntohs(sa.sin_port);
}

static bool port_open(int port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        return fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0;
}

static void test_cfssl(Fixture *f, gconstpointer data) {
        g_autofree char *helper = g_build_filename(BUILD_DIR, "tools", "certkeeper-cfssl-submit", NULL);
        g_autofree char *cfssl = g_find_program_in_path("cfssl");
        g_autofree char *url = NULL, *port_s = NULL, *cfg = NULL, *keyfile = NULL, *badkey = NULL;
        g_autofree char *dead_url = NULL, *ca_path = NULL;
        _cleanup_(X509_freep) X509 *cfssl_ca = NULL;
        g_autoptr(GError) error = NULL;
        GPid pid;
        int port;

        if (!cfssl || !g_file_test("/usr/bin/cfssljson", G_FILE_TEST_IS_EXECUTABLE)) {
                g_test_skip("cfssl is not installed");
                return;
        }
        g_assert_true(g_file_test(helper, G_FILE_TEST_IS_EXECUTABLE));

        run_or_die(f->dir,
                   "echo '{\"CN\":\"certkeeper cfssl test CA\",\"key\":{\"algo\":\"ecdsa\",\"size\":256}}' "
                   "> cfssl-ca-csr.json && cfssl gencert -initca cfssl-ca-csr.json 2>/dev/null | "
                   "cfssljson -bare cfssl-ca");
        cfg = write_script(f, "cfssl.json",
                           "{\"signing\":{\"default\":{\"expiry\":\"24h\",\"usages\":[\"signing\","
                           "\"key encipherment\",\"server auth\"]},\"profiles\":{\"authed\":{\"expiry\":\"24h\","
                           "\"usages\":[\"signing\",\"key encipherment\",\"server auth\"],\"auth_key\":\"k1\"}}},"
                           "\"auth_keys\":{\"k1\":{\"type\":\"standard\",\"key\":"
                           "\"00112233445566778899aabbccddeeff\"}}}\n",
                           0644);
        keyfile = write_script(f, "auth.key", "00112233445566778899aabbccddeeff\n", 0600);
        badkey = write_script(f, "bad.key", "ffeeddccbbaa99887766554433221100\n", 0600);
        ca_path = g_build_filename(f->dir, "cfssl-ca.pem", NULL);
        cfssl_ca = read_cert(ca_path);
        g_assert_nonnull(cfssl_ca);

        port = free_port();
        port_s = g_strdup_printf("%i", port);
        {
                const char *argv[] = { cfssl, "serve", "-address", "127.0.0.1", "-port", port_s, "-ca",
                                       "cfssl-ca.pem", "-ca-key", "cfssl-ca-key.pem", "-config", cfg, NULL };
                g_assert_true(g_spawn_async_with_pipes(f->dir, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD |
                                                       G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                                                       NULL, NULL, &pid, NULL, NULL, NULL, &error));
        }
        /* Ready when it accepts connections; give up after 10 s. */
        for (gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC; !port_open(port);) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                g_assert_cmpint(waitpid(pid, NULL, WNOHANG), ==, 0); /* still running */
                g_usleep(10 * 1000);
        }

        url = g_strdup_printf("http://127.0.0.1:%i", port);
        dead_url = g_strdup_printf("http://127.0.0.1:%i", free_port());

        {
                const char *argv[] = { helper, url, NULL };
                _cleanup_(provider_freep) Provider *p = make_provider(argv, 30);
                _cleanup_(X509_freep) X509 *leaf = NULL, *root = NULL;
                _cleanup_free_ char *id = NULL;
                ProviderResult r;

                issue(f, p, NULL, &r);
                g_test_message("cfssl: %s", strempty(r.error));
                g_assert_cmpint(r.outcome, ==, PROVIDER_ISSUED);
                leaf = pem_to_cert(r.certificate_pem);
                g_assert_nonnull(leaf);
                g_assert_cmpint(X509_verify(leaf, X509_get0_pubkey(cfssl_ca)), ==, 1);
                g_assert_cmpint(X509_check_host(leaf, "example.com", 0, 0, NULL), ==, 1);
                /* The chain is the CA from /api/v1/cfssl/info (FETCH-ROOTS). */
                root = pem_to_cert(r.chain_pem);
                g_assert_nonnull(root);
                g_assert_cmpint(X509_cmp(root, cfssl_ca), ==, 0);
                provider_result_done(&r);

                id = p->ops->identify(p);
                g_assert_true(g_str_has_prefix(id, "certkeeper-cfssl-submit "));
                g_assert_true(g_str_has_suffix(id, url));
        }
        {
                const char *argv[] = { helper, url, "--profile", "authed", "--auth-key-file", keyfile, NULL };
                _cleanup_(provider_freep) Provider *p = make_provider(argv, 30);
                _cleanup_(X509_freep) X509 *leaf = NULL;
                ProviderResult r;

                issue(f, p, NULL, &r);
                g_test_message("cfssl authsign: %s", strempty(r.error));
                g_assert_cmpint(r.outcome, ==, PROVIDER_ISSUED);
                leaf = pem_to_cert(r.certificate_pem);
                g_assert_cmpint(X509_verify(leaf, X509_get0_pubkey(cfssl_ca)), ==, 1);
                provider_result_done(&r);
        }
        {
                /* cfssl answers {"success":false}: rejected, with cfssl's reason. */
                const char *argv1[] = { helper, url, "--profile", "authed", "--auth-key-file", badkey, NULL };
                const char *argv2[] = { helper, url, "--profile", "authed", NULL };
                const char *const *argvs[] = { argv1, argv2 };
                const char *needles[] = { "invalid token", "authentication required" };

                for (size_t i = 0; i < ELEMENTSOF(argvs); i++) {
                        _cleanup_(provider_freep) Provider *p = make_provider(argvs[i], 30);
                        ProviderResult r;

                        issue(f, p, NULL, &r);
                        g_test_message("cfssl refusal: %s", strempty(r.error));
                        g_assert_cmpint(r.outcome, ==, PROVIDER_REJECTED);
                        g_assert_nonnull(strstr(r.error, needles[i]));
                        provider_result_done(&r);
                }
        }
        {
                const char *argv[] = { helper, dead_url, NULL };
                _cleanup_(provider_freep) Provider *p = make_provider(argv, 30);
                ProviderResult r;

                issue(f, p, NULL, &r);
                g_test_message("cfssl down: %s", strempty(r.error));
                g_assert_cmpint(r.outcome, ==, PROVIDER_UNREACHABLE);
                g_assert_nonnull(strstr(r.error, "Could not reach cfssl"));
                provider_result_done(&r);
        }

        (void) kill(pid, SIGTERM);
        (void) waitpid(pid, NULL, 0);
        g_spawn_close_pid(pid);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);

#define ADD(name, fn) g_test_add("/provider-external/" name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        ADD("issued-with-chain", test_issued_with_chain);
        ADD("issued-chain-from-roots", test_issued_chain_from_roots);
        ADD("issued-root-first", test_issued_root_first);
        ADD("issued-wrong-key", test_issued_wrong_key);
        ADD("concurrent", test_concurrent);
        ADD("wait-then-poll", test_wait_then_poll);
        ADD("wait-with-delay", test_wait_with_delay);
        ADD("exit-codes", test_exit_codes);
        ADD("hang", test_hang);
        ADD("flood", test_flood);
        ADD("not-runnable", test_not_runnable);
        ADD("bad-config", test_bad_config);
        ADD("clean-environment", test_clean_environment);
        ADD("certmonger-local-submit", test_certmonger_local_submit);
        ADD("cfssl", test_cfssl);
#undef ADD

        return g_test_run();
}
