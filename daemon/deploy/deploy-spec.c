/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deploy-spec.h"
#include "keyfile.h"
#include "x509.h"

DeploySpec *deploy_spec_free(DeploySpec *s) {
        if (!s)
                return NULL;
        g_free(s->common_name);
        g_strfreev(s->subject_alt_names);
        g_free(s->provider);
        g_free(s->key_algorithm);
        g_free(s->directory);
        g_free(s->owner);
        g_free(s->group);
        g_strfreev(s->reload_units);
        g_strfreev(s->exec);
        g_free(s);
        return NULL;
}

bool deploy_name_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;
        if (n == 0 || n > DEPLOY_NAME_MAX || name[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!g_ascii_islower(name[i]) && !g_ascii_isdigit(name[i]) && !strchr("._-", name[i]))
                        return false;
        return true;
}

bool deploy_unit_name_valid(const char *unit) {
        static const char *const suffixes[] = { ".service", ".socket", ".target", ".path", ".timer",
                                                ".mount", ".scope" };
        size_t n = unit ? strlen(unit) : 0;
        if (n == 0 || n > 255 || unit[0] == '.' || unit[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!g_ascii_isalnum(unit[i]) && !strchr(":-_.\\@", unit[i]))
                        return false;
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++)
                if (g_str_has_suffix(unit, suffixes[i]) && n > strlen(suffixes[i]))
                        return true;
        return false;
}

static int bad(char **ret_error, const char *key, const char *value, const char *why) {
        g_autofree char *shown = escape_for_message(value);
        return ret_error_set(ret_error, -EINVAL, "%s='%s': %s", key, shown, why);
}

