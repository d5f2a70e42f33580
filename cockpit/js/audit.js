/* Audit log: the daemon's audit events, newest first, filtered by event name and time. */
"use strict";

CK.screens.audit = {
    show(section) {
        const ev = CK.el("input", { id: "audit-event", placeholder: "event, e.g. certificate.revoke.success", list: "audit-events" });
        const since = CK.el("input", { id: "audit-since", type: "datetime-local" });
        const limit = CK.el("select", { id: "audit-limit" }, ["100", "500", "1000"].map(v => CK.el("option", { value: v }, v + " events")));
        const apply = () => this.refresh(section);
        [ev, since, limit].forEach(e => e.addEventListener("change", apply));
        CK.render(section, CK.el("h2", {}, "Audit log"),
                  CK.el("div", { class: "ck-toolbar" }, ev, CK.el("label", { for: "audit-since" }, "since"), since, limit),
                  CK.el("datalist", { id: "audit-events" }, ["certificate.request_automated.submitted", "certificate.request_csr.submitted", "certificate.view.accessed",
                      "certificate.download.success", "certificate.download_pfx.success", "certificate.revoke.requested", "certificate.revoke.success"].map(v => CK.el("option", { value: v }))),
                  CK.el("table", { class: "ck-table", id: "audit-table" },
                        CK.el("thead", {}, CK.el("tr", {}, ["Time", "Event", "Caller", "Fields"].map(h => CK.el("th", {}, h)))),
                        CK.el("tbody", {})),
                  CK.el("p", { class: "ck-error", id: "audit-error" }));
        this.refresh(section);
    },

    refresh(section) {
        const f = { limit: { t: "u", v: parseInt(section.querySelector("#audit-limit").value, 10) } };
        const ev = section.querySelector("#audit-event").value.trim();
        const since = section.querySelector("#audit-since").value;
        if (ev)
            f.event = { t: "s", v: ev };
        if (since)
            f.since = { t: "t", v: new Date(since).getTime() * 1000 };
        CK.manager("ListAuditEvents", [f]).then(r => {
            const tbody = section.querySelector("tbody");
            if (!tbody)
                return;
            tbody.replaceChildren(...(r[0].length ? r[0].map(([t, name, uid, fields]) => CK.el("tr", {},
                CK.el("td", {}, CK.time(t)), CK.el("td", {}, name), CK.el("td", {}, "uid " + uid),
                CK.el("td", { class: "ck-mono" }, Object.entries(fields).map(([k, v]) => k + "=" + v).join(" "))))
                : [CK.el("tr", {}, CK.el("td", { colspan: 4, class: "ck-empty" }, "No events."))]));
            section.querySelector("#audit-error").textContent = "";
        }).catch(err => { section.querySelector("#audit-error").textContent = CK.errorText(err); });
    },
};
