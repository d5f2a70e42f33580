/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* deployments.d/NAME.conf (DESIGN.md "Deployments", configuration): read at start, on SIGHUP
 * and on ReloadDeployments(). A file is a deployment of origin "config"; a new file creates
 * one, a changed file updates it, a removed file ends it (its files stay on disk). A bad file
 * is refused with a message naming the file, the key and the value; its deployment, if it has
 * one, keeps running as it was, and the other files are read as usual. */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "deployments.h"
#include "keyfile.h"
#include "log.h"

#define DEPLOYMENT_FILE_MAX (64U * 1024U)
#define DEPLOYMENT_FILES_MAX 100000U

static int list_files(const char *dir, GPtrArray *names, char **ret_error) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
                return ret_error_set(ret_error, -errno, "%s: %s", dir, strerror(errno));
        }
        DIR *dd = fdopendir(fd);
        if (!dd)
                return -ENOMEM;
        TAKE_FD(fd);
        struct dirent *de;
        while ((de = readdir(dd)) && names->len < DEPLOYMENT_FILES_MAX)
                if (de->d_name[0] != '.' && g_str_has_suffix(de->d_name, ".conf"))
                        g_ptr_array_add(names, g_strdup(de->d_name));
        closedir(dd);
        g_ptr_array_sort(names, (GCompareFunc) g_strcmp0);
        return 0;
}

/* A refused file: logged, and listed for ReloadDeployments()'s answer. Returns 0: the others go on. */
static int refuse(GString *errors, const char *path, const char *err) {
        log_error("Deployment file refused: %s", err ? err : path);
        g_string_append_printf(errors, "%s%s", errors->len ? "\n" : "", err ? err : path);
        return 0;
}

/* "PATH: MESSAGE", unless the message names the file already. */
static char *about_file(const char *path, const char *err) {
        if (err && g_str_has_prefix(err, path))
                return g_strdup(err);
        return g_strdup_printf("%s: %s", path, strempty(err));
}

static int one_file(Deployments *d, const char *dir, const char *file, GHashTable *seen, GString *errors) {
        Store *store = deployments_get_store(d);
        g_autofree char *name = g_strndup(file, strlen(file) - strlen(".conf"));
        g_autofree char *path = g_build_filename(dir, file, NULL);
        int r;

        if (!deploy_name_valid(name)) {
                g_autofree char *shown = escape_for_message(name);
                g_autofree char *err = g_strdup_printf("%s: '%s' is not a deployment name (1 to 64 of a-z 0-9 "
                                                       "'.' '_' '-')",
                                                       path, shown);
                return refuse(errors, path, err);
        }
        g_hash_table_add(seen, g_strdup(name));

        g_autofree char *data = NULL;
        size_t len = 0;
        r = keyfile_read(path, DEPLOYMENT_FILE_MAX, &data, &len);
        if (r < 0) {
                g_autofree char *err = g_strdup_printf("%s: cannot read it: %s", path,
                                                       r == -EFBIG ? "larger than 64 KiB" : strerror(-r));
                return refuse(errors, path, err);
        }
        _cleanup_(deploy_spec_freep) DeploySpec *spec = NULL;
        g_autoptr(GVariant) variant = NULL;
        g_autofree char *err = NULL;
        r = deploy_spec_from_file(name, path, data, len, deployments_get_defaults(d), &spec, &variant, &err);
        if (r < 0)
                return refuse(errors, path, err);

        uint64_t id = 0;
        if (deployments_find_name(store, name, &id) >= 0) {
                _cleanup_(deployment_row_freep) DeploymentRow *row = NULL;
                r = deployments_get(store, id, &row);
                if (r < 0)
                        return r;
                if (!streq(row->origin, "config")) {
                        g_autofree char *e = g_strdup_printf("%s: a deployment named '%s' was created over D-Bus: "
                                                             "delete it or rename the file",
                                                             path, name);
                        return refuse(errors, path, e);
                }
                g_autofree char *uerr = NULL;
                r = deployments_update_spec(d, id, variant, &uerr);
                if (r < 0) {
                        g_autofree char *e = about_file(path, uerr);
                        return refuse(errors, path, e);
                }
                return 0;
        }
        g_autofree char *cerr = NULL;
        r = deployments_create(d, name, variant, "config", 0, 0, &id, &cerr);
        if (r < 0) {
                g_autofree char *e = about_file(path, cerr);
                return refuse(errors, path, e);
        }
        return 0;
}

int deployments_reload_config(Deployments *d, char **ret_error) {
        const char *dir = deployments_get_config(d)->deployments_directory;
        Store *store = deployments_get_store(d);
        g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_autoptr(GString) errors = g_string_new(NULL);

        int r = list_files(dir, files, ret_error);
        if (r < 0) {
                /* Unreadable: keep what there is rather than ending every deployment. */
                log_error("Cannot read %s: %s; the deployments from it are kept as they were.", dir,
                          ret_error && *ret_error ? *ret_error : strerror(-r));
                return r;
        }
        for (guint i = 0; i < files->len; i++) {
                r = one_file(d, dir, files->pdata[i], seen, errors);
                if (r < 0)
                        return r;
        }

        /* Files that are gone end their deployments. */
        _cleanup_free_ uint64_t *ids = NULL;
        size_t n = 0;
        r = store_query_ids(store, "SELECT id FROM deployments WHERE origin = 'config'", &ids, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                _cleanup_(deployment_row_freep) DeploymentRow *row = NULL;
                if (deployments_get(store, ids[i], &row) < 0 || g_hash_table_contains(seen, row->name))
                        continue;
                g_autofree char *err = NULL;
                log_info("Deployment %s: %s/%s.conf is gone, ending the deployment (its files stay).", row->name,
                         dir, row->name);
                (void) deployments_delete(d, row->id, false, true, 0, 0, &err);
        }
        if (ret_error && errors->len)
                *ret_error = g_strdup(errors->str);
        return errors->len ? -EINVAL : 0;
}
