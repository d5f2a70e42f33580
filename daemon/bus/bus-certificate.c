/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* org.certkeeper1.Certificate at /org/certkeeper1/certificate/<id>: served
 * lazily by a fallback vtable and a node enumerator, so nothing is registered
 * per certificate and start-up does not grow with the inventory. */

#include <inttypes.h>

#include <glib.h>

#include "bus-errors.h"
#include "bus-manager.h"
#include "deployments.h"
#include "export.h"
#include "log.h"
#include "x509-usage.h"

static int cert_load(BusContext *c, uint64_t id, void **ret_object) {
        CertRow *row = NULL;
        int r = inventory_get(c->store, id, &row);
        if (r < 0)
                return r;
        cert_row_free(c->cert_obj.row);
        c->cert_obj = (CertObject) { .ctx = c, .row = row };
        *ret_object = &c->cert_obj;
        return 0;
}

/* ---- properties: one table for the vtable, the getter and Describe() ---------------------------- */

typedef int (*CertGetter)(sd_bus_message *reply, const CertObject *o, uint64_t now);

typedef struct CertProperty {
        const char *name;
        const char *signature;
        size_t offset; /* of the CertRow field read as the signature says ("t", "s", "as", "b")… */
        CertGetter get; /* …or computed */
        bool describe;  /* one of Describe()'s details */
} CertProperty;

static int get_days_until_expiry(sd_bus_message *reply, const CertObject *o, uint64_t now) {
        return sd_bus_message_append(reply, "x", days_until(o->row->not_after, now));
}

static int get_status(sd_bus_message *reply, const CertObject *o, uint64_t now) {
        return bus_append_string(reply, cert_status(o->row->revoked_at, o->row->not_after, now));
}

static int get_has_private_key(sd_bus_message *reply, const CertObject *o, uint64_t now) {
        return sd_bus_message_append(reply, "b", (int) (o->row->key_id != 0));
}

static int append_path(sd_bus_message *reply, const char *prefix, uint64_t id) {
        char buf[BUS_OBJECT_PATH_MAX];
        return sd_bus_message_append_basic(reply, 'o',
                                           id ? bus_object_path_buf(buf, sizeof buf, prefix, id) : "/");
}

static int get_order(sd_bus_message *reply, const CertObject *o, uint64_t now) {
        return append_path(reply, CK_ORDER_PREFIX, o->row->order_id);
}

/* The deployment that keeps this certificate in its files now. */
static int get_deployment(sd_bus_message *reply, const CertObject *o, uint64_t now) {
        uint64_t id = 0;
        if (deployments_for_certificate(o->ctx->store, o->row->id, &id, NULL) < 0)
                id = 0;
        return append_path(reply, CK_DEPLOYMENT_PREFIX, id);
}

/* KeyUsage and ExtendedKeyUsage come from the certificate itself, not its row: a discovered
 * certificate's are whatever its issuer put there. */
static int append_usage(sd_bus_message *reply, const CertObject *o, bool extended) {
        g_autofree uint8_t *der = NULL;
        g_auto(GStrv) ku = NULL, eku = NULL;
        size_t len = 0;
        int r;

        r = inventory_get_der(o->ctx->store, o->row->id, &der, &len, NULL);
        if (r >= 0)
                r = x509_usage_from_der(der, len, &ku, &eku);
        if (r < 0) {
                log_debug_errno(r, "Cannot read the key usage of certificate %" PRIu64 ": %m, ignoring.", o->row->id);
                return bus_append_strv(reply, (char *[]) { NULL });
        }
        return bus_append_strv(reply, extended ? eku : ku);
}

static int get_key_usage(sd_bus_message *reply, const CertObject *o, uint64_t now) {
        return append_usage(reply, o, false);
}

static int get_extended_key_usage(sd_bus_message *reply, const CertObject *o, uint64_t now) {
        return append_usage(reply, o, true);
}

#define CONST SD_BUS_VTABLE_PROPERTY_CONST
#define EMITS SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE
#define FIELD(f) .offset = offsetof(CertRow, f)
#define COMPUTED(fn) .get = fn

/* Every Certificate property once, in the interface's order: name, signature, vtable flags,
 * where the value comes from, whether Describe() returns it. */
