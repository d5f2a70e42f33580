/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The configuration: defaults in code, then certkeeper.conf, its drop-ins in lexical order and
 * the environment on top. What each key accepts is config-keys.c. */

#include <dirent.h>

#include "config-keys.h"
#include "error.h"
#include "keyfile.h"
#include "log.h"

#define errorf(ret_error, ...) ret_error_set(ret_error, -EINVAL, __VA_ARGS__)

/* Everything inside a Config is allocated with GLib and freed by
 * config_free(). Strings handed to callers (ret_error, ret_provider) come from
 * malloc() so that a plain free() is right for them. */

#define CONFIG_FILE_MAX (1024U * 1024U)
#define DROPINS_MAX 1024U

#define EXTERNAL_CA_PREFIX "ExternalCA \""

static void external_ca_done(ExternalCaConfig *e) {
        g_free(e->name);
        g_strfreev(e->helper_argv);
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;

        g_free(c->path);
        g_free(c->state_directory);
        g_free(c->spool_directory);
        g_free(c->deploy_directory);
        g_free(c->deployments_directory);
        g_free(c->ca_subject);
        g_free(c->ca_digest);
        g_strfreev(c->policy.allowed_domains);
        g_strfreev(c->policy.allowed_networks);
        g_strfreev(c->policy.allowed_uri_prefixes);
        g_free(c->acme_directory_url);
        g_free(c->acme_email);
        g_free(c->acme_ca_bundle);
        g_free(c->acme_webroot_path);
        g_free(c->acme_eab_key_id);
        config_set_secret(&c->acme_eab_hmac_key, NULL);
        for (size_t i = 0; i < c->n_external_cas; i++)
                external_ca_done(&c->external_cas[i]);
        g_free(c->external_cas);
        g_strfreev(c->discovery_paths);
        g_free(c->expiry_thresholds_days);
        g_free(c->metrics_textfile_directory);
        g_free(c);
        return NULL;
}

int config_new_default(Config **ret) {
        static const unsigned thresholds[] = { 30, 14, 7, 1 };
        Config *c;

        if (!ret)
                return -EINVAL;

        c = g_new0(Config, 1);
        c->state_directory = g_strdup("/var/lib/certkeeper");
        c->spool_directory = g_strdup("/var/spool/certkeeper");
        c->max_pending_orders_per_caller = 1000;
        c->worker_threads = 0;
        c->provider_retry_sec = 5;
        c->provider_max_attempts = 8;
        c->deploy_directory = g_strdup("/etc/certkeeper/live");
        c->deployments_directory = g_strdup("/etc/certkeeper/deployments.d");
        c->deploy_retry_initial_sec = 300;

        c->ca_subject = g_strdup("CN=certkeeper Local CA");
        c->ca_key_algorithm = KEY_ALGORITHM_EC_256;
        c->ca_validity_days = 3650;
        c->leaf_validity_days = 90;
        c->ca_digest = g_strdup("sha256");
        c->crl_validity_days = 7;

        c->policy = (PolicyConfig) {
                .allow_wildcards = true,
                .min_rsa_bits = 2048,
                .max_validity_days = 0,
                .max_sans = 100,
        };
        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++)
                c->policy.allowed_key_algorithms[a] = true;

        c->acme_http_challenge_port = 80;

        c->discovery_paths = g_strsplit("/etc/ssl /etc/pki/tls /etc/letsencrypt/live", " ", -1);
        c->include_ca_certificates = false;
        c->rescan_interval_sec = 3600;
        c->metrics_interval_sec = 60;

        c->expiry_thresholds_days = g_memdup2(thresholds, sizeof thresholds);
        c->n_expiry_thresholds = ELEMENTSOF(thresholds);

        c->audit_max_records = 100000;
        c->audit_max_access_records = 100000;
        c->audit_max_age_days = 400;
        c->audit_coalesce_interval_sec = 3600;

        *ret = c;
        return 0;
}

const ExternalCaConfig *config_find_external_ca(const Config *c, const char *name) {
        if (!c || !name)
                return NULL;
        for (size_t i = 0; i < c->n_external_cas; i++)
                if (streq(c->external_cas[i].name, name))
                        return &c->external_cas[i];
        return NULL;
}

static void wipe_and_free(char *data, size_t len) {
        if (data) {
                OPENSSL_cleanse(data, len);
                g_free(data);
        }
}

