/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>

#include <glib.h>

#include "bus-errors.h"
#include "bus-manager.h"
#include "log.h"

#define OPTIONS_MAX 64U
#define OPTION_STRV_MAX 1000U

char *bus_object_path(const char *prefix, uint64_t id) {
        return g_strdup_printf("%s/%" PRIu64, prefix, id);
}

const char *bus_object_path_buf(char *buf, size_t size, const char *prefix, uint64_t id) {
        char digits[20]; /* UINT64_MAX has 20 */
        size_t n = 0, l = strlen(prefix);

        do {
                digits[n++] = (char) ('0' + id % 10);
                id /= 10;
        } while (id > 0);
        g_assert(l + 1 + n < size);
        memcpy(buf, prefix, l);
        buf[l++] = '/';
        while (n > 0)
                buf[l++] = digits[--n];
        buf[l] = 0;
        return buf;
}

int bus_append_string(sd_bus_message *m, const char *s) {
        s = strempty(s);
        size_t n = strlen(s);
        unsigned char bits = 0;
        int r;

        for (size_t i = 0; i < n; i++)
                bits |= (unsigned char) s[i];
        if (!(bits & 0x80)) {
                /* ASCII without NUL is valid UTF-8: skip sd-bus's per-character decoding. */
                char *p;
                r = sd_bus_message_append_string_space(m, n, &p);
                if (r < 0)
                        return r;
                memcpy(p, s, n);
                return 0;
        }
        r = sd_bus_message_append_basic(m, 's', s);
        if (r != -EINVAL)
                return r;
        /* Not valid UTF-8 (a store edited by hand, a name from an old version): one row shown
         * escaped rather than a failed list, and never an invalid message, which the bus would
         * answer by dropping our connection. */
        g_autofree char *escaped = g_strescape(s, NULL);
        return sd_bus_message_append_basic(m, 's', escaped);
}