#define CERT_PROPERTIES(X)                                                                                   \
        X("Id", "t", CONST, FIELD(id), true)                                                                 \
        X("CommonName", "s", CONST, FIELD(common_name), true)                                                \
        X("SubjectAlternativeNames", "as", CONST, FIELD(sans), true)                                         \
        X("Subject", "s", CONST, FIELD(subject), true)                                                       \
        X("Issuer", "s", CONST, FIELD(issuer), true)                                                         \
        X("Provider", "s", 0, FIELD(provider), true)                                                         \
        X("Algorithm", "s", CONST, FIELD(algorithm), true)                                                   \
        X("Digest", "s", CONST, FIELD(digest), true)                                                         \
        X("NotBefore", "t", CONST, FIELD(not_before), true)                                                  \
        X("NotAfter", "t", CONST, FIELD(not_after), true)                                                    \
        X("DaysUntilExpiry", "x", 0, COMPUTED(get_days_until_expiry), true)                                  \
        X("Status", "s", EMITS, COMPUTED(get_status), true)                                                  \
        X("Source", "s", EMITS, FIELD(source), true)                                                         \
        X("FingerprintSHA256", "s", CONST, FIELD(fingerprint), true)                                         \
        X("SerialNumber", "s", CONST, FIELD(serial), true)                                                   \
        X("HasPrivateKey", "b", 0, COMPUTED(get_has_private_key), true)                                      \
        X("RevokedAt", "t", EMITS, FIELD(revoked_at), true)                                                  \
        X("RevocationReason", "s", EMITS, FIELD(revocation_reason), true)                                    \
        X("RevocationPropagation", "s", EMITS, FIELD(revocation_propagation), true)                          \
        X("Order", "o", 0, COMPUTED(get_order), true)                                                        \
        X("Deployment", "o", 0, COMPUTED(get_deployment), false)                                             \
        X("Paths", "as", EMITS, FIELD(paths), true)                                                          \
        X("Present", "b", EMITS, FIELD(present), true)                                                      \
        X("KeyUsage", "as", CONST, COMPUTED(get_key_usage), true)                                            \
        X("ExtendedKeyUsage", "as", CONST, COMPUTED(get_extended_key_usage), true)

#define TABLE_ENTRY(n, sig, flags, source, d) { .name = n, .signature = sig, source, .describe = d },
static const CertProperty cert_properties[] = { CERT_PROPERTIES(TABLE_ENTRY) };
#undef TABLE_ENTRY

static int cert_append_property(sd_bus_message *reply, const CertProperty *p, const CertObject *o, uint64_t now) {
        if (p->get)
                return p->get(reply, o, now);

        const uint8_t *field = (const uint8_t *) o->row + p->offset;
        if (streq(p->signature, "t"))
                return sd_bus_message_append(reply, "t", *(const uint64_t *) field);
        if (streq(p->signature, "s"))
                return bus_append_string(reply, *(char *const *) field);
        if (streq(p->signature, "as"))
                return bus_append_strv(reply, *(char **const *) field);
        if (streq(p->signature, "b"))
                return sd_bus_message_append(reply, "b", (int) *(const bool *) field);
        return -EINVAL; /* a table entry with a signature read above: never */
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        for (size_t i = 0; i < ELEMENTSOF(cert_properties); i++)
                if (streq(property, cert_properties[i].name))
                        return cert_append_property(reply, &cert_properties[i], userdata, now_usec());
        return -ENOENT;
}

static int audit_cert(BusContext *c, sd_bus_message *m, AuditEvent ev, const CertRow *row, const char *reason,
                      sd_bus_error *error) {
        Caller caller;
        int r = authz_caller(c->authz, m, &caller, error);
        if (r < 0)
                return r;
        r = audit_record_commit(c->audit, ev,
                                &(AuditRecord) { .uid = caller.uid, .pid = caller.pid, .certificate_id = row->id,
                                                 .fingerprint = row->fingerprint,
                                                 .common_name = row->common_name, .reason = reason });
        if (r < 0)
                /* An access we cannot record is an access we do not grant. */
                return bus_error_internal(error, r, "cannot record the audit event");
        return 0;
}

