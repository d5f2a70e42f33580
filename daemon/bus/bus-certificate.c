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

static int cert_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                     sd_bus_error *error) {
        BusContext *c = userdata;
        uint64_t id;

        if (bus_path_id(path, CK_CERT_PREFIX, &id) < 0)
                return 0;

        CertRow *row = NULL;
        int r = inventory_get(c->store, id, &row);
        /* No such certificate is NotFound, whether asked by ID (here) or by fingerprint
         * (GetCertificateByFingerprint): one error for one answer, not sd-bus' UnknownObject. */
        if (r == -ENOENT)
                return bus_error_setf(error, CK_ERROR_NOT_FOUND, "no certificate with ID %" PRIu64, id);
        if (r < 0)
                return r;
        cert_row_free(c->cert_obj.row);
        c->cert_obj.row = row;
        c->cert_obj.ctx = c;
        *found = &c->cert_obj;
        return 1;
}

static int cert_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***ret_nodes,
                          sd_bus_error *error) {
        BusContext *c = userdata;
        _cleanup_free_ uint64_t *ids = NULL;
        size_t n = 0;
        int r = inventory_list_ids(c->store, &ids, &n);
        if (r < 0)
                return r;
        *ret_nodes = bus_paths_from_ids(CK_CERT_PREFIX, ids, n);
        return 0;
}

static int append_strv(sd_bus_message *reply, char *const *l) {
        return bus_append_strv(reply, (char **) (l ? l : (char *const[]) { NULL }));
}

/* One getter for every property: the row is loaded once per call by cert_find. */
static int cert_append_property(sd_bus_message *reply, const char *property, const CertRow *r) {
        uint64_t now = now_usec();

        if (streq(property, "Id"))
                return sd_bus_message_append(reply, "t", r->id);
        if (streq(property, "CommonName"))
                return bus_append_string(reply, r->common_name);
        if (streq(property, "SubjectAlternativeNames"))
                return append_strv(reply, r->sans);
        if (streq(property, "Subject"))
                return bus_append_string(reply, r->subject);
        if (streq(property, "Issuer"))
                return bus_append_string(reply, r->issuer);
        if (streq(property, "Provider"))
                return bus_append_string(reply, r->provider);
        if (streq(property, "Algorithm"))
                return bus_append_string(reply, r->algorithm);
        if (streq(property, "Digest"))
                return bus_append_string(reply, r->digest);
        if (streq(property, "NotBefore"))
                return sd_bus_message_append(reply, "t", r->not_before);
        if (streq(property, "NotAfter"))
                return sd_bus_message_append(reply, "t", r->not_after);
        if (streq(property, "DaysUntilExpiry"))
                return sd_bus_message_append(reply, "x", days_until(r->not_after, now));
        if (streq(property, "Status"))
                return bus_append_string(reply, cert_status(r->revoked_at, r->not_after, now));
        if (streq(property, "Source"))
                return bus_append_string(reply, r->source);
        if (streq(property, "FingerprintSHA256"))
                return bus_append_string(reply, r->fingerprint);
        if (streq(property, "SerialNumber"))
                return bus_append_string(reply, r->serial);
        if (streq(property, "HasPrivateKey"))
                return sd_bus_message_append(reply, "b", (int) (r->key_id != 0));
        if (streq(property, "RevokedAt"))
                return sd_bus_message_append(reply, "t", r->revoked_at);
        if (streq(property, "RevocationReason"))
                return bus_append_string(reply, r->revocation_reason);
        if (streq(property, "RevocationPropagation"))
                return bus_append_string(reply, r->revocation_propagation);
        if (streq(property, "Order")) {
                g_autofree char *p = r->order_id ? bus_object_path(CK_ORDER_PREFIX, r->order_id) : g_strdup("/");
                return sd_bus_message_append(reply, "o", p);
        }
        if (streq(property, "Paths"))
                return append_strv(reply, r->paths);
        if (streq(property, "Present"))
                return sd_bus_message_append(reply, "b", (int) r->present);
        return -ENOENT;
}

/* KeyUsage and ExtendedKeyUsage come from the certificate itself, not its row: a discovered
 * certificate's are whatever its issuer put there. */
static bool is_usage_property(const char *property) {
        return streq(property, "KeyUsage") || streq(property, "ExtendedKeyUsage");
}

