/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Schema migrations: one function per step, each run in its own transaction
 * together with the user_version bump, so a crash leaves the old or the new
 * schema, never half of one. */

#include <glib.h>

#include "log.h"
#include "store.h"

static const char schema_v1[] =
        /* Private keys, always sealed (keys.c): never a clear key in the store. */
        "CREATE TABLE keys ("
        "  id INTEGER PRIMARY KEY,"
        "  algorithm TEXT NOT NULL,"
        "  sealed BLOB NOT NULL,"
        "  created_at INTEGER NOT NULL);"

        /* The Local PKI CA; a new row if it is ever re-keyed, the newest active row signs. */
        "CREATE TABLE ca ("
        "  id INTEGER PRIMARY KEY,"
        "  key_id INTEGER NOT NULL REFERENCES keys(id),"
        "  cert_der BLOB NOT NULL,"
        "  digest TEXT NOT NULL,"
        "  crl_number INTEGER NOT NULL DEFAULT 0,"
        "  created_at INTEGER NOT NULL);"

        "CREATE TABLE orders ("
        "  id INTEGER PRIMARY KEY,"
        "  common_name TEXT NOT NULL,"
        "  kind TEXT NOT NULL CHECK (kind IN ('automated','csr')),"
        "  order_type TEXT NOT NULL,"
        "  provider TEXT NOT NULL,"
        "  status TEXT NOT NULL CHECK (status IN ('pending','processing','complete','failed')),"
        "  requested_by TEXT NOT NULL,"
        "  requested_by_uid INTEGER NOT NULL,"
        "  requested_by_pid INTEGER NOT NULL DEFAULT 0,"
        "  channel TEXT NOT NULL CHECK (channel IN ('dbus','spool')),"
        "  submitted_at INTEGER NOT NULL,"
        "  finished_at INTEGER NOT NULL DEFAULT 0,"
        "  certificate_id INTEGER REFERENCES certificates(id),"
        "  error TEXT NOT NULL DEFAULT '',"
        "  parameters TEXT NOT NULL,"             /* GVariant text of the a{sv} request */
        "  dns_names TEXT NOT NULL DEFAULT '',"   /* normalised SANs, one per line */
        "  key_algorithm TEXT NOT NULL DEFAULT '',"
        "  validity_days INTEGER NOT NULL DEFAULT 0,"
        "  csr_der BLOB,"
        "  policy_warnings TEXT NOT NULL DEFAULT '',"
        "  spool_name TEXT,"
        "  spool_sha256 TEXT,"
        "  spool_owner INTEGER,"
        "  cookie TEXT,"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  next_attempt_at INTEGER NOT NULL DEFAULT 0,"
        "  resubmit_of INTEGER);"
        "CREATE INDEX orders_status ON orders(status, id);"
        "CREATE INDEX orders_spool ON orders(spool_name, spool_sha256) WHERE spool_name IS NOT NULL;"
        "CREATE INDEX orders_uid_open ON orders(requested_by_uid) WHERE status IN ('pending','processing');"

        "CREATE TABLE certificates ("
        "  id INTEGER PRIMARY KEY,"
        "  fingerprint TEXT NOT NULL UNIQUE,"
        "  common_name TEXT NOT NULL,"
        "  sans TEXT NOT NULL,"                   /* one per line */
        "  subject TEXT NOT NULL,"
        "  issuer TEXT NOT NULL,"
        "  provider TEXT NOT NULL,"
        "  algorithm TEXT NOT NULL,"
        "  digest TEXT NOT NULL,"
        "  not_before INTEGER NOT NULL,"
        "  not_after INTEGER NOT NULL,"
        "  serial TEXT NOT NULL,"
        "  source TEXT NOT NULL CHECK (source IN ('managed','discovered')),"
        "  key_id INTEGER REFERENCES keys(id),"
        "  order_id INTEGER REFERENCES orders(id),"
        "  ca_id INTEGER REFERENCES ca(id),"      /* issued by our Local PKI: on its CRL when revoked */
        "  revoked_at INTEGER NOT NULL DEFAULT 0,"
        "  revocation_reason TEXT NOT NULL DEFAULT '',"
        "  revocation_propagation TEXT NOT NULL DEFAULT '',"
        "  present INTEGER NOT NULL DEFAULT 1,"
        "  created_at INTEGER NOT NULL,"
        "  der BLOB NOT NULL,"
        "  chain_pem TEXT NOT NULL DEFAULT '');"
        /* Covering index: a list reads the index only, never the rows holding the DER. */
        "CREATE INDEX certificates_list ON certificates"
        "  (not_after, id, source, common_name, revoked_at, issuer);"
        "CREATE INDEX certificates_cn ON certificates(common_name);"
        "CREATE INDEX certificates_revoked ON certificates(ca_id, revoked_at) WHERE revoked_at != 0;"

        "CREATE TABLE certificate_paths ("
        "  certificate_id INTEGER NOT NULL REFERENCES certificates(id) ON DELETE CASCADE,"
        "  path TEXT NOT NULL,"
        "  PRIMARY KEY (certificate_id, path)) WITHOUT ROWID;"
        "CREATE INDEX certificate_paths_path ON certificate_paths(path);"

        "CREATE TABLE alerts ("
        "  id INTEGER PRIMARY KEY,"
        "  kind TEXT NOT NULL CHECK (kind IN ('order_failed','expiring','provider_unreachable')),"
        "  message TEXT NOT NULL,"
        "  order_id INTEGER REFERENCES orders(id),"
        "  certificate_id INTEGER REFERENCES certificates(id),"
        "  threshold_days INTEGER NOT NULL DEFAULT 0,"
        "  created_at INTEGER NOT NULL,"
        "  acknowledged INTEGER NOT NULL DEFAULT 0);"
        "CREATE UNIQUE INDEX alerts_expiring ON alerts(certificate_id, threshold_days) WHERE kind = 'expiring';"
        "CREATE INDEX alerts_open ON alerts(acknowledged, id);"

        "CREATE TABLE audit ("
        "  id INTEGER PRIMARY KEY,"
        "  time INTEGER NOT NULL,"
        "  event TEXT NOT NULL,"
        "  uid INTEGER NOT NULL,"
        "  pid INTEGER NOT NULL DEFAULT 0,"
        "  fields TEXT NOT NULL);"                /* GVariant text of a{ss} */
        "CREATE INDEX audit_event ON audit(event, time);"
        "CREATE INDEX audit_time ON audit(time);";

