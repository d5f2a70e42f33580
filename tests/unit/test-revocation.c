/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* revocation.c driven directly, on a real store, a real Local CA and a real
 * audit log in a temp dir, with the test clock (clock_set_override) for what
 * the bus-level test cannot do: codes that expire after five minutes, a CRL
 * that is re-issued before its nextUpdate. */

#include <ftw.h>
#include <sys/stat.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "audit.h"
#include "ca.h"
#include "config.h"
#include "inventory.h"
#include "jobs.h"
#include "keys.h"
#include "localca.h"
#include "log.h"
#include "revocation.h"
#include "store.h"
#include "x509.h"

#define CALLER_A ":1.10"
#define CALLER_B ":1.11"

typedef struct Fixture {
        char *dir;
        Config *config;
        MasterKey mk;
        Store *store;
        Audit *audit;
        LocalCa *ca;
        sd_event *event;
        JobPool *io;
        GHashTable *providers;
        Revocation *rev;
        unsigned n_revoked_events;
        uint64_t last_revoked;
        char *last_reason;
} Fixture;

static void on_revoked(void *userdata, uint64_t id, const char *reason) {
        Fixture *f = userdata;
        f->n_revoked_events++;
        f->last_revoked = id;
        g_free(f->last_reason);
        f->last_reason = g_strdup(reason);
}

static void fixture_setup(Fixture *f, gconstpointer data) {
        g_autofree char *err = NULL;

        clock_set_override(0);
        f->dir = g_dir_make_tmp("certkeeper-revocation-XXXXXX", NULL);
        g_assert_nonnull(f->dir);
        g_assert_cmpint(config_new_default(&f->config), ==, 0);
        g_autofree char *source = NULL;
        g_assert_cmpint(master_key_load(f->dir, &f->mk, &source, &err), ==, 0);
        g_autofree char *db = g_build_filename(f->dir, "certkeeper.db", NULL);
        if (store_open(db, &f->store, &err) < 0)
                g_error("store_open: %s", err);
        g_assert_cmpint(audit_new(f->store, &f->audit), ==, 0);
        if (local_ca_open(f->store, &f->mk, f->config, f->dir, &f->ca, &err) < 0)
                g_error("local_ca_open: %s", err);
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        g_assert_cmpint(job_pool_new(f->event, "io", 1, &f->io), ==, 0);
        f->providers = g_hash_table_new(g_str_hash, g_str_equal);
        g_assert_cmpint(revocation_new(&(RevocationContext){.event = f->event,
                                                            .store = f->store,
                                                            .audit = f->audit,
                                                            .local_ca = f->ca,
                                                            .config = f->config,
                                                            .state_dir = f->dir,
                                                            .providers = f->providers,
                                                            .io_pool = f->io},
                                       &f->rev),
                        ==, 0);
        revocation_add_listener(f->rev,
                                &(RevocationListener){.certificate_revoked = on_revoked, .userdata = f});
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        clock_set_override(0);
        revocation_free(f->rev);
        job_pool_free(f->io);
        g_hash_table_destroy(f->providers);
        sd_event_unref(f->event);
        local_ca_free(f->ca);
        audit_free(f->audit);
        store_free(f->store);
        master_key_wipe(&f->mk);
        config_free(f->config);
        g_assert_cmpint(nftw(f->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS), ==, 0);
        g_free(f->dir);
        g_free(f->last_reason);
}

/* A leaf of the Local CA in the inventory, as an order would store it. */
static uint64_t issue(Fixture *f, const char *cn, char **ret_serial) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        g_autofree char *err = NULL;
        char *names[] = {(char *) cn, NULL};
        CertInfo info = {0};
        uint64_t id = 0;

        g_assert_cmpint(key_generate(KEY_ALGORITHM_EC_256, &k), ==, 0);
        if (ca_sign_leaf(f->ca->ca,
                         &(LeafRequest){.common_name = cn,
                                        .dns_names = names,
                                        .pkey = k,
                                        .validity_days = 30,
                                        .now = now_usec()},
                         &x, &err) < 0)
                g_error("ca_sign_leaf: %s", err);
        g_assert_cmpint(cert_info_from_x509(x, &info), ==, 0);
        g_assert_cmpint(store_begin(f->store), ==, 0);
        g_assert_cmpint(inventory_insert(f->store,
                                         &(CertInsert){.info = &info,
                                                       .provider = "local",
                                                       .source = "managed",
                                                       .ca_id = f->ca->id},
                                         &id),
                        ==, 0);
        g_assert_cmpint(store_commit(f->store), ==, 0);
        if (ret_serial)
                *ret_serial = g_strdup(info.serial);
        cert_info_done(&info);
        return id;
}