int bus_append_strv(sd_bus_message *m, char *const *l) {
        int r = sd_bus_message_open_container(m, 'a', "s");
        for (size_t i = 0; r >= 0 && l && l[i]; i++)
                r = bus_append_string(m, l[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

int bus_path_id(const char *path, const char *prefix, uint64_t *ret) {
        size_t n = strlen(prefix);
        if (strncmp(path, prefix, n) != 0 || path[n] != '/')
                return -ENOENT;
        const char *s = path + n + 1;
        if (!*s || *s == '0' || strspn(s, "0123456789") != strlen(s) || strlen(s) > 19)
                return -ENOENT;
        uint64_t v = g_ascii_strtoull(s, NULL, 10);
        if (v == 0 || v > INT64_MAX)
                return -ENOENT;
        *ret = v;
        return 0;
}

char **bus_paths_from_ids(const char *prefix, const uint64_t *ids, size_t n) {
        char **l = g_new0(char *, n + 1);
        for (size_t i = 0; i < n; i++)
                l[i] = bus_object_path(prefix, ids[i]);
        return l;
}

/* What the fallback and the enumerator of one kind are given: one each, freed with its slot. */
typedef struct ObjectKindSlot {
        BusContext *ctx;
        const BusObjectKind *kind;
} ObjectKindSlot;

static int object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                       sd_bus_error *error) {
        ObjectKindSlot *k = userdata;
        uint64_t id;

        if (bus_path_id(path, k->kind->prefix, &id) < 0)
                return 0;
        int r = k->kind->load(k->ctx, id, found);
        /* No such certificate (order, deployment) is NotFound, whether asked by ID here or by
         * fingerprint or name (GetCertificateByFingerprint, GetDeploymentByName): one error for one
         * answer. sd-bus sends the error set here; UnknownObject is left for paths without an ID. */
        if (r == -ENOENT)
                return bus_error_setf(error, CK_ERROR_NOT_FOUND, "no %s with ID %" PRIu64, k->kind->what, id);
        return r < 0 ? r : 1;
}

static int object_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***ret_nodes,
                            sd_bus_error *error) {
        ObjectKindSlot *k = userdata;
        _cleanup_free_ uint64_t *ids = NULL;
        size_t n = 0;
        int r = k->kind->list_ids(k->ctx->store, &ids, &n);
        if (r < 0)
                return r;
        *ret_nodes = bus_paths_from_ids(k->kind->prefix, ids, n);
        return 0;
}

/* Owned by the bus from here on, as a NULL slot would be (floating: the bus takes a reference,
 * ours is dropped); the userdata goes with the slot. */
static void float_slot(sd_bus_slot *slot) {
        (void) sd_bus_slot_set_destroy_callback(slot, g_free);
        (void) sd_bus_slot_set_floating(slot, 1);
        sd_bus_slot_unref(slot);
}

static ObjectKindSlot *object_kind_slot_new(BusContext *c, const BusObjectKind *kind) {
        ObjectKindSlot *k = g_new(ObjectKindSlot, 1);
        *k = (ObjectKindSlot) { .ctx = c, .kind = kind };
        return k;
}

int bus_add_object_kind(BusContext *c, const BusObjectKind *kind) {
        sd_bus_slot *slot = NULL;
        ObjectKindSlot *k = object_kind_slot_new(c, kind);
        int r = sd_bus_add_fallback_vtable(c->bus, &slot, kind->prefix, kind->interface, kind->vtable, object_find,
                                           k);
        if (r < 0) {
                g_free(k);
                return log_error_errno(r, "Cannot register the %s interface (%s): %m", kind->what,
                                       kind->interface);
        }
        float_slot(slot);

        k = object_kind_slot_new(c, kind);
        r = sd_bus_add_node_enumerator(c->bus, &slot, kind->prefix, object_enumerate, k);
        if (r < 0) {
                g_free(k);
                return log_error_errno(r, "Cannot register the %s enumerator: %m", kind->what);
        }
        float_slot(slot);
        return 0;
}

static int read_strv(sd_bus_message *m, char ***ret, sd_bus_error *error, const char *key) {
        g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func(g_free);
        int r = sd_bus_message_enter_container(m, 'a', "s");
        if (r < 0)
                return r;
        const char *s;
        while ((r = sd_bus_message_read_basic(m, 's', &s)) > 0) {
                if (a->len >= OPTION_STRV_MAX)
                        return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT,
                                              "option '%s' has more than %u entries", key, OPTION_STRV_MAX);
                g_ptr_array_add(a, g_strdup(s));
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        g_ptr_array_add(a, NULL);
        *ret = (char **) g_ptr_array_steal(a, NULL);
        return 0;
}

int bus_read_options(sd_bus_message *m, const BusOption *opts, size_t n, GVariantBuilder *record,
                     sd_bus_error *error) {
        int r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;

        unsigned count = 0;
        /* Every option once: a key given twice would be applied once and recorded twice. */
        g_autofree bool *given = g_new0(bool, n + 1);
        for (;;) {
                r = sd_bus_message_enter_container(m, 'e', "sv");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (++count > OPTIONS_MAX)
                        return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT, "more than %u options given",
                                              OPTIONS_MAX);

                const char *key;
                r = sd_bus_message_read_basic(m, 's', &key);
                if (r < 0)
                        return r;

                const BusOption *o = NULL;
                size_t idx = 0;
                for (size_t i = 0; i < n; i++)
                        if (streq(opts[i].key, key)) {
                                o = &opts[i];
                                idx = i;
                        }
                if (!o) {
                        g_autoptr(GString) known = g_string_new(NULL);
                        for (size_t i = 0; i < n; i++)
                                g_string_append_printf(known, "%s%s", i ? ", " : "", opts[i].key);
                        return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT,
                                              "unknown option '%.64s': expected one of %s", key,
                                              n ? known->str : "(none)");
                }
                if (given[idx] || (o->seen && *o->seen))
                        return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT, "option '%.64s' given twice", key);
                given[idx] = true;

                const char *contents = NULL;
                char type;
                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        return r;
                if (!contents || !streq(contents, o->signature))
                        return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT,
                                              "option '%s' must be of type '%s', got '%s'", key, o->signature,
                                              strempty(contents));
                r = sd_bus_message_enter_container(m, 'v', o->signature);
                if (r < 0)
                        return r;

                GVariant *rec = NULL;
                switch (o->signature[0]) {
                case 's': {
                        const char *s;
                        r = sd_bus_message_read_basic(m, 's', &s);
                        if (r < 0)
                                return r;
                        char **t = o->target;
                        g_free(*t);
                        *t = g_strdup(s);
                        rec = g_variant_new_string(s);
                        break;
                }
                case 'u': {
                        uint32_t u;
                        r = sd_bus_message_read_basic(m, 'u', &u);
                        if (r < 0)
                                return r;
                        *(uint32_t *) o->target = u;
                        rec = g_variant_new_uint32(u);
                        break;
                }
                case 't': {
                        uint64_t t;
                        r = sd_bus_message_read_basic(m, 't', &t);
                        if (r < 0)
                                return r;
                        *(uint64_t *) o->target = t;
                        rec = g_variant_new_uint64(t);
                        break;
                }
                case 'b': {
                        int b;
                        r = sd_bus_message_read_basic(m, 'b', &b);
                        if (r < 0)
                                return r;
                        *(int *) o->target = b;
                        rec = g_variant_new_boolean(b);
                        break;
                }
                case 'a': {
                        char ***t = o->target;
                        g_strfreev(*t);
                        *t = NULL;
                        r = read_strv(m, t, error, key);
                        if (r < 0)
                                return r;
                        rec = g_variant_new_strv((const char *const *) *t, -1);
                        break;
                }
                default:
                        g_assert_not_reached();
                }
                if (o->seen)
                        *o->seen = true;
                if (record)
                        g_variant_builder_add(record, "{sv}", key, rec);
                else
                        g_variant_unref(g_variant_ref_sink(rec));

                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_exit_container(m);
}