static int check_path(const char *key, const char *path, char **ret_error) {
        if (!g_path_is_absolute(path))
                return bad(ret_error, key, path, "expected an absolute path");
        if (strlen(path) > 1024)
                return bad(ret_error, key, path, "longer than 1024 characters");
        for (const char *p = path; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return bad(ret_error, key, path, "control characters are not allowed in a path");
        g_auto(GStrv) parts = g_strsplit(path, "/", -1);
        for (char **p = parts; *p; p++)
                if (streq(*p, "..") || streq(*p, "."))
                        return bad(ret_error, key, path, "'.' and '..' are not allowed in the path");
        if (!g_utf8_validate(path, -1, NULL))
                return bad(ret_error, key, path, "not valid UTF-8");
        return 0;
}

static int lookup_owner(DeploySpec *s, char **ret_error) {
        long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
        size_t bufsize = sz > 0 ? (size_t) sz : 16384;
        g_autofree char *buf = g_malloc(bufsize);
        struct passwd pw, *pwr = NULL;
        int e = getpwnam_r(s->owner, &pw, buf, bufsize, &pwr);
        if (e != 0 || !pwr)
                return bad(ret_error, "owner", s->owner, "no such user");
        s->uid = pw.pw_uid;
        gid_t primary = pw.pw_gid;

        if (isempty(s->group)) {
                s->gid = primary;
                struct group gr, *grr = NULL;
                long gsz = sysconf(_SC_GETGR_R_SIZE_MAX);
                size_t gbufsize = gsz > 0 ? (size_t) gsz : 16384;
                g_autofree char *gbuf = g_malloc(gbufsize);
                g_free(s->group);
                if (getgrgid_r(primary, &gr, gbuf, gbufsize, &grr) == 0 && grr)
                        s->group = g_strdup(gr.gr_name);
                else
                        s->group = g_strdup_printf("%u", (unsigned) primary);
                return 0;
        }
        struct group gr, *grr = NULL;
        long gsz = sysconf(_SC_GETGR_R_SIZE_MAX);
        size_t gbufsize = gsz > 0 ? (size_t) gsz : 16384;
        g_autofree char *gbuf = g_malloc(gbufsize);
        e = getgrnam_r(s->group, &gr, gbuf, gbufsize, &grr);
        if (e != 0 || !grr)
                return bad(ret_error, "group", s->group, "no such group");
        s->gid = gr.gr_gid;
        return 0;
}

static int check_strv(const char *key, char **v, size_t max, char **ret_error) {
        size_t n = g_strv_length(v);
        if (n > max)
                return ret_error_set(ret_error, -EINVAL, "%s: %zu values given, at most %zu are accepted", key, n,
                                     max);
        for (size_t i = 0; i < n; i++)
                if (!g_utf8_validate(v[i], -1, NULL) || strlen(v[i]) > 4096)
                        return bad(ret_error, key, v[i], "not valid UTF-8 or longer than 4096 bytes");
        return 0;
}

typedef struct SpecKey {
        const char *key;
        const char *type;
} SpecKey;

static const SpecKey spec_keys[] = {
        { "common_name", "s" },       { "subject_alt_names", "as" }, { "provider", "s" },
        { "key_algorithm", "s" },     { "validity_days", "u" },      { "directory", "s" },
        { "owner", "s" },             { "group", "s" },              { "key_mode", "u" },
        { "renew_before_days", "u" }, { "rotate_key", "b" },         { "reload_units", "as" },
        { "exec", "as" },             { "exec_timeout_sec", "u" },
};

static char *known_keys(void) {
        GString *s = g_string_new(NULL);
        for (size_t i = 0; i < ELEMENTSOF(spec_keys); i++)
                g_string_append_printf(s, "%s%s", i ? " " : "", spec_keys[i].key);
        return g_string_free(s, FALSE);
}

int deploy_spec_from_variant(const char *name, GVariant *spec, const DeploySpecDefaults *d, DeploySpec **ret,
                             char **ret_error) {
        g_return_val_if_fail(g_variant_is_of_type(spec, G_VARIANT_TYPE("a{sv}")), -EINVAL);
        if (!deploy_name_valid(name))
                return bad(ret_error, "name", strempty(name),
                           "expected 1 to 64 of a-z 0-9 '.' '_' '-', not starting with '.'");

        /* Every key known and of its type, each at most once. */
        GVariantIter it;
        const char *key;
        GVariant *value;
        g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
        g_variant_iter_init(&it, spec);
        while (g_variant_iter_loop(&it, "{&sv}", &key, &value)) {
                const SpecKey *k = NULL;
                for (size_t i = 0; i < ELEMENTSOF(spec_keys); i++)
                        if (streq(spec_keys[i].key, key))
                                k = &spec_keys[i];
                if (!k) {
                        g_autofree char *keys = known_keys();
                        g_autofree char *shown = escape_for_message(key);
                        g_variant_unref(value);
                        return ret_error_set(ret_error, -EINVAL, "unknown key '%s': known keys are %s", shown,
                                             keys);
                }
                if (!g_variant_is_of_type(value, G_VARIANT_TYPE(k->type))) {
                        int r = ret_error_set(ret_error, -EINVAL, "%s: expected type '%s', got '%s'", key,
                                              k->type, g_variant_get_type_string(value));
                        g_variant_unref(value);
                        return r;
                }
                if (!g_hash_table_add(seen, (gpointer) k->key)) {
                        g_variant_unref(value);
                        return ret_error_set(ret_error, -EINVAL, "%s given twice", key);
                }
        }

        _cleanup_(deploy_spec_freep) DeploySpec *s = g_new0(DeploySpec, 1);
        s->key_mode = 0600;
        s->rotate_key = true;
        s->exec_timeout_sec = DEPLOY_EXEC_TIMEOUT_DEFAULT;
        (void) g_variant_lookup(spec, "common_name", "s", &s->common_name);
        (void) g_variant_lookup(spec, "subject_alt_names", "^as", &s->subject_alt_names);
        (void) g_variant_lookup(spec, "provider", "s", &s->provider);
        (void) g_variant_lookup(spec, "key_algorithm", "s", &s->key_algorithm);
        (void) g_variant_lookup(spec, "validity_days", "u", &s->validity_days);
        (void) g_variant_lookup(spec, "directory", "s", &s->directory);
        (void) g_variant_lookup(spec, "owner", "s", &s->owner);
        (void) g_variant_lookup(spec, "group", "s", &s->group);
        (void) g_variant_lookup(spec, "key_mode", "u", &s->key_mode);
        (void) g_variant_lookup(spec, "renew_before_days", "u", &s->renew_before_days);
        gboolean rotate = TRUE;
        if (g_variant_lookup(spec, "rotate_key", "b", &rotate))
                s->rotate_key = rotate;
        (void) g_variant_lookup(spec, "reload_units", "^as", &s->reload_units);
        (void) g_variant_lookup(spec, "exec", "^as", &s->exec);
        (void) g_variant_lookup(spec, "exec_timeout_sec", "u", &s->exec_timeout_sec);
        if (!s->subject_alt_names)
                s->subject_alt_names = g_new0(char *, 1);
        if (!s->reload_units)
                s->reload_units = g_new0(char *, 1);
        if (!s->exec)
                s->exec = g_new0(char *, 1);
        if (!s->provider)
                s->provider = g_strdup("");
        if (!s->key_algorithm)
                s->key_algorithm = g_strdup("");
        if (!s->owner)
                s->owner = g_strdup("root");
        if (!s->group)
                s->group = g_strdup("");

        int r;
        if (isempty(s->common_name))
                return ret_error_set(ret_error, -EINVAL, "common_name is required");
        if (strlen(s->common_name) > 253 || !g_utf8_validate(s->common_name, -1, NULL))
                return bad(ret_error, "common_name", s->common_name, "not a DNS name");
        r = check_strv("subject_alt_names", s->subject_alt_names, SANS_MAX, ret_error);
        if (r < 0)
                return r;
        if (!isempty(s->provider) && (strlen(s->provider) > 64 || !g_utf8_validate(s->provider, -1, NULL)))
                return bad(ret_error, "provider", s->provider, "not a provider name");
        if (!isempty(s->key_algorithm) && key_algorithm_from_string(s->key_algorithm) == KEY_ALGORITHM_INVALID)
                return bad(ret_error, "key_algorithm", s->key_algorithm,
                           "expected one of rsa-2048 rsa-3072 rsa-4096 ec-256 ec-384 ed25519");
        if (s->validity_days > 36500)
                return ret_error_set(ret_error, -EINVAL, "validity_days=%u: expected 1..36500", s->validity_days);

        if (!s->directory)
                s->directory = g_build_filename(d->deploy_directory, name, NULL);
        r = check_path("directory", s->directory, ret_error);
        if (r < 0)
                return r;
        {
                char *canon = g_canonicalize_filename(s->directory, "/");
                g_free(s->directory);
                s->directory = canon;
        }
        if (streq(s->directory, "/"))
                return bad(ret_error, "directory", s->directory, "the root directory cannot be a deployment's");

        if (strlen(s->owner) > 64 || strlen(s->group) > 64)
                return ret_error_set(ret_error, -EINVAL, "owner and group: at most 64 characters");
        r = lookup_owner(s, ret_error);
        if (r < 0)
                return r;

        if (s->key_mode > 0777 || (s->key_mode & 0111) || (s->key_mode & 0007) || !(s->key_mode & 0400)) {
                g_autofree char *m = g_strdup_printf("%04o", s->key_mode);
                return bad(ret_error, "key_mode", m,
                           "the key must be readable by its owner and never by others, and not executable "
                           "(e.g. 0600 or 0640)");
        }

        unsigned lifetime = s->validity_days ? s->validity_days : d->default_validity_days;
        if (s->renew_before_days && lifetime && s->renew_before_days >= lifetime)
                return ret_error_set(ret_error, -EINVAL,
                                     "renew_before_days=%u is not below the certificate's lifetime of %u days",
                                     s->renew_before_days, lifetime);
        if (s->renew_before_days > 36500)
                return ret_error_set(ret_error, -EINVAL, "renew_before_days=%u: expected 0..36499",
                                     s->renew_before_days);

        r = check_strv("reload_units", s->reload_units, DEPLOY_UNITS_MAX, ret_error);
        if (r < 0)
                return r;
        for (char **u = s->reload_units; *u; u++)
                if (!deploy_unit_name_valid(*u))
                        return bad(ret_error, "reload_units", *u,
                                   "not a systemd unit name (e.g. nginx.service)");

        r = check_strv("exec", s->exec, DEPLOY_EXEC_ARGS_MAX, ret_error);
        if (r < 0)
                return r;
        if (s->exec[0]) {
                r = check_path("exec", s->exec[0], ret_error);
                if (r < 0)
                        return r;
        }
        if (s->exec_timeout_sec == 0 || s->exec_timeout_sec > 3600)
                return ret_error_set(ret_error, -EINVAL, "exec_timeout_sec=%u: expected 1..3600",
                                     s->exec_timeout_sec);

        *ret = TAKE_PTR(s);
        return 0;
}

GVariant *deploy_spec_to_variant(const DeploySpec *s) {
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "common_name", g_variant_new_string(s->common_name));
        g_variant_builder_add(&b, "{sv}", "subject_alt_names",
                              g_variant_new_strv((const char *const *) s->subject_alt_names, -1));
        g_variant_builder_add(&b, "{sv}", "provider", g_variant_new_string(s->provider));
        g_variant_builder_add(&b, "{sv}", "key_algorithm", g_variant_new_string(s->key_algorithm));
        g_variant_builder_add(&b, "{sv}", "validity_days", g_variant_new_uint32(s->validity_days));
        g_variant_builder_add(&b, "{sv}", "directory", g_variant_new_string(s->directory));
        g_variant_builder_add(&b, "{sv}", "owner", g_variant_new_string(s->owner));
        g_variant_builder_add(&b, "{sv}", "group", g_variant_new_string(s->group));
        g_variant_builder_add(&b, "{sv}", "key_mode", g_variant_new_uint32(s->key_mode));
        g_variant_builder_add(&b, "{sv}", "renew_before_days", g_variant_new_uint32(s->renew_before_days));
        g_variant_builder_add(&b, "{sv}", "rotate_key", g_variant_new_boolean(s->rotate_key));
        g_variant_builder_add(&b, "{sv}", "reload_units",
                              g_variant_new_strv((const char *const *) s->reload_units, -1));
        g_variant_builder_add(&b, "{sv}", "exec", g_variant_new_strv((const char *const *) s->exec, -1));
        g_variant_builder_add(&b, "{sv}", "exec_timeout_sec", g_variant_new_uint32(s->exec_timeout_sec));
        return g_variant_ref_sink(g_variant_builder_end(&b));
}