static int do_revoke(Fixture *f, uint64_t id, const char *caller, const char *code, const char *reason) {
        g_autofree char *err = NULL;
        int r = revocation_revoke(f->rev, id, caller, 0, 1, code, reason, &err);
        if (r < 0) {
                /* Every refusal explains itself, and never quotes the code. */
                g_assert_nonnull(err);
                if (!isempty(code))
                        g_assert_null(strstr(err, code));
        }
        return r;
}

/* A six-digit code that is not `code`. */
static void wrong_code(const char *code, char ret[static 7]) {
        snprintf(ret, 7, "%06u", (unsigned) ((strtoul(code, NULL, 10) + 1) % 1000000));
}

static void test_code_format(Fixture *f, gconstpointer data) {
        uint64_t id = issue(f, "format.example.com", NULL);
        unsigned seen[6][10] = {{0}};
        char code[7];

        /* 1,000 codes: six decimal digits, every digit value at every position
         * (a code like 012345 keeps its leading zero). Missing one by chance: < 1e-40. */
        for (unsigned i = 0; i < 1000; i++) {
                g_assert_cmpint(revocation_request(f->rev, id, CALLER_A, 1000, 1, code), ==, 0);
                g_assert_cmpuint(strlen(code), ==, 6);
                for (unsigned p = 0; p < 6; p++) {
                        g_assert_true(g_ascii_isdigit(code[p]));
                        seen[p][code[p] - '0']++;
                }
        }
        for (unsigned p = 0; p < 6; p++)
                for (unsigned d = 0; d < 10; d++)
                        g_assert_cmpuint(seen[p][d], >, 0);

        /* A new request replaced the older codes: only the last one is live. */
        char last[7], old[7];
        memcpy(old, code, 7);
        g_assert_cmpint(revocation_request(f->rev, id, CALLER_A, 1000, 1, last), ==, 0);
        if (!streq(old, last))
                g_assert_cmpint(do_revoke(f, id, CALLER_A, old, "superseded"), ==, -EBADE);
        g_assert_cmpint(do_revoke(f, id, CALLER_A, last, "superseded"), ==, 0);
}

static void test_expiry(Fixture *f, gconstpointer data) {
        uint64_t t0 = now_usec();
        uint64_t a = issue(f, "a.example.com", NULL), b = issue(f, "b.example.com", NULL);
        char code_a[7], code_b[7], wrong[7];

        clock_set_override(t0);
        g_assert_cmpint(revocation_request(f->rev, a, CALLER_A, 1000, 1, code_a), ==, 0);
        g_assert_cmpint(revocation_request(f->rev, b, CALLER_A, 1000, 1, code_b), ==, 0);

        /* One microsecond before five minutes: still live. */
        clock_set_override(t0 + REVOCATION_CODE_TTL_USEC - 1);
        wrong_code(code_a, wrong);
        g_assert_cmpint(do_revoke(f, a, CALLER_A, wrong, "keyCompromise"), ==, -EBADE);
        g_assert_cmpint(do_revoke(f, b, CALLER_A, code_b, "keyCompromise"), ==, 0);

        /* At five minutes: expired, before any check of the code or the reason... */
        clock_set_override(t0 + REVOCATION_CODE_TTL_USEC);
        g_assert_cmpint(do_revoke(f, a, CALLER_A, wrong, "no-such-reason"), ==, -ETIME);
        /* ... and gone: the next attempt, even with the right code, needs a new one. */
        g_assert_cmpint(do_revoke(f, a, CALLER_A, code_a, "keyCompromise"), ==, -EPERM);

        /* A fresh code works, at the later time. */
        clock_set_override(t0 + 10 * REVOCATION_CODE_TTL_USEC);
        g_assert_cmpint(revocation_request(f->rev, a, CALLER_A, 1000, 1, code_a), ==, 0);
        clock_set_override(t0 + 11 * REVOCATION_CODE_TTL_USEC - 1);
        g_assert_cmpint(do_revoke(f, a, CALLER_A, code_a, "keyCompromise"), ==, 0);

        _cleanup_(cert_row_freep) CertRow *row = NULL;
        g_assert_cmpint(inventory_get(f->store, a, &row), ==, 0);
        g_assert_cmpuint(row->revoked_at, ==, t0 + 11 * REVOCATION_CODE_TTL_USEC - 1);
}