/* The audit trail is bounded (audit.c). Reads anyone may make (a Describe, a PEM download)
 * are marked access=1 and have their own bound, so that no flood of reads can push the
 * records of changes out; repeated reads of one certificate by one caller share a row with
 * a count and the time of the latest (last_time). audit_counts holds the number of rows of
 * each kind, kept by triggers, so that the bound costs no count(*). The read records of
 * schema 1 have no certificate id: they are never coalesced with. */
static const char schema_v2[] =
        "ALTER TABLE audit ADD COLUMN access INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE audit ADD COLUMN certificate_id INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;"
        "ALTER TABLE audit ADD COLUMN last_time INTEGER NOT NULL DEFAULT 0;"
        "UPDATE audit SET access = 1 WHERE event IN ('certificate.view.accessed', 'certificate.download.success');"
        "UPDATE audit SET last_time = time;"
        "CREATE INDEX audit_kind ON audit(access, id);"
        "CREATE INDEX audit_coalesce ON audit(uid, certificate_id, event, time) WHERE access = 1;"
        "CREATE TABLE audit_counts (access INTEGER PRIMARY KEY, n INTEGER NOT NULL);"
        "INSERT INTO audit_counts SELECT 0, count(*) FROM audit WHERE access = 0;"
        "INSERT INTO audit_counts SELECT 1, count(*) FROM audit WHERE access = 1;"
        "CREATE TRIGGER audit_counts_insert AFTER INSERT ON audit BEGIN"
        "  UPDATE audit_counts SET n = n + 1 WHERE access = NEW.access; END;"
        "CREATE TRIGGER audit_counts_delete AFTER DELETE ON audit BEGIN"
        "  UPDATE audit_counts SET n = n - 1 WHERE access = OLD.access; END;";