static int method_describe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        CertObject *o = userdata;
        BusContext *c = o->ctx;
        int r = authz_check(c->authz, m, ACTION_READ, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        uint64_t now = now_usec();
        for (size_t i = 0; i < ELEMENTSOF(cert_properties); i++) {
                const CertProperty *p = &cert_properties[i];
                if (!p->describe)
                        continue;
                r = sd_bus_message_open_container(reply, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append_basic(reply, 's', p->name);
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'v', p->signature);
                if (r >= 0)
                        r = cert_append_property(reply, p, o, now);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;

        r = audit_cert(c, m, AUDIT_VIEW_ACCESSED, o->row, NULL, error);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_download_pem(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        CertObject *o = userdata;
        BusContext *c = o->ctx;
        int chain = 0;
        const BusOption opts[] = { { "chain", "b", &chain, NULL } };
        int r = bus_read_options(m, opts, ELEMENTSOF(opts), NULL, error);
        if (r < 0)
                return r;
        r = authz_check(c->authz, m, ACTION_READ, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        g_autofree char *pem = NULL;
        r = export_pem(c->store, o->row->id, chain, &pem);
        if (r < 0)
                return bus_error_internal(error, r, "cannot read the certificate");
        /* The answer is built before the download is recorded: success is
         * recorded only for an answer that is complete and then sent. */
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = bus_append_string(reply, pem);
        if (r < 0)
                return r;
        r = audit_cert(c, m, AUDIT_DOWNLOAD_SUCCESS, o->row, NULL, error);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* An ExportPFX whose PKCS#12 file is built on a worker: a few ms of PBKDF2 and encryption
 * that would otherwise hold up every other caller. */
typedef struct PfxJob {
        BusContext *ctx;
        sd_bus_message *m;
        PfxSource *src;
        bool legacy;
        CertRow audit_row;       /* id, fingerprint, common name: what the audit record names */
        /* Written by the worker. */
        int r;
        uint8_t *pfx;
        size_t len;
        char *password;
} PfxJob;

static void pfx_job_free(PfxJob *j) {
        if (!j)
                return;
        sd_bus_message_unref(j->m);
        pfx_source_free(j->src);
        free(j->audit_row.fingerprint);
        free(j->audit_row.common_name);
        if (j->pfx) {
                OPENSSL_cleanse(j->pfx, j->len);
                free(j->pfx);
        }
        erase_and_freep(&j->password);
        free(j);
}

static void pfx_job_run(void *userdata) {
        PfxJob *j = userdata;
        j->r = export_pfx_build(j->src, j->ctx->master_key, j->legacy, &j->pfx, &j->len, &j->password);
}

/* The file is built: record the export (no record, no file), then answer. */
static int pfx_job_answer(PfxJob *j, sd_bus_error *error) {
        BusContext *c = j->ctx;
        if (j->r == -ENOKEY)
                return bus_error_setf(error, CK_ERROR_NO_PRIVATE_KEY, "the private key of certificate %" PRIu64
                                      " is not available", j->audit_row.id);
        if (j->r < 0)
                return bus_error_internal(error, j->r, "cannot build the PKCS#12 file");

        /* The answer first, then the record (no record, no file), then the
         * answer goes out: success is recorded only for an answer sent. */
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(j->m, &reply);
        /* Wiped when freed, also when the record below fails and it is never sent. */
        if (r >= 0)
                r = sd_bus_message_sensitive(reply);
        if (r >= 0)
                r = sd_bus_message_append_array(reply, 'y', j->pfx, j->len);
        if (r >= 0)
                r = bus_append_string(reply, j->password);
        if (r < 0)
                return r;
        r = audit_cert(c, j->m, AUDIT_DOWNLOAD_PFX_SUCCESS, &j->audit_row, j->legacy ? "legacy" : NULL, error);
        if (r < 0)
                return r;
        /* The message buffer holds the password until sent; sd-bus frees it then. */
        return sd_bus_send(NULL, reply, NULL);
}

static void pfx_job_done(void *userdata) {
        PfxJob *j = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        bus_reply_deferred_error(j->m, pfx_job_answer(j, &e), &e, "cannot send the PKCS#12 file");
        pfx_job_free(j);
}

static void pfx_job_destroy(void *userdata) {
        pfx_job_free(userdata);
}

static int method_export_pfx(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        CertObject *o = userdata;
        BusContext *c = o->ctx;
        int legacy = 0;
        const BusOption opts[] = { { "legacy", "b", &legacy, NULL } };
        int r = bus_read_options(m, opts, ELEMENTSOF(opts), NULL, error);
        if (r < 0)
                return r;
        if (!o->row->key_id)
                return bus_error_setf(error, CK_ERROR_NO_PRIVATE_KEY,
                                      "certificate %" PRIu64 " (%s): certkeeperd does not hold its private key "
                                      "(it was issued from a CSR or discovered on disk)",
                                      o->row->id, o->row->common_name);
        r = authz_check(c->authz, m, ACTION_EXPORT_KEY, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        PfxJob *j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->ctx = c;
        j->m = sd_bus_message_ref(m);
        j->legacy = legacy;
        /* The row is the lookup's and goes with the next one: keep what the audit needs. */
        j->audit_row.id = o->row->id;
        j->audit_row.fingerprint = strdup(strempty(o->row->fingerprint));
        j->audit_row.common_name = strdup(strempty(o->row->common_name));
        j->r = export_pfx_prepare(c->store, o->row->id, &j->src);
        if (!j->audit_row.fingerprint || !j->audit_row.common_name) {
                pfx_job_free(j);
                return -ENOMEM;
        }
        if (j->r >= 0 && c->io_pool) {
                r = job_pool_submit(c->io_pool, pfx_job_run, pfx_job_done, pfx_job_destroy, j);
                if (r < 0)
                        pfx_job_free(j);
                return r < 0 ? r : 1;   /* answered from pfx_job_done() */
        }
        if (j->r >= 0)
                pfx_job_run(j);
        r = pfx_job_answer(j, error);
        pfx_job_free(j);
        return r;
}

static int method_request_revocation(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        CertObject *o = userdata;
        BusContext *c = o->ctx;
        int r;

        if (o->row->revoked_at)
                return bus_error_setf(error, CK_ERROR_ALREADY_REVOKED, "certificate %" PRIu64 " (%s) is already revoked",
                                      o->row->id, o->row->common_name);
        r = authz_check(c->authz, m, ACTION_REVOKE, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        Caller caller;
        r = authz_caller(c->authz, m, &caller, error);
        if (r < 0)
                return r;
        /* The code is bound to the calling user, not to the bus connection: "busctl call
         * RequestRevocation" and "busctl call Revoke" are two connections of one admin. */
        char code[7], key[32];
        snprintf(key, sizeof key, "uid %" PRIu32, caller.uid);
        r = revocation_request(c->revocation, o->row->id, key, caller.uid, caller.pid, code);
        if (r == -EALREADY)
                return bus_error_setf(error, CK_ERROR_ALREADY_REVOKED, "certificate %" PRIu64 " is already revoked",
                                      o->row->id);
        if (r == -EUSERS)
                return bus_error_setf(error, CK_ERROR_LIMIT_EXCEEDED,
                                      "uid %" PRIu32 " already holds %u live revocation codes, the limit: "
                                      "use or let some expire (5 minutes) first",
                                      caller.uid, REVOCATION_CODES_PER_CALLER);
        if (r < 0)
                return bus_error_internal(error, r, "cannot issue a revocation code");
        r = sd_bus_reply_method_return(m, "s", code);
        OPENSSL_cleanse(code, sizeof code);
        return r;
}

static int method_revoke(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        CertObject *o = userdata;
        BusContext *c = o->ctx;
        const char *code, *reason;
        int r;

        r = sd_bus_message_read(m, "ss", &code, &reason);
        if (r < 0)
                return r;
        r = authz_check(c->authz, m, ACTION_REVOKE, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        Caller caller;
        r = authz_caller(c->authz, m, &caller, error);
        if (r < 0)
                return r;
        g_autofree char *err = NULL;
        char key[32];
        snprintf(key, sizeof key, "uid %" PRIu32, caller.uid);
        r = revocation_revoke(c->revocation, o->row->id, key, caller.uid, caller.pid, code, reason, &err);
        switch (r) {
        case 0:
                return sd_bus_reply_method_return(m, NULL);
        case -EALREADY:
                return sd_bus_error_set(error, CK_ERROR_ALREADY_REVOKED, err);
        case -EPERM:
                return sd_bus_error_set(error, CK_ERROR_CONFIRMATION_REQUIRED, err);
        case -ETIME:
                return sd_bus_error_set(error, CK_ERROR_CONFIRMATION_EXPIRED, err);
        case -EBADE:
                return sd_bus_error_set(error, CK_ERROR_CONFIRMATION_MISMATCH, err);
        case -EDOM:
                return sd_bus_error_set(error, CK_ERROR_INVALID_REASON, err);
        default:
                return bus_error_internal(error, r, err ? err : "cannot revoke");
        }
}

#define VTABLE_ENTRY(n, sig, flags, source, d) SD_BUS_PROPERTY(n, sig, property_get, 0, flags),

const sd_bus_vtable bus_certificate_vtable[] = {
        SD_BUS_VTABLE_START(0),
        CERT_PROPERTIES(VTABLE_ENTRY)
        SD_BUS_METHOD_WITH_ARGS("Describe", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", details), method_describe,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DownloadPEM", SD_BUS_ARGS("a{sv}", options), SD_BUS_RESULT("s", pem),
                                method_download_pem, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ExportPFX", SD_BUS_ARGS("a{sv}", options), SD_BUS_RESULT("ay", pfx, "s", password),
                                method_export_pfx, SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_ARGS("RequestRevocation", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", code),
                                method_request_revocation, SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_ARGS("Revoke", SD_BUS_ARGS("s", code, "s", reason), SD_BUS_NO_RESULT, method_revoke,
                                SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_VTABLE_END,
};
#undef VTABLE_ENTRY
#undef CERT_PROPERTIES
#undef COMPUTED
#undef FIELD
#undef EMITS
#undef CONST

int bus_cert_setup(BusContext *c) {
        static const BusObjectKind kind = {
                .prefix = CK_CERT_PREFIX,
                .interface = CK_CERT_IFACE,
                .vtable = bus_certificate_vtable,
                .what = "certificate",
                .load = cert_load,
                .list_ids = inventory_list_ids,
        };
        return bus_add_object_kind(c, &kind);
}