static void test_three_tries(Fixture *f, gconstpointer data) {
        uint64_t id = issue(f, "tries.example.com", NULL);
        char code[7], wrong[7];

        g_assert_cmpint(revocation_request(f->rev, id, CALLER_A, 1000, 1, code), ==, 0);
        wrong_code(code, wrong);
        g_assert_cmpint(do_revoke(f, id, CALLER_A, wrong, "superseded"), ==, -EBADE);
        g_assert_cmpint(do_revoke(f, id, CALLER_A, "", "superseded"), ==, -EBADE);
        /* Another caller's guesses neither count against A's code nor reach it. */
        g_assert_cmpint(do_revoke(f, id, CALLER_B, code, "superseded"), ==, -EPERM);
        g_assert_cmpint(do_revoke(f, id, CALLER_B, wrong, "superseded"), ==, -EPERM);
        /* A prefix of the right code, and the code with a digit more, are wrong. */
        g_autofree char *longer = g_strconcat(code, "0", NULL);
        g_assert_cmpint(do_revoke(f, id, CALLER_A, longer, "superseded"), ==, -EBADE);
        /* Three wrong tries: void, even for the right code. */
        g_assert_cmpint(do_revoke(f, id, CALLER_A, code, "superseded"), ==, -EPERM);

        _cleanup_(cert_row_freep) CertRow *row = NULL;
        g_assert_cmpint(inventory_get(f->store, id, &row), ==, 0);
        g_assert_cmpuint(row->revoked_at, ==, 0);
        g_assert_cmpuint(f->n_revoked_events, ==, 0);
}

static void test_single_use(Fixture *f, gconstpointer data) {
        uint64_t id = issue(f, "once.example.com", NULL);
        char code[7];

        g_assert_cmpint(revocation_request(f->rev, id, CALLER_A, 1000, 1, code), ==, 0);
        g_assert_cmpint(do_revoke(f, id, CALLER_A, code, "cessationOfOperation"), ==, 0);
        g_assert_cmpuint(f->n_revoked_events, ==, 1);
        g_assert_cmpuint(f->last_revoked, ==, id);
        g_assert_cmpstr(f->last_reason, ==, "cessationOfOperation");

        /* Used: the same code again, a new request, anything: AlreadyRevoked. */
        g_assert_cmpint(do_revoke(f, id, CALLER_A, code, "cessationOfOperation"), ==, -EALREADY);
        g_assert_cmpint(do_revoke(f, id, CALLER_A, code, "keyCompromise"), ==, -EALREADY);
        g_assert_cmpint(revocation_request(f->rev, id, CALLER_A, 1000, 1, code), ==, -EALREADY);
        g_assert_cmpuint(f->n_revoked_events, ==, 1);

        _cleanup_(cert_row_freep) CertRow *row = NULL;
        g_assert_cmpint(inventory_get(f->store, id, &row), ==, 0);
        g_assert_cmpstr(row->revocation_reason, ==, "cessationOfOperation");
        g_assert_cmpstr(row->revocation_propagation, ==, "published in the Local PKI CRL");
}

static void test_error_order(Fixture *f, gconstpointer data) {
        uint64_t id = issue(f, "order.example.com", NULL), done = issue(f, "done.example.com", NULL);
        uint64_t t0 = now_usec();
        char code[7], wrong[7];

        /* AlreadyRevoked before anything else. */
        g_assert_cmpint(revocation_request(f->rev, done, CALLER_A, 1000, 1, code), ==, 0);
        g_assert_cmpint(do_revoke(f, done, CALLER_A, code, ""), ==, 0);
        g_assert_cmpint(do_revoke(f, done, CALLER_B, "", "no-such-reason"), ==, -EALREADY);

        /* ConfirmationRequired before ConfirmationMismatch and InvalidReason. */
        g_assert_cmpint(do_revoke(f, id, CALLER_A, "000000", "no-such-reason"), ==, -EPERM);

        /* ConfirmationExpired before ConfirmationMismatch and InvalidReason. */
        clock_set_override(t0);
        g_assert_cmpint(revocation_request(f->rev, id, CALLER_A, 1000, 1, code), ==, 0);
        wrong_code(code, wrong);
        clock_set_override(t0 + REVOCATION_CODE_TTL_USEC + 1);
        g_assert_cmpint(do_revoke(f, id, CALLER_A, wrong, "no-such-reason"), ==, -ETIME);

        /* ConfirmationMismatch before InvalidReason. */
        g_assert_cmpint(revocation_request(f->rev, id, CALLER_A, 1000, 1, code), ==, 0);
        wrong_code(code, wrong);
        g_assert_cmpint(do_revoke(f, id, CALLER_A, wrong, "no-such-reason"), ==, -EBADE);

        /* InvalidReason last; it does not burn the code. Names are case-sensitive. */
        g_assert_cmpint(do_revoke(f, id, CALLER_A, code, "no-such-reason"), ==, -EDOM);
        g_assert_cmpint(do_revoke(f, id, CALLER_A, code, "KeyCompromise"), ==, -EDOM);
        g_assert_cmpint(do_revoke(f, id, CALLER_A, code, "removeFromCRL"), ==, -EDOM);
        g_assert_cmpint(do_revoke(f, id, CALLER_A, code, "affiliationChanged"), ==, 0);

        /* An empty reason is unspecified. */
        _cleanup_(cert_row_freep) CertRow *row = NULL;
        g_assert_cmpint(inventory_get(f->store, done, &row), ==, 0);
        g_assert_cmpstr(row->revocation_reason, ==, "unspecified");

        /* An unknown certificate. */
        g_assert_cmpint(revocation_request(f->rev, 999999, CALLER_A, 1000, 1, code), ==, -ENOENT);
        g_autofree char *err = NULL;
        g_assert_cmpint(revocation_revoke(f->rev, 999999, CALLER_A, 1000, 1, code, "", &err), ==, -ENOENT);
}

