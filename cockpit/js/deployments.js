/* Deployments (DESIGN.md "Deployments"): state, next renewal, last error,
 * Renew now. The tab shows only when the daemon has ListDeployments. */
"use strict";

CK.screens.deployments = {
    show(section) {
        CK.render(section, CK.el("h2", {}, "Deployments"),
                  CK.el("table", { class: "ck-table", id: "deployments-table" },
                        CK.el("thead", {}, CK.el("tr", {}, ["Name", "Common name", "State", "Valid to", "Next renewal", "Last error", ""].map(h => CK.el("th", {}, h)))),
                        CK.el("tbody", {})),
                  CK.el("p", { class: "ck-error", id: "deployments-error" }));
        this.refresh(section);
    },

    refresh(section) {
        CK.manager("ListDeployments", [{}]).then(r => {
            const tbody = section.querySelector("tbody");
            if (!tbody)
                return;
            tbody.replaceChildren(...(r[0].length ? r[0].map(([path, name, cn, state, notAfter, next, , lastError]) => {
                const renew = CK.writeAction(CK.el("button", { "data-renew": name }, "Renew now"));
                renew.addEventListener("click", () => {
                    renew.disabled = true;
                    CK.call(path, CK.DEPLOYMENT, "Renew", [{}], { write: true }).then(() => this.refresh(section), err => {
                        renew.disabled = false;
                        section.querySelector("#deployments-error").textContent = CK.errorText(err);
                    });
                });
                return CK.el("tr", { "data-path": path }, CK.el("td", {}, name), CK.el("td", {}, cn), CK.el("td", {}, CK.statusLabel(state)),
                             CK.el("td", {}, CK.date(notAfter)), CK.el("td", {}, CK.time(next)), CK.el("td", { class: "ck-error" }, lastError || ""), CK.el("td", {}, renew));
            }) : [CK.el("tr", {}, CK.el("td", { colspan: 7, class: "ck-empty" }, "No deployments. Create one with certkeeperctl deploy or a file in deployments.d/."))]));
        }).catch(err => { section.querySelector("#deployments-error").textContent = CK.errorText(err); });
    },
};

/* Does the daemon have the Deployments API? Introspection answers without polkit. */
CK.probeDeployments = function () {
    CK.call(CK.ROOT, "org.freedesktop.DBus.Introspectable", "Introspect", [])
        .then(r => { document.getElementById("tab-deployments").hidden = !r[0].includes('"ListDeployments"'); })
        .catch(() => {});
};
