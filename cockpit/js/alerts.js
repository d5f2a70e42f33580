/* Alerts: open ones (and acknowledged ones on request), with Acknowledge. */
"use strict";

CK.screens.alerts = {
    all: false,

    show(section) {
        const all = CK.el("input", { type: "checkbox", id: "alerts-all", checked: this.all });
        all.addEventListener("change", () => { this.all = all.checked; this.refresh(section); });
        CK.render(section, CK.el("h2", {}, "Alerts"),
                  CK.el("div", { class: "ck-toolbar" }, CK.el("label", {}, all, " Show acknowledged alerts")),
                  CK.el("table", { class: "ck-table", id: "alerts-table" },
                        CK.el("thead", {}, CK.el("tr", {}, ["Raised", "Kind", "Message", "Subject", ""].map(h => CK.el("th", {}, h)))),
                        CK.el("tbody", {})),
                  CK.el("p", { class: "ck-error", id: "alerts-error" }));
        this.refresh(section);
    },

    refresh(section) {
        CK.manager("ListAlerts", [{ include_acknowledged: { t: "b", v: this.all } }]).then(r => {
            const tbody = section.querySelector("tbody");
            if (!tbody)
                return;
            const rows = r[0].slice().reverse();
            tbody.replaceChildren(...(rows.length ? rows.map(([id, kind, message, subject, at, acked]) => {
                const ack = CK.writeAction(CK.el("button", { "data-ack": String(id) }, "Acknowledge"));
                ack.addEventListener("click", () => {
                    ack.disabled = true;
                    CK.manager("AcknowledgeAlert", [id], { write: true }).then(() => this.refresh(section), err => {
                        ack.disabled = false;
                        section.querySelector("#alerts-error").textContent = CK.errorText(err);
                    });
                });
                const link = subject && subject !== "/" ? CK.el("a", { href: "#/" + (subject.includes("/order/") ? "order" : subject.includes("/deployment/") ? "deployments" : "certificate") + "/" + CK.pathId(subject) }, subject.split("/").slice(-2).join(" ")) : "—";
                return CK.el("tr", { "data-alert": String(id) }, CK.el("td", {}, CK.time(at)), CK.el("td", {}, kind), CK.el("td", {}, message), CK.el("td", {}, link),
                             CK.el("td", {}, acked ? CK.el("span", { class: "ck-muted" }, "acknowledged") : ack));
            }) : [CK.el("tr", {}, CK.el("td", { colspan: 5, class: "ck-empty" }, "No open alerts."))]));
        }).catch(err => { section.querySelector("#alerts-error").textContent = CK.errorText(err); });
    },
};

CK.refreshAlertBadge = function () {
    CK.manager("ListAlerts", [{}]).then(r => {
        const b = document.getElementById("alert-badge");
        b.textContent = String(r[0].length);
        b.hidden = r[0].length === 0;
    }, () => {});
};