static void test_callers(Fixture *f, gconstpointer data) {
        uint64_t id = issue(f, "callers.example.com", NULL);
        char code_a[7], code_b[7];

        /* Each caller holds its own code for the same certificate. */
        g_assert_cmpint(revocation_request(f->rev, id, CALLER_A, 1000, 1, code_a), ==, 0);
        g_assert_cmpint(revocation_request(f->rev, id, CALLER_B, 1001, 1, code_b), ==, 0);
        if (!streq(code_a, code_b))
                g_assert_cmpint(do_revoke(f, id, CALLER_B, code_a, "superseded"), ==, -EBADE);

        /* A caller that left the bus takes its codes with it. */
        revocation_forget_caller(f->rev, CALLER_A);
        g_assert_cmpint(do_revoke(f, id, CALLER_A, code_a, "superseded"), ==, -EPERM);
        g_assert_cmpint(do_revoke(f, id, CALLER_B, code_b, "superseded"), ==, 0);

        /* At most REVOCATION_CODES_PER_CALLER live codes per caller; expired ones do not count. */
        uint64_t t0 = now_usec();
        clock_set_override(t0);
        uint64_t ids[REVOCATION_CODES_PER_CALLER + 1];
        for (unsigned i = 0; i <= REVOCATION_CODES_PER_CALLER; i++) {
                g_autofree char *cn = g_strdup_printf("many%u.example.com", i);
                ids[i] = issue(f, cn, NULL);
        }
        char code[7];
        for (unsigned i = 0; i < REVOCATION_CODES_PER_CALLER; i++)
                g_assert_cmpint(revocation_request(f->rev, ids[i], CALLER_A, 1000, 1, code), ==, 0);
        g_assert_cmpint(revocation_request(f->rev, ids[REVOCATION_CODES_PER_CALLER], CALLER_A, 1000, 1, code),
                        ==, -EUSERS);
        /* A new code for a certificate it already holds one for replaces it: allowed. */
        g_assert_cmpint(revocation_request(f->rev, ids[0], CALLER_A, 1000, 1, code), ==, 0);
        /* Another caller is not limited by A. */
        g_assert_cmpint(revocation_request(f->rev, ids[REVOCATION_CODES_PER_CALLER], CALLER_B, 1001, 1, code),
                        ==, 0);
        clock_set_override(t0 + REVOCATION_CODE_TTL_USEC);
        g_assert_cmpint(revocation_request(f->rev, ids[REVOCATION_CODES_PER_CALLER], CALLER_A, 1000, 1, code),
                        ==, 0);
}

/* Every audit row of an event, as GVariant text of its fields. */
static GPtrArray *audit_fields(Fixture *f, const char *event) {
        GPtrArray *l = g_ptr_array_new_with_free_func(g_free);
        sqlite3_stmt *st = NULL;
        g_assert_cmpint(sqlite3_prepare_v2(store_db(f->store),
                                           "SELECT fields FROM audit WHERE event = ? ORDER BY id", -1, &st,
                                           NULL),
                        ==, SQLITE_OK);
        sqlite3_bind_text(st, 1, event, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW)
                g_ptr_array_add(l, g_strdup((const char *) sqlite3_column_text(st, 0)));
        sqlite3_finalize(st);
        return l;
}

static void test_audit(Fixture *f, gconstpointer data) {
        uint64_t id = issue(f, "audit.example.com", NULL);
        char code[7], wrong[7];

        g_assert_cmpint(revocation_request(f->rev, id, CALLER_A, 1000, 1, code), ==, 0);
        wrong_code(code, wrong);
        g_assert_cmpint(do_revoke(f, id, CALLER_A, wrong, "keyCompromise"), ==, -EBADE);
        g_assert_cmpint(do_revoke(f, id, CALLER_A, code, "keyCompromise"), ==, 0);

        g_autoptr(GPtrArray) requested = audit_fields(f, "certificate.revoke.requested");
        g_autoptr(GPtrArray) success = audit_fields(f, "certificate.revoke.success");
        g_assert_cmpuint(requested->len, ==, 1);
        g_assert_cmpuint(success->len, ==, 1);
        g_autofree char *idstr = g_strdup_printf("'%" G_GUINT64_FORMAT "'", id);
        g_assert_nonnull(strstr(requested->pdata[0], idstr));
        g_assert_nonnull(strstr(success->pdata[0], "'reason': 'keyCompromise'"));
        g_assert_null(strstr(requested->pdata[0], code));
        g_assert_null(strstr(success->pdata[0], code));
        g_assert_null(strstr(success->pdata[0], wrong));

        /* Nowhere in the store: the audit rows, the certificate row, anything. */
        sqlite3_stmt *st = NULL;
        g_assert_cmpint(sqlite3_prepare_v2(store_db(f->store),
                                           "SELECT count(*) FROM audit WHERE fields LIKE '%' || ?1 || '%'"
                                           " OR fields LIKE '%' || ?2 || '%'",
                                           -1, &st, NULL),
                        ==, SQLITE_OK);
        sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, wrong, -1, SQLITE_STATIC);
        g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
        g_assert_cmpint(sqlite3_column_int(st, 0), ==, 0);
        sqlite3_finalize(st);
}