/* Deployments (DESIGN.md "Deployments"): the table, the orders' link to the deployment that
 * made them (and the key a renewal keeps), and the alert kinds of renewals. orders.channel
 * keeps its CHECK: a renewal order is recorded with channel 'dbus' and a deployment_id, and
 * shown as Channel "renewal" (rebuilding orders would break the foreign keys that point at
 * it). alerts is rebuilt for its CHECK: nothing references it. */
static const char schema_v3[] =
        "CREATE TABLE deployments ("
        "  id INTEGER PRIMARY KEY,"
        "  name TEXT NOT NULL UNIQUE,"
        "  origin TEXT NOT NULL CHECK (origin IN ('dbus','config')),"
        "  common_name TEXT NOT NULL,"
        "  spec TEXT NOT NULL,"                   /* GVariant text of the normalised a{sv} spec */
        "  state TEXT NOT NULL CHECK (state IN ('issuing','active','renewing','retrying','failed','paused')),"
        "  paused INTEGER NOT NULL DEFAULT 0,"
        "  certificate_id INTEGER REFERENCES certificates(id),"          /* deployed now */
        "  pending_certificate_id INTEGER REFERENCES certificates(id),"  /* issued, not yet deployed */
        "  order_id INTEGER REFERENCES orders(id),"                       /* the newest order */
        "  retry_action TEXT NOT NULL DEFAULT '' CHECK (retry_action IN ('','order','deploy')),"
        "  revision INTEGER NOT NULL DEFAULT 0,"
        "  deploy_seq INTEGER NOT NULL DEFAULT 0,"
        "  not_after INTEGER NOT NULL DEFAULT 0,"                         /* of certificate_id */
        "  jitter_usec INTEGER NOT NULL DEFAULT 0,"                       /* chosen once per certificate */
        "  next_renewal_at INTEGER NOT NULL DEFAULT 0,"
        "  last_renewed_at INTEGER NOT NULL DEFAULT 0,"
        "  last_deployed_at INTEGER NOT NULL DEFAULT 0,"
        "  last_error TEXT NOT NULL DEFAULT '',"
        "  failed_attempts INTEGER NOT NULL DEFAULT 0,"
        "  next_attempt_at INTEGER NOT NULL DEFAULT 0,"
        "  due_at INTEGER NOT NULL DEFAULT 0,"                            /* the timer acts then; 0: nothing due */
        "  created_at INTEGER NOT NULL,"
        "  created_by_uid INTEGER NOT NULL DEFAULT 0);"
        "CREATE INDEX deployments_due ON deployments(due_at) WHERE due_at != 0;"
        "CREATE INDEX deployments_certificate ON deployments(certificate_id);"

        "ALTER TABLE orders ADD COLUMN deployment_id INTEGER;"
        "ALTER TABLE orders ADD COLUMN reuse_key_id INTEGER REFERENCES keys(id);"
        "CREATE INDEX orders_deployment ON orders(deployment_id, id) WHERE deployment_id IS NOT NULL;"

        "CREATE TABLE alerts_v3 ("
        "  id INTEGER PRIMARY KEY,"
        "  kind TEXT NOT NULL CHECK (kind IN ('order_failed','expiring','provider_unreachable',"
        "                                     'renewal_failed','deploy_failed')),"
        "  message TEXT NOT NULL,"
        "  order_id INTEGER REFERENCES orders(id),"
        "  certificate_id INTEGER REFERENCES certificates(id),"
        "  threshold_days INTEGER NOT NULL DEFAULT 0,"
        "  created_at INTEGER NOT NULL,"
        "  acknowledged INTEGER NOT NULL DEFAULT 0,"
        "  deployment_id INTEGER);"
        "INSERT INTO alerts_v3 (id, kind, message, order_id, certificate_id, threshold_days, created_at, acknowledged)"
        "  SELECT id, kind, message, order_id, certificate_id, threshold_days, created_at, acknowledged FROM alerts;"
        "DROP TABLE alerts;"
        "ALTER TABLE alerts_v3 RENAME TO alerts;"
        "CREATE UNIQUE INDEX alerts_expiring ON alerts(certificate_id, threshold_days) WHERE kind = 'expiring';"
        "CREATE INDEX alerts_open ON alerts(acknowledged, id);";

