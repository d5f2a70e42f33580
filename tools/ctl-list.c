/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* What every list verb does the same way (list, orders, deploy list, alerts, audit,
 * overview): one Manager call with an a{sv} filter, one table row per reply row, the
 * table (or its JSON) and a legend. The verbs only say which filter keys they send
 * and how one row becomes cells. */

#include "ctl.h"

int ctl_list_begin(sd_bus *bus, const char *method, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = new_manager_call(bus, method, &m);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return bus_build_error(r);
        *ret = TAKE_PTR(m);
        return CTL_EXIT_OK;
}

int ctl_list_call(sd_bus *bus, sd_bus_message *m, const ListSpec *spec, Table *t, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autofree char *what = NULL;
        int r;

        r = sd_bus_message_close_container(m);
        if (r < 0)
                return bus_build_error(r);

        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0) {
                what = g_strdup_printf("failed to list %s", spec->plural);
                return ctl_bus_error(what, &error, r, spec->action);
        }
        r = sd_bus_message_enter_container(reply, 'a', spec->row_signature);
        if (r < 0)
                return bus_parse_error(r);
        while ((r = spec->add_row(reply, t, userdata)) > 0)
                ;
        if (r < 0)
                return bus_parse_error(r);
        return CTL_EXIT_OK;
}

int ctl_list_print(const Table *t, const ListSpec *spec) {
        table_print(t, stdout, arg_json, !arg_legend);
        print_legend(stdout, table_get_rows(t), spec->singular, spec->plural, arg_json, !arg_legend);
        return CTL_EXIT_OK;
}

int ctl_list(sd_bus *bus, sd_bus_message *m, const ListSpec *spec, Table *t, void *userdata) {
        int r = ctl_list_call(bus, m, spec, t, userdata);
        if (r != CTL_EXIT_OK)
                return r;
        return ctl_list_print(t, spec);
}

void ctl_table_add_id(Table *t, const char *path) {
        const char *id = object_path_id(path);
        JsonNode *j = NULL;

        if (id) {
                j = json_node_new(JSON_NODE_VALUE);
                json_node_set_int(j, (gint64) g_ascii_strtoull(id, NULL, 10));
        }
        table_add_cell(t, g_strdup(id ? id : path), NULL, j);
}