static X509_CRL *crl_parse(const char *pem) {
        _cleanup_(BIO_free_allp) BIO *b = BIO_new_mem_buf(pem, -1);
        X509_CRL *crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
        g_assert_nonnull(crl);
        return crl;
}

static int crl_count(X509_CRL *crl) {
        /* An empty CRL has no revokedCertificates at all: the stack is NULL. */
        return MAX(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 0);
}

static uint64_t crl_number(X509_CRL *crl) {
        ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
        uint64_t v = 0;
        g_assert_nonnull(n);
        g_assert_cmpint(ASN1_INTEGER_get_uint64(&v, n), ==, 1);
        ASN1_INTEGER_free(n);
        return v;
}

/* The entry for a serial (hex, any case, leading zeros allowed), or NULL. */
static X509_REVOKED *crl_find(X509_CRL *crl, const char *serial_hex) {
        STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);
        BIGNUM *want = NULL;
        X509_REVOKED *found = NULL;

        g_assert_cmpint(BN_hex2bn(&want, serial_hex), ==, (int) strlen(serial_hex));
        for (int i = 0; !found && i < sk_X509_REVOKED_num(revs); i++) {
                X509_REVOKED *r = sk_X509_REVOKED_value(revs, i);
                BIGNUM *bn = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(r), NULL);
                if (BN_cmp(bn, want) == 0)
                        found = r;
                BN_free(bn);
        }
        BN_free(want);
        return found;
}

static int entry_reason(X509_REVOKED *r) {
        int crit = 0;
        ASN1_ENUMERATED *e = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
        if (!e)
                return -1;
        int v = (int) ASN1_ENUMERATED_get(e);
        ASN1_ENUMERATED_free(e);
        return v;
}