typedef struct LoadState {
        GPtrArray *external_ca_files; /* parallel to Config.external_cas: the last file naming it */
        const char *eab_file;         /* the last file setting an EAB key */
} LoadState;

static ExternalCaConfig *config_add_external_ca(Config *c, LoadState *st, const char *name, const char *file) {
        for (size_t i = 0; i < c->n_external_cas; i++)
                if (streq(c->external_cas[i].name, name)) {
                        g_ptr_array_index(st->external_ca_files, i) = (gpointer) file;
                        return &c->external_cas[i];
                }

        c->external_cas = g_renew(ExternalCaConfig, c->external_cas, c->n_external_cas + 1);
        c->external_cas[c->n_external_cas] = (ExternalCaConfig) {
                .name = g_strdup(name),
                .timeout_sec = 60,
        };
        g_ptr_array_add(st->external_ca_files, (gpointer) file);
        return &c->external_cas[c->n_external_cas++];
}

static int config_apply_group(Config *c, LoadState *st, const char *file, GKeyFile *kf, const char *group,
                              char **ret_error) {
        g_auto(GStrv) keys = NULL;
        const char *section = NULL;
        void *base = c;

        if (g_str_has_prefix(group, EXTERNAL_CA_PREFIX) && g_str_has_suffix(group, "\"") &&
            strlen(group) > STRLEN(EXTERNAL_CA_PREFIX)) {
                g_autofree char *name = g_strndup(group + STRLEN(EXTERNAL_CA_PREFIX),
                                                  strlen(group) - STRLEN(EXTERNAL_CA_PREFIX) - 1);

                if (!config_external_ca_name_valid(name)) {
                        g_autofree char *shown = escape_for_message(group);
                        return errorf(ret_error,
                                      "%s: [%s]: expected a name of at most %u characters from [A-Za-z0-9_.-], "
                                      "other than \"local\" and \"acme\"",
                                      file, shown, EXTERNAL_CA_NAME_MAX);
                }
                section = "ExternalCA";
                base = config_add_external_ca(c, st, name, file);
        } else {
                section = config_section_find(group);
                if (!section) {
                        g_autofree char *shown = escape_for_message(group);
                        return errorf(ret_error,
                                      "%s: [%s]: unknown section, expected one of [Daemon] [LocalCA] [Policy] "
                                      "[ACME] [ExternalCA \"NAME\"] [Discovery] [Alerts] [Metrics]",
                                      file, shown);
                }
        }

        keys = g_key_file_get_keys(kf, group, NULL, NULL);
        for (char **key = keys; key && *key; key++) {
                const ConfigKey *k = config_key_find(section, *key);
                g_autofree char *value = NULL;
                ParseContext ctx;
                int r;

                if (!k) {
                        g_autofree char *shown_group = escape_for_message(group), *shown_key = escape_for_message(*key),
                                        *known = config_section_keys(section);
                        return errorf(ret_error, "%s: [%s] %s: unknown key, expected one of %s", file, shown_group,
                                      shown_key, known);
                }

                value = g_key_file_get_value(kf, group, *key, NULL);
                if (!value)
                        return -ENOMEM;
                ctx = (ParseContext) {
                        .file = file,
                        .section = group,
                        .key = k->name,
                        .value = g_strstrip(value),
                        .secret = k->secret,
                        .ret_error = ret_error,
                };
                r = k->parse(k, &ctx, base);
                if (k->secret)
                        OPENSSL_cleanse(value, strlen(value));
                if (r < 0)
                        return r;
                if (streq(k->name, "EABKeyID") || streq(k->name, "EABHMACKey"))
                        st->eab_file = file;
        }
        return 0;
}

