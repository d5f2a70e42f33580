/* Orders: the list (newest first as the daemon gives them) and an order's
 * detail: the certificate link, or for a failed one the error, the original
 * parameters and Resubmit. */
"use strict";

CK.screens.orders = {
    state: { status: "", offset: 0 },

    show(section, params) {
        const st = this.state;
        if (params)
            st.status = params.get("status") || "";
        st.offset = 0;
        CK.render(section, CK.el("h2", {}, "Orders"),
                  CK.el("div", { class: "ck-toolbar" },
                        CK.el("select", { id: "filter-order-status", onchange: ev => { st.status = ev.target.value; st.offset = 0; this.refresh(section); } },
                              [["", "All statuses"], ["pending", "Pending"], ["processing", "Processing"], ["complete", "Complete"], ["failed", "Failed"]]
                                  .map(([v, l]) => CK.el("option", { value: v, selected: v === st.status }, l)))),
                  CK.el("table", { class: "ck-table", id: "orders-table" },
                        CK.el("thead", {}, CK.el("tr", {}, ["Common name", "Order type", "Status", "Requested by", "Submitted", "Duration"].map(h => CK.el("th", {}, h)))),
                        CK.el("tbody", {})),
                  CK.el("div", { class: "ck-pager" },
                        CK.el("button", { id: "orders-prev", onclick: () => { st.offset = Math.max(0, st.offset - CK.PAGE_SIZE); this.refresh(section); } }, "‹ Previous"),
                        CK.el("button", { id: "orders-next", onclick: () => { st.offset += CK.PAGE_SIZE; this.refresh(section); } }, "Next ›")));
        this.refresh(section);
    },

    refresh(section) {
        const st = this.state;
        const f = { offset: { t: "u", v: st.offset }, limit: { t: "u", v: CK.PAGE_SIZE + 1 } };
        if (st.status)
            f.status = { t: "s", v: st.status };
        CK.manager("ListOrders", [f]).then(r => {
            const rows = r[0].slice(0, CK.PAGE_SIZE);
            const tbody = section.querySelector("tbody");
            if (!tbody)
                return;
            tbody.replaceChildren(...(rows.length ? rows.map(([path, cn, type, status, by, at, dur]) => CK.el("tr", { "data-path": path },
                CK.el("td", {}, CK.el("a", { href: "#/order/" + CK.pathId(path) }, cn)),
                CK.el("td", {}, type), CK.el("td", {}, CK.statusLabel(status)), CK.el("td", {}, by),
                CK.el("td", {}, CK.time(at)), CK.el("td", {}, CK.duration(dur))))
                : [CK.el("tr", {}, CK.el("td", { colspan: 6, class: "ck-empty" }, "No orders."))]));
            section.querySelector("#orders-prev").disabled = st.offset === 0;
            section.querySelector("#orders-next").disabled = r[0].length <= CK.PAGE_SIZE;
        }).catch(err => {
            const tbody = section.querySelector("tbody");
            if (tbody)
                tbody.replaceChildren(CK.el("tr", {}, CK.el("td", { colspan: 6, class: "ck-empty ck-error" }, CK.errorText(err))));
        });
    },
};

CK.screens.order = {
    show(section, params, id) {
        this.path = CK.ROOT + "/order/" + id;
        CK.render(section, CK.el("p", { class: "ck-muted" }, "Loading…"));
        this.refresh(section);
    },

    refresh(section) {
        const path = this.path;
        CK.getAll(path, CK.ORDER).then(o => {
            const row = (label, value, id) => [CK.el("dt", {}, label), CK.el("dd", { id: id }, value)];
            const params = CK.unvariant(o.Parameters);
            const paramText = Object.entries(params).map(([k, v]) => k + " = " + (Array.isArray(v) ? v.join(", ") : (typeof v === "object" ? JSON.stringify(v) : v)));
            const failed = o.Status === "failed";
            const resubmit = CK.writeAction(CK.el("button", { class: "ck-primary", id: "resubmit" }, "Resubmit"));
            const error = CK.el("p", { class: "ck-error", id: "resubmit-error" });
            resubmit.addEventListener("click", () => {
                resubmit.disabled = true;
                CK.call(path, CK.ORDER, "Resubmit", [], { write: true })
                    .then(r => { cockpit.location.go("/order/" + CK.pathId(r[0])); })
                    .catch(err => { resubmit.disabled = false; error.textContent = CK.errorText(err); });
            });
            CK.render(section,
                      CK.el("p", {}, CK.el("a", { href: "#/orders" }, "‹ Orders")),
                      CK.el("h2", {}, "Order " + o.Id + ": " + o.CommonName + " ", CK.statusLabel(o.Status)),
                      failed ? CK.el("div", { class: "ck-alert ck-danger", id: "order-error" }, CK.el("strong", {}, "The order failed: "), o.Error) : null,
                      (o.PolicyWarnings || []).length ? CK.el("div", { class: "ck-alert ck-warn", id: "order-warnings" }, CK.el("strong", {}, "Policy warnings: "), o.PolicyWarnings.join("; ")) : null,
                      failed ? CK.el("div", { class: "ck-toolbar" }, resubmit, error) : null,
                      CK.el("div", { class: "ck-card" }, CK.el("dl", { class: "ck-details" },
                            row("Common name", o.CommonName), row("Kind", o.Kind), row("Order type", o.OrderType), row("Provider", o.Provider || "—"),
                            row("Status", o.Status, "o-status"), row("Requested by", o.RequestedBy + " (uid " + o.RequestedByUID + ")"), row("Channel", o.Channel),
                            row("Submitted", CK.time(o.SubmittedAt)), row("Finished", CK.time(o.FinishedAt)), row("Duration", CK.duration(o.Duration)),
                            row("Certificate", o.Certificate && o.Certificate !== "/" ? CK.el("a", { href: "#/certificate/" + CK.pathId(o.Certificate), id: "order-certificate" }, "Certificate " + CK.pathId(o.Certificate)) : "—"),
                            row("Parameters", paramText.length ? CK.el("code", { id: "o-parameters" }, paramText.join("; ")) : "—"))));
        }).catch(err => CK.render(section, CK.el("p", {}, CK.el("a", { href: "#/orders" }, "‹ Orders")), CK.el("p", { class: "ck-error" }, CK.errorText(err))));
    },
};