static void test_crl(Fixture *f, gconstpointer data) {
        g_autofree char *serial_kc = NULL, *serial_un = NULL, *serial_keep = NULL;
        uint64_t kc = issue(f, "kc.example.com", &serial_kc), un = issue(f, "un.example.com", &serial_un);
        (void) issue(f, "keep.example.com", &serial_keep);
        const char *pem;
        char code[7];

        g_assert_cmpint(revocation_get_crl(f->rev, &pem), ==, 0);
        _cleanup_(X509_CRL_freep) X509_CRL *crl0 = crl_parse(pem);
        uint64_t n0 = crl_number(crl0);
        g_assert_cmpint(crl_count(crl0), ==, 0);

        g_assert_cmpint(revocation_request(f->rev, kc, CALLER_A, 1000, 1, code), ==, 0);
        g_assert_cmpint(do_revoke(f, kc, CALLER_A, code, "keyCompromise"), ==, 0);
        g_assert_cmpint(revocation_request(f->rev, un, CALLER_A, 1000, 1, code), ==, 0);
        g_assert_cmpint(do_revoke(f, un, CALLER_A, code, ""), ==, 0);

        g_assert_cmpint(revocation_get_crl(f->rev, &pem), ==, 0);
        _cleanup_(X509_CRL_freep) X509_CRL *crl = crl_parse(pem);
        g_assert_cmpint(X509_CRL_get_version(crl), ==, X509_CRL_VERSION_2);
        g_assert_cmpint(X509_CRL_verify(crl, f->ca->ca->key), ==, 1);
        g_assert_cmpint(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(f->ca->ca->cert)), ==,
                        0);
        g_assert_cmpuint(crl_number(crl), ==, n0 + 2);
        g_assert_cmpint(crl_count(crl), ==, 2);
        X509_REVOKED *e = crl_find(crl, serial_kc);
        g_assert_nonnull(e);
        g_assert_cmpint(entry_reason(e), ==, REVOCATION_REASON_KEY_COMPROMISE);
        e = crl_find(crl, serial_un);
        g_assert_nonnull(e);
        g_assert_cmpint(entry_reason(e), ==, -1);
        g_assert_null(crl_find(crl, serial_keep));

        /* AKI = the CA's key id. */
        AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
        g_assert_nonnull(akid);
        g_assert_cmpint(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(f->ca->ca->cert)), ==,
                        0);
        AUTHORITY_KEYID_free(akid);

        /* nextUpdate = thisUpdate + CRLValidityDays. */
        int days = 0, secs = 0;
        g_assert_cmpint(
                ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(crl), X509_CRL_get0_nextUpdate(crl)),
                ==, 1);
        g_assert_cmpint(days, ==, (int) f->config->crl_validity_days);
        g_assert_cmpint(secs, ==, 0);

        /* The published file: the same PEM, world-readable, written atomically (no temp file left). */
        g_autofree char *path = g_build_filename(f->dir, "ca", "crl.pem", NULL);
        g_autofree char *disk = NULL;
        g_assert_true(g_file_get_contents(path, &disk, NULL, NULL));
        g_assert_cmpstr(disk, ==, pem);
        struct stat st;
        g_assert_cmpint(stat(path, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 07777, ==, 0644);
        g_autofree char *cadir = g_build_filename(f->dir, "ca", NULL);
        g_autoptr(GDir) d = g_dir_open(cadir, 0, NULL);
        for (const char *name; (name = g_dir_read_name(d));)
                g_assert_true(streq(name, "crl.pem") || streq(name, "ca.pem"));

        /* Asked again soon: the same CRL. Past half its validity: a new one, before nextUpdate. */
        g_autofree char *before = g_strdup(pem);
        g_assert_cmpint(revocation_get_crl(f->rev, &pem), ==, 0);
        g_assert_cmpstr(pem, ==, before);
        clock_set_override(now_usec() + (uint64_t) f->config->crl_validity_days * USEC_PER_DAY / 2 +
                           USEC_PER_SEC);
        g_assert_cmpint(revocation_get_crl(f->rev, &pem), ==, 0);
        _cleanup_(X509_CRL_freep) X509_CRL *later = crl_parse(pem);
        g_assert_cmpuint(crl_number(later), ==, n0 + 3);
        g_assert_cmpint(crl_count(later), ==, 2);
        g_assert_cmpint(ASN1_TIME_compare(X509_CRL_get0_lastUpdate(later), X509_CRL_get0_nextUpdate(crl)), <,
                        0);

        /* A restart (a new Revocation on the same store) keeps the entries and never reuses a number. */
        clock_set_override(0);
        f->rev = revocation_free(f->rev);
        g_assert_cmpint(revocation_new(&(RevocationContext){.event = f->event,
                                                            .store = f->store,
                                                            .audit = f->audit,
                                                            .local_ca = f->ca,
                                                            .config = f->config,
                                                            .state_dir = f->dir,
                                                            .providers = f->providers,
                                                            .io_pool = f->io},
                                       &f->rev),
                        ==, 0);
        g_assert_cmpint(revocation_get_crl(f->rev, &pem), ==, 0);
        _cleanup_(X509_CRL_freep) X509_CRL *again = crl_parse(pem);
        g_assert_cmpuint(crl_number(again), ==, n0 + 4);
        g_assert_cmpint(crl_count(again), ==, 2);
}

/* ca_make_crl() encodes the entries itself: check, for every CA key type, that
 * OpenSSL parses the result, the signature verifies, every entry reads back
 * as given, and the encoding is exactly the DER OpenSSL's own encoder makes of
 * the parsed CRL (so it is canonical: sorted lengths, minimal integers, the
 * right Time type on each side of 2050). */