/* "Which certificates cover this name" (ListCertificates filter `name`): every name a
 * certificate is for, its CN and each SAN, in the form names are looked up in
 * (san_lookup_form(): DNS names lower-case without a trailing dot, IP addresses canonical,
 * URIs normalised), one row each, so that a lookup reads the index instead of every row's
 * text. inventory_insert() keeps it; here the existing rows are filled from the CN and the
 * sans column (one name per line: the IP addresses there are canonical already). No index on
 * certificate_id: it would make every insert dearer, and the daemon never deletes a
 * certificate (the cascade of a DELETE by hand reads the table). */
static const char schema_v4[] =
        "CREATE TABLE certificate_names ("
        "  name TEXT NOT NULL,"
        "  certificate_id INTEGER NOT NULL REFERENCES certificates(id) ON DELETE CASCADE,"
        "  PRIMARY KEY (name, certificate_id)) WITHOUT ROWID;"
        "WITH RECURSIVE split(id, name, rest) AS ("
        "    SELECT id, NULL, sans || char(10) FROM certificates"
        "  UNION ALL"
        "    SELECT id, substr(rest, 1, instr(rest, char(10)) - 1), substr(rest, instr(rest, char(10)) + 1)"
        "    FROM split WHERE rest != ''),"
        "  names(id, name) AS ("
        "    SELECT id, lower(name) FROM split WHERE name IS NOT NULL AND name != ''"
        "  UNION"
        "    SELECT id, lower(common_name) FROM certificates WHERE common_name != '')"
        "INSERT OR IGNORE INTO certificate_names (name, certificate_id)"
        "  SELECT CASE WHEN length(name) > 1 AND substr(name, -1) = '.'"
        "              THEN substr(name, 1, length(name) - 1) ELSE name END, id FROM names;";

typedef struct Migration {
        int version;
        const char *sql;
} Migration;

static const Migration migrations[] = {
        { 1, schema_v1 },
        { 2, schema_v2 },
        { 3, schema_v3 },
        { 4, schema_v4 },
};

int store_migrate(Store *s, char **ret_error) {
        int current = store_schema_version(s);
        if (current < 0) {
                *ret_error = g_strdup_printf("cannot read schema version: %s", store_errmsg(s));
                return -EIO;
        }
        if (current > STORE_SCHEMA_VERSION) {
                *ret_error = g_strdup_printf("store has schema version %i, newer than this certkeeperd "
                                             "understands (%i): refusing to touch it",
                                             current, STORE_SCHEMA_VERSION);
                return -EPROTO;
        }

        for (size_t i = 0; i < ELEMENTSOF(migrations); i++) {
                const Migration *m = &migrations[i];
                if (m->version <= current)
                        continue;

                int r = store_begin(s);
                if (r < 0) {
                        *ret_error = g_strdup_printf("cannot begin migration: %s", store_errmsg(s));
                        return r;
                }
                char *err = NULL;
                int rc = sqlite3_exec(store_db(s), m->sql, NULL, NULL, &err);
                if (rc == SQLITE_OK) {
                        g_autofree char *bump = g_strdup_printf("PRAGMA user_version=%i", m->version);
                        rc = sqlite3_exec(store_db(s), bump, NULL, NULL, &err);
                }
                if (rc != SQLITE_OK) {
                        *ret_error = g_strdup_printf("migration to schema %i failed: %s", m->version,
                                                     err ? err : sqlite3_errstr(rc));
                        sqlite3_free(err);
                        store_rollback(s);
                        return store_errno(rc);
                }
                r = store_commit(s);
                if (r < 0) {
                        *ret_error = g_strdup_printf("migration to schema %i failed to commit", m->version);
                        return r;
                }
                log_info("Store migrated to schema version %i.", m->version);
        }
        return 0;
}