/* ---- deployments.d/NAME.conf ------------------------------------------------------------------ */

typedef struct FileKey {
        const char *file_key;
        const char *key;
        char type;                        /* 's' string, 'l' list (words), 'x' argv (shell quoting),
                                           * 'u' number, 'o' octal mode, 'b' boolean */
} FileKey;

static const FileKey file_keys[] = {
        { "CommonName", "common_name", 's' },
        { "SubjectAlternativeNames", "subject_alt_names", 'l' },
        { "Provider", "provider", 's' },
        { "KeyAlgorithm", "key_algorithm", 's' },
        { "ValidityDays", "validity_days", 'u' },
        { "Directory", "directory", 's' },
        { "Owner", "owner", 's' },
        { "Group", "group", 's' },
        { "KeyMode", "key_mode", 'o' },
        { "RenewBeforeDays", "renew_before_days", 'u' },
        { "RotateKey", "rotate_key", 'b' },
        { "ReloadUnits", "reload_units", 'l' },
        { "Exec", "exec", 'x' },
        { "ExecTimeoutSec", "exec_timeout_sec", 'u' },
};

static int file_value(const char *origin, const FileKey *k, const char *value, GVariant **ret, char **ret_error) {
        g_autofree char *shown = escape_for_message(value);
        switch (k->type) {
        case 's':
                *ret = g_variant_new_string(value);
                return 0;
        case 'l': {
                g_auto(GStrv) words = g_strsplit_set(value, " \t", -1);
                g_autoptr(GPtrArray) list = g_ptr_array_new();
                for (char **w = words; *w; w++)
                        if (**w)
                                g_ptr_array_add(list, *w);
                g_ptr_array_add(list, NULL);
                *ret = g_variant_new_strv((const char *const *) list->pdata, -1);
                return 0;
        }
        case 'x': {
                g_auto(GStrv) argv = NULL;
                g_autoptr(GError) e = NULL;
                if (isempty(value)) {
                        *ret = g_variant_new_strv(NULL, 0);
                        return 0;
                }
                if (!g_shell_parse_argv(value, NULL, &argv, &e))
                        return ret_error_set(ret_error, -EINVAL,
                                             "%s: [Deployment] %s=%s: expected a program and its arguments, "
                                             "quoted like in a shell (%s)",
                                             origin, k->file_key, shown, e->message);
                *ret = g_variant_new_strv((const char *const *) argv, -1);
                return 0;
        }
        case 'u':
        case 'o': {
                char *end = NULL;
                errno = 0;
                guint64 v = g_ascii_strtoull(value, &end, k->type == 'o' ? 8 : 10);
                if (isempty(value) || errno != 0 || !end || *end || v > UINT32_MAX || value[0] == '-')
                        return ret_error_set(ret_error, -EINVAL, "%s: [Deployment] %s=%s: expected %s", origin,
                                             k->file_key, shown,
                                             k->type == 'o' ? "an octal mode such as 0640" : "a number");
                *ret = g_variant_new_uint32((uint32_t) v);
                return 0;
        }
        case 'b':
                if (streq(value, "yes") || streq(value, "true") || streq(value, "1") || streq(value, "on"))
                        *ret = g_variant_new_boolean(TRUE);
                else if (streq(value, "no") || streq(value, "false") || streq(value, "0") || streq(value, "off"))
                        *ret = g_variant_new_boolean(FALSE);
                else
                        return ret_error_set(ret_error, -EINVAL, "%s: [Deployment] %s=%s: expected yes or no",
                                             origin, k->file_key, shown);
                return 0;
        }
        return -EINVAL;
}