static void test_make_crl_encoding(gconstpointer data) {
        KeyAlgorithm alg = (KeyAlgorithm) GPOINTER_TO_INT(data);
        _cleanup_(ca_freep) Ca *ca = NULL;
        g_autofree char *err = NULL;

        if (ca_create(&(CaSettings){.subject = "CN=Test CRL CA,O=certkeeper tests",
                                    .key_algorithm = alg,
                                    .validity_days = 30,
                                    .digest = "sha256"},
                      &ca, &err) < 0)
                g_error("ca_create: %s", err);

        const CrlEntry entries[] = {
                {"ff", 1700000000000000, REVOCATION_REASON_KEY_COMPROMISE}, /* top bit: 00 ff */
                {"7f", 1700000001000000, REVOCATION_REASON_UNSPECIFIED},
                {"000000abc", 1700000002000000, REVOCATION_REASON_CA_COMPROMISE}, /* leading zeros, odd */
                {"0", 1700000003000000, REVOCATION_REASON_AFFILIATION_CHANGED},
                {"4fd3a0c1b2e3f405a6b7c8d9e0f1a2b3", 2556057600000000,
                 REVOCATION_REASON_SUPERSEDED},                                /* 2051 */
                {"FFEEDDCCBBAA99887766554433221100ffeeddcc", 2524607999000000, /* 20 octets; 2049-12-31 */
                 REVOCATION_REASON_CESSATION_OF_OPERATION},
                {"1", 1700000004000000, REVOCATION_REASON_UNSPECIFIED},
        };
        const size_t n = ELEMENTSOF(entries);
        uint64_t now = 1800000000000000;
        char *pem = NULL;
        g_assert_cmpint(ca_make_crl(ca, entries, n, 4242, now, 3 * USEC_PER_DAY, &pem), ==, 0);
        _cleanup_(X509_CRL_freep) X509_CRL *crl = crl_parse(pem);
        g_autofree char *pem_copy = g_strdup(pem);
        free(pem);

        g_assert_cmpint(X509_CRL_verify(crl, ca->key), ==, 1);
        g_assert_cmpuint(crl_number(crl), ==, 4242);
        g_assert_cmpint(crl_count(crl), ==, (int) n);
        g_assert_cmpint(ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(crl), (time_t) (now / USEC_PER_SEC)),
                        ==, 0);
        g_assert_cmpint(ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(crl),
                                             (time_t) (now / USEC_PER_SEC + 3 * 86400)),
                        ==, 0);
        for (size_t i = 0; i < n; i++) {
                X509_REVOKED *r = crl_find(crl, entries[i].serial_hex);
                if (!r)
                        g_error("serial %s is not on the CRL", entries[i].serial_hex);
                g_assert_cmpint(ASN1_TIME_cmp_time_t(X509_REVOKED_get0_revocationDate(r),
                                                     (time_t) (entries[i].revoked_at / USEC_PER_SEC)),
                                ==, 0);
                bool generalized = entries[i].revoked_at / USEC_PER_SEC >= 2524608000ULL;
                g_assert_cmpint(ASN1_STRING_type(X509_REVOKED_get0_revocationDate(r)), ==,
                                generalized ? V_ASN1_GENERALIZEDTIME : V_ASN1_UTCTIME);
                g_assert_cmpint(
                        entry_reason(r), ==,
                        entries[i].reason == REVOCATION_REASON_UNSPECIFIED ? -1 : (int) entries[i].reason);
        }

        /* Our bytes equal OpenSSL's encoding of what it parsed. */
        {
                _cleanup_(BIO_free_allp) BIO *b = BIO_new_mem_buf(pem_copy, -1);
                char *name = NULL, *header = NULL;
                unsigned char *raw = NULL, *reenc = NULL, *tbs = NULL;
                long raw_len = 0;
                g_assert_cmpint(PEM_read_bio(b, &name, &header, &raw, &raw_len), ==, 1);
                g_assert_cmpstr(name, ==, "X509 CRL");
                g_assert_cmpint(i2d_re_X509_CRL_tbs(crl, &tbs), >, 0); /* drops the cached encoding */
                int reenc_len = i2d_X509_CRL(crl, &reenc);
                g_assert_cmpmem(raw, raw_len, reenc, reenc_len);
                OPENSSL_free(name);
                OPENSSL_free(header);
                OPENSSL_free(raw);
                OPENSSL_free(reenc);
                OPENSSL_free(tbs);
        }

        /* A bad serial is refused, not half-encoded. */
        const CrlEntry bad[] = {{"12xz", 1700000000000000, REVOCATION_REASON_UNSPECIFIED}};
        g_assert_cmpint(ca_make_crl(ca, bad, 1, 1, now, USEC_PER_DAY, &pem), ==, -EINVAL);
        const CrlEntry too_long[] = {{"112233445566778899aabbccddeeff0011223344ff", 1700000000000000,
                                      REVOCATION_REASON_UNSPECIFIED}};
        g_assert_cmpint(ca_make_crl(ca, too_long, 1, 1, now, USEC_PER_DAY, &pem), ==, -EINVAL);
}

/* n revoked rows of the Local CA straight into the store, as years of revocations would leave them. */
static void insert_revoked(Fixture *f, unsigned n) {
        g_autofree char *sql = g_strdup_printf(
                "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < %u)"
                " INSERT INTO certificates (fingerprint, common_name, sans, subject, issuer, provider, "
                "algorithm,"
                "  digest, not_before, not_after, serial, source, ca_id, revoked_at, revocation_reason, "
                "created_at, der)"
                " SELECT lower(hex(randomblob(32))), 'bulk' || i || '.example.com', '', '', '', 'local', "
                "'ec-256',"
                "  'sha256', 0, 0, ltrim(lower(hex(randomblob(16))), '0'), 'managed', %" G_GUINT64_FORMAT ","
                "  1700000000000000 + i * 1000000, CASE i %% 3 WHEN 0 THEN 'unspecified' WHEN 1 THEN "
                "'keyCompromise'"
                "  ELSE 'superseded' END, 0, x'00' FROM seq",
                n, f->ca->id);
        g_assert_cmpint(store_exec(f->store, sql), ==, 0);
}

/* A CRL that cannot be built (here: a corrupt serial in the store) does not
 * hold up the revocation, and GetCRL catches up as soon as it can be built,
 * not at the next scheduled re-issue days later. */