static int append_usage(BusContext *c, sd_bus_message *reply, const char *property, const CertRow *row) {
        g_autofree uint8_t *der = NULL;
        g_auto(GStrv) ku = NULL, eku = NULL;
        size_t len = 0;
        int r;

        r = inventory_get_der(c->store, row->id, &der, &len, NULL);
        if (r >= 0)
                r = x509_usage_from_der(der, len, &ku, &eku);
        if (r < 0) {
                log_debug_errno(r, "Cannot read the key usage of certificate %" PRIu64 ": %m, ignoring.", row->id);
                return append_strv(reply, NULL);
        }
        return append_strv(reply, streq(property, "KeyUsage") ? ku : eku);
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        CertObject *o = userdata;
        if (is_usage_property(property))
                return append_usage(o->ctx, reply, property, o->row);
        if (streq(property, "Deployment")) {
                /* The deployment that keeps this certificate in its files now. */
                uint64_t id = 0;
                char buf[BUS_OBJECT_PATH_MAX];
                if (deployments_for_certificate(o->ctx->store, o->row->id, &id, NULL) < 0)
                        id = 0;
                return sd_bus_message_append_basic(reply, 'o',
                                                   id ? bus_object_path_buf(buf, sizeof buf, CK_DEPLOYMENT_PREFIX, id)
                                                      : "/");
        }
        return cert_append_property(reply, property, o->row);
}

static const struct {
        const char *name, *signature;
} describe_properties[] = {
        { "Id", "t" },          { "CommonName", "s" },        { "SubjectAlternativeNames", "as" },
        { "Subject", "s" },     { "Issuer", "s" },            { "Provider", "s" },
        { "Algorithm", "s" },   { "Digest", "s" },            { "NotBefore", "t" },
        { "NotAfter", "t" },    { "DaysUntilExpiry", "x" },   { "Status", "s" },
        { "Source", "s" },      { "FingerprintSHA256", "s" }, { "SerialNumber", "s" },
        { "HasPrivateKey", "b" }, { "RevokedAt", "t" },       { "RevocationReason", "s" },
        { "RevocationPropagation", "s" }, { "Order", "o" },   { "Paths", "as" },
        { "Present", "b" },     { "KeyUsage", "as" },         { "ExtendedKeyUsage", "as" },
};

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
        for (size_t i = 0; i < ELEMENTSOF(describe_properties); i++) {
                r = sd_bus_message_open_container(reply, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append_basic(reply, 's', describe_properties[i].name);
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'v', describe_properties[i].signature);
                if (r >= 0)
                        r = is_usage_property(describe_properties[i].name)
                                    ? append_usage(c, reply, describe_properties[i].name, o->row)
                                    : cert_append_property(reply, describe_properties[i].name, o->row);
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

#define CERT_PROPERTY(name, sig) SD_BUS_PROPERTY(name, sig, property_get, 0, 0)

const sd_bus_vtable bus_certificate_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("CommonName", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("SubjectAlternativeNames", "as", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Subject", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Issuer", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Provider", "s", property_get, 0, 0),
        SD_BUS_PROPERTY("Algorithm", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Digest", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("NotBefore", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("NotAfter", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        CERT_PROPERTY("DaysUntilExpiry", "x"),
        SD_BUS_PROPERTY("Status", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Source", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("FingerprintSHA256", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("SerialNumber", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        CERT_PROPERTY("HasPrivateKey", "b"),
        SD_BUS_PROPERTY("RevokedAt", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RevocationReason", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RevocationPropagation", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        CERT_PROPERTY("Order", "o"),
        SD_BUS_PROPERTY("Deployment", "o", property_get, 0, 0),
        SD_BUS_PROPERTY("Paths", "as", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Present", "b", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("KeyUsage", "as", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ExtendedKeyUsage", "as", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
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

int bus_cert_setup(BusContext *c) {
        int r = sd_bus_add_fallback_vtable(c->bus, NULL, CK_CERT_PREFIX, CK_CERT_IFACE, bus_certificate_vtable,
                                           cert_find, c);
        if (r < 0)
                return log_error_errno(r, "Cannot register the Certificate interface: %m");
        r = sd_bus_add_node_enumerator(c->bus, NULL, CK_CERT_PREFIX, cert_enumerate, c);
        if (r < 0)
                return log_error_errno(r, "Cannot register the certificate enumerator: %m");
        return 0;
}