static int config_apply_file(Config *c, LoadState *st, const char *file, bool missing_ok, char **ret_error) {
        g_autoptr(GKeyFile) kf = NULL;
        g_auto(GStrv) groups = NULL;
        char *data = NULL;
        size_t len = 0;
        int r;

        r = keyfile_read(file, CONFIG_FILE_MAX, &data, &len);
        if (r == -ENOENT && missing_ok)
                return 0;
        if (r == -EFBIG)
                return errorf(ret_error, "%s: larger than %u bytes", file, CONFIG_FILE_MAX);
        if (r == -EBADFD)
                return errorf(ret_error, "%s: not a regular file", file);
        if (r < 0)
                return ret_error_set(ret_error, r, "%s: cannot read: %m", file);

        r = keyfile_parse(file, data, len, &kf, ret_error);
        wipe_and_free(data, len); /* it may hold the EAB key */
        if (r < 0)
                return r;

        groups = g_key_file_get_groups(kf, NULL);
        for (char **g = groups; *g; g++) {
                r = config_apply_group(c, st, file, kf, *g, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int cmp_strings(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The *.conf files in dir, sorted with strcmp(); a missing dir has none. */
static int list_dropins(const char *dir, char ***ret, char **ret_error) {
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        DIR *d;
        struct dirent *de;

        d = opendir(dir); /* glibc opens it O_CLOEXEC */
        if (!d) {
                if (errno == ENOENT || errno == ENOTDIR) {
                        *ret = g_new0(char *, 1);
                        return 0;
                }
                return ret_error_set(ret_error, -errno, "%s: cannot open: %m", dir);
        }

        errno = 0;
        while ((de = readdir(d))) {
                /* Hidden files are editor and package manager leftovers. */
                if (de->d_name[0] == '.' || !g_str_has_suffix(de->d_name, ".conf"))
                        continue;
                if (names->len >= DROPINS_MAX) {
                        closedir(d);
                        return errorf(ret_error, "%s: more than %u drop-ins", dir, DROPINS_MAX);
                }
                g_ptr_array_add(names, g_build_filename(dir, de->d_name, NULL));
        }
        closedir(d);

        qsort(names->pdata, names->len, sizeof(char *), cmp_strings);
        g_ptr_array_set_free_func(names, NULL);
        g_ptr_array_add(names, NULL);
        *ret = (char **) g_ptr_array_free(TAKE_PTR(names), false);
        return 0;
}

static int config_check(Config *c, LoadState *st, char **ret_error) {
        for (size_t i = 0; i < c->n_external_cas; i++)
                if (!c->external_cas[i].helper_argv)
                        return errorf(ret_error,
                                      "%s: [ExternalCA \"%s\"]: Helper= is not set, expected the helper program "
                                      "and its arguments",
                                      (const char *) g_ptr_array_index(st->external_ca_files, i),
                                      c->external_cas[i].name);

        if (!c->acme_eab_key_id != !c->acme_eab_hmac_key)
                return errorf(ret_error, "%s: [ACME] %s= is set without %s=, expected both or neither", st->eab_file,
                              c->acme_eab_key_id ? "EABKeyID" : "EABHMACKey",
                              c->acme_eab_key_id ? "EABHMACKey" : "EABKeyID");

        return 0;
}

/* systemd's StateDirectory= hands us the path; with several, the first is ours. */
static int config_apply_environment(Config *c, char **ret_error) {
        const char *e = getenv("STATE_DIRECTORY");
        g_autofree char *first = NULL;

        if (isempty(e))
                return 0;
        first = g_strndup(e, strcspn(e, ":"));
        if (first[0] != '/')
                return errorf(ret_error, "$STATE_DIRECTORY=%s: expected an absolute path", e);
        g_free(c->state_directory);
        c->state_directory = TAKE_PTR(first);
        return 0;
}

int config_load(const char *path, Config **ret, char **ret_error) {
        _cleanup_(config_freep) Config *c = NULL;
        g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) external_ca_files = g_ptr_array_new();
        g_auto(GStrv) dropins = NULL;
        g_autofree char *dropin_dir = NULL;
        LoadState st = { .external_ca_files = external_ca_files };
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (isempty(path) || !ret)
                return -EINVAL;

        r = config_new_default(&c);
        if (r < 0)
                return r;
        c->path = g_strdup(path);
        {
                g_autofree char *dir = g_path_get_dirname(path);
                g_free(c->deployments_directory);
                c->deployments_directory = g_build_filename(dir, "deployments.d", NULL);
        }

        r = config_apply_file(c, &st, path, /* missing_ok= */ true, ret_error);
        if (r < 0)
                return r;

        dropin_dir = g_strconcat(path, ".d", NULL);
        r = list_dropins(dropin_dir, &dropins, ret_error);
        if (r < 0)
                return r;
        for (char **f = dropins; *f; f++) {
                /* LoadState points at these names; keep them alive. */
                g_ptr_array_add(files, g_strdup(*f));
                r = config_apply_file(c, &st, g_ptr_array_index(files, files->len - 1), false, ret_error);
                if (r < 0)
                        return r;
        }

        r = config_check(c, &st, ret_error);
        if (r < 0)
                return r;

        r = config_apply_environment(c, ret_error);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}