static void test_crl_retry(Fixture *f, gconstpointer data) {
        g_autofree char *serial = NULL;
        uint64_t id = issue(f, "retry.example.com", &serial);
        const char *pem;
        char code[7];

        g_assert_cmpint(revocation_get_crl(f->rev, &pem), ==, 0);
        g_autofree char *before = g_strdup(pem);
        insert_revoked(f, 1);
        g_assert_cmpint(store_exec(f->store,
                                   "UPDATE certificates SET serial = 'not-hex' WHERE serial != '' AND"
                                   " common_name = 'bulk1.example.com'"),
                        ==, 0);

        g_assert_cmpint(revocation_request(f->rev, id, CALLER_A, 1000, 1, code), ==, 0);
        g_assert_cmpint(do_revoke(f, id, CALLER_A, code, "keyCompromise"), ==, 0);
        g_assert_cmpuint(f->n_revoked_events, ==, 1);
        /* The last good CRL is still served. */
        g_assert_cmpint(revocation_get_crl(f->rev, &pem), ==, 0);
        g_assert_cmpstr(pem, ==, before);

        g_assert_cmpint(store_exec(f->store, "DELETE FROM certificates WHERE serial = 'not-hex'"), ==, 0);
        g_assert_cmpint(revocation_get_crl(f->rev, &pem), ==, 0);
        _cleanup_(X509_CRL_freep) X509_CRL *crl = crl_parse(pem);
        g_assert_nonnull(crl_find(crl, serial));
        g_autofree char *path = g_build_filename(f->dir, "ca", "crl.pem", NULL);
        g_autofree char *disk = NULL;
        g_assert_true(g_file_get_contents(path, &disk, NULL, NULL));
        g_assert_cmpstr(disk, ==, pem);
}

static void test_crl_many(Fixture *f, gconstpointer data) {
        unsigned n = GPOINTER_TO_UINT(data);
        insert_revoked(f, n);
        uint64_t id = issue(f, "last.example.com", NULL);
        char code[7];
        const char *pem;

        g_assert_cmpint(revocation_request(f->rev, id, CALLER_A, 1000, 1, code), ==, 0);
        int64_t t = g_get_monotonic_time();
        g_assert_cmpint(do_revoke(f, id, CALLER_A, code, "keyCompromise"), ==, 0);
        t = g_get_monotonic_time() - t;
        g_test_message("revocation with CRL regeneration over %u entries: %.3f s", n + 1, (double) t / 1e6);

        g_assert_cmpint(revocation_get_crl(f->rev, &pem), ==, 0);
        _cleanup_(X509_CRL_freep) X509_CRL *crl = crl_parse(pem);
        g_assert_cmpint(X509_CRL_verify(crl, f->ca->ca->key), ==, 1);
        STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);
        g_assert_cmpint(sk_X509_REVOKED_num(revs), ==, (int) n + 1);
        /* One in three is unspecified and carries no reasonCode. */
        unsigned with_reason = 0;
        for (int i = 0; i < sk_X509_REVOKED_num(revs); i++)
                with_reason += entry_reason(sk_X509_REVOKED_value(revs, i)) >= 0;
        g_assert_cmpuint(with_reason, ==, n - n / 3 + 1);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        log_set_max_level(LOG_WARNING);
#define ADD(name, fn, data) g_test_add(name, Fixture, data, fixture_setup, fn, fixture_teardown)
        ADD("/revocation/code-format", test_code_format, NULL);
        ADD("/revocation/expiry", test_expiry, NULL);
        ADD("/revocation/three-tries", test_three_tries, NULL);
        ADD("/revocation/single-use", test_single_use, NULL);
        ADD("/revocation/error-order", test_error_order, NULL);
        ADD("/revocation/callers", test_callers, NULL);
        ADD("/revocation/audit", test_audit, NULL);
        ADD("/revocation/crl", test_crl, NULL);
        ADD("/revocation/crl-retry", test_crl_retry, NULL);
        ADD("/revocation/crl-10000", test_crl_many, GUINT_TO_POINTER(10000));
        g_test_add_data_func("/revocation/make-crl/ec-256", GINT_TO_POINTER(KEY_ALGORITHM_EC_256),
                             test_make_crl_encoding);
        g_test_add_data_func("/revocation/make-crl/ec-384", GINT_TO_POINTER(KEY_ALGORITHM_EC_384),
                             test_make_crl_encoding);
        g_test_add_data_func("/revocation/make-crl/rsa-2048", GINT_TO_POINTER(KEY_ALGORITHM_RSA_2048),
                             test_make_crl_encoding);
        g_test_add_data_func("/revocation/make-crl/ed25519", GINT_TO_POINTER(KEY_ALGORITHM_ED25519),
                             test_make_crl_encoding);
        return g_test_run();
}