/* "common_name" → "CommonName", for errors about a file. */
static const char *file_key_of(const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(file_keys); i++)
                if (streq(file_keys[i].key, key))
                        return file_keys[i].file_key;
        return NULL;
}

int deploy_spec_from_file(const char *name, const char *origin, const char *data, size_t len,
                          const DeploySpecDefaults *d, DeploySpec **ret, GVariant **ret_variant, char **ret_error) {
        g_autoptr(GKeyFile) kf = NULL;
        int r = keyfile_parse(origin, data, len, &kf, ret_error);
        if (r < 0)
                return r;

        g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
        for (char **gname = groups; *gname; gname++)
                if (!streq(*gname, "Deployment")) {
                        g_autofree char *shown = escape_for_message(*gname);
                        return ret_error_set(ret_error, -EINVAL,
                                             "%s: unknown section [%s]: a deployment file has one [Deployment] section",
                                             origin, shown);
                }
        if (!g_key_file_has_group(kf, "Deployment"))
                return ret_error_set(ret_error, -EINVAL, "%s: no [Deployment] section", origin);

        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_auto(GStrv) keys = g_key_file_get_keys(kf, "Deployment", NULL, NULL);
        for (char **key = keys; key && *key; key++) {
                const FileKey *k = NULL;
                for (size_t i = 0; i < ELEMENTSOF(file_keys); i++)
                        if (streq(file_keys[i].file_key, *key))
                                k = &file_keys[i];
                if (!k) {
                        g_autofree char *shown = escape_for_message(*key);
                        GString *known = g_string_new(NULL);
                        for (size_t i = 0; i < ELEMENTSOF(file_keys); i++)
                                g_string_append_printf(known, "%s%s=", i ? " " : "", file_keys[i].file_key);
                        r = ret_error_set(ret_error, -EINVAL, "%s: [Deployment] unknown key %s=: known keys are %s",
                                          origin, shown, known->str);
                        g_string_free(known, TRUE);
                        g_variant_builder_clear(&b);
                        return r;
                }
                g_autofree char *value = g_key_file_get_value(kf, "Deployment", *key, NULL);
                GVariant *v = NULL;
                r = file_value(origin, k, value ? g_strstrip(value) : "", &v, ret_error);
                if (r < 0) {
                        g_variant_builder_clear(&b);
                        return r;
                }
                g_variant_builder_add(&b, "{sv}", k->key, v);
        }
        g_autoptr(GVariant) spec = g_variant_ref_sink(g_variant_builder_end(&b));

        g_autofree char *err = NULL;
        r = deploy_spec_from_variant(name, spec, d, ret, &err);
        if (r < 0) {
                /* "key_mode='0644': …" → "FILE: [Deployment] KeyMode='0644': …" */
                const char *msg = err ? err : "invalid";
                size_t klen = strcspn(msg, "=: ");
                g_autofree char *key = g_strndup(msg, klen);
                const char *fk = file_key_of(key);
                if (fk)
                        return ret_error_set(ret_error, r, "%s: [Deployment] %s%s", origin, fk, msg + klen);
                return ret_error_set(ret_error, r, "%s: %s", origin, msg);
        }
        if (ret_variant)
                *ret_variant = g_steal_pointer(&spec);
        return 0;
}