int bus_append_gvariant(sd_bus_message *m, GVariant *v) {
        const GVariantType *t = g_variant_get_type(v);
        int r;

        if (g_variant_type_is_basic(t)) {
                switch (g_variant_classify(v)) {
                case G_VARIANT_CLASS_STRING:
                        return sd_bus_message_append_basic(m, 's', g_variant_get_string(v, NULL));
                case G_VARIANT_CLASS_OBJECT_PATH:
                        return sd_bus_message_append_basic(m, 'o', g_variant_get_string(v, NULL));
                case G_VARIANT_CLASS_BOOLEAN: {
                        int b = g_variant_get_boolean(v);
                        return sd_bus_message_append_basic(m, 'b', &b);
                }
                case G_VARIANT_CLASS_UINT32: {
                        uint32_t u = g_variant_get_uint32(v);
                        return sd_bus_message_append_basic(m, 'u', &u);
                }
                case G_VARIANT_CLASS_INT32: {
                        int32_t i = g_variant_get_int32(v);
                        return sd_bus_message_append_basic(m, 'i', &i);
                }
                case G_VARIANT_CLASS_UINT64: {
                        uint64_t u = g_variant_get_uint64(v);
                        return sd_bus_message_append_basic(m, 't', &u);
                }
                case G_VARIANT_CLASS_INT64: {
                        int64_t i = g_variant_get_int64(v);
                        return sd_bus_message_append_basic(m, 'x', &i);
                }
                default:
                        return -EINVAL;
                }
        }

        if (g_variant_is_of_type(v, G_VARIANT_TYPE_VARIANT)) {
                g_autoptr(GVariant) inner = g_variant_get_variant(v);
                r = sd_bus_message_open_container(m, 'v', g_variant_get_type_string(inner));
                if (r < 0)
                        return r;
                r = bus_append_gvariant(m, inner);
                if (r < 0)
                        return r;
                return sd_bus_message_close_container(m);
        }

        char kind;
        const char *sig = g_variant_get_type_string(v);
        g_autofree char *contents = NULL;
        if (g_variant_type_is_array(t)) {
                kind = 'a';
                contents = g_strdup(sig + 1);
        } else if (g_variant_type_is_dict_entry(t)) {
                kind = 'e';
                contents = g_strndup(sig + 1, strlen(sig) - 2);
        } else if (g_variant_type_is_tuple(t)) {
                kind = 'r';
                contents = g_strndup(sig + 1, strlen(sig) - 2);
        } else
                return -EINVAL;

        r = sd_bus_message_open_container(m, kind, contents);
        if (r < 0)
                return r;
        GVariantIter it;
        GVariant *child;
        g_variant_iter_init(&it, v);
        while ((child = g_variant_iter_next_value(&it))) {
                r = bus_append_gvariant(m, child);
                g_variant_unref(child);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}
