/* Certificates: the inventory, paged with the API's offset/limit (the daemon
 * orders by expiry), filtered by source, status, expiry and name; the columns
 * sort the page shown. */
"use strict";

CK.PAGE_SIZE = 50;

CK.screens.certificates = {
    state: { offset: 0, source: "", status: "", text: "", expiring: "", sort: null, desc: false },

    show(section, params) {
        const st = this.state;
        if (params) {
            st.status = params.get("status") || "";
            st.expiring = params.get("expiring") || "";
            st.source = params.get("source") || "";
            st.offset = 0;
        }
        const select = (id, value, options) => CK.el("select", { id: id, onchange: ev => { st[id.replace("filter-", "")] = ev.target.value; st.offset = 0; this.load(section); } },
                                                     options.map(([v, l]) => CK.el("option", { value: v, selected: v === value }, l)));
        const text = CK.el("input", { id: "filter-text", type: "search", placeholder: "Filter by common name", value: st.text });
        let timer = null;
        text.addEventListener("input", () => {
            clearTimeout(timer);
            timer = setTimeout(() => { st.text = text.value.trim(); st.offset = 0; this.load(section); }, 250);
        });
        const head = (key, label) => CK.el("th", { "data-sort": key }, label);
        CK.render(section,
                  CK.el("h2", {}, "Certificates"),
                  CK.el("div", { class: "ck-toolbar" },
                        text,
                        select("filter-source", st.source, [["", "All sources"], ["managed", "Managed"], ["discovered", "Discovered"]]),
                        select("filter-status", st.status, [["", "All statuses"], ["active", "Active"], ["expired", "Expired"], ["revoked", "Revoked"]]),
                        select("filter-expiring", st.expiring, [["", "Any expiry"], ["1", "Expiring within 1 day"], ["7", "within 7 days"], ["14", "within 14 days"], ["30", "within 30 days"], ["90", "within 90 days"]]),
                        CK.el("span", { class: "ck-spacer" }),
                        CK.el("a", { class: "ck-button", href: "#/request" }, "Request a certificate")),
                  CK.el("table", { class: "ck-table", id: "certificates-table" },
                        CK.el("thead", {}, CK.el("tr", {}, head("cn", "Common name"), head("issuer", "Issuer"), head("notAfter", "Valid to"),
                                                 head("days", "Days left"), head("status", "Status"), head("source", "Source"))),
                        CK.el("tbody", {})),
                  CK.el("div", { class: "ck-pager" },
                        CK.el("span", { id: "page-info", class: "ck-muted" }),
                        CK.el("button", { id: "page-prev", onclick: () => { st.offset = Math.max(0, st.offset - CK.PAGE_SIZE); this.load(section); } }, "‹ Previous"),
                        CK.el("button", { id: "page-next", onclick: () => { st.offset += CK.PAGE_SIZE; this.load(section); } }, "Next ›")));
        section.querySelectorAll("th[data-sort]").forEach(th => th.addEventListener("click", () => {
            st.desc = st.sort === th.dataset.sort ? !st.desc : false;
            st.sort = th.dataset.sort;
            this.draw(section);
        }));
        this.load(section);
    },

    filter() {
        const st = this.state;
        const f = { offset: { t: "u", v: st.offset }, limit: { t: "u", v: CK.PAGE_SIZE + 1 } };
        if (st.source)
            f.source = { t: "s", v: st.source };
        if (st.status)
            f.status = { t: "s", v: st.status };
        if (st.expiring)
            f.expiring_within_days = { t: "u", v: parseInt(st.expiring, 10) };
        if (st.text)
            f.common_name = { t: "s", v: /[*?[]/.test(st.text) ? st.text : "*" + st.text + "*" };
        return f;
    },

    load(section) {
        const started = performance.now();
        const seq = (this.seq = (this.seq || 0) + 1);
        return CK.manager("ListCertificates", [this.filter()]).then(r => {
            if (seq !== this.seq)
                return;
            const rows = r[0];
            this.more = rows.length > CK.PAGE_SIZE;
            this.rows = rows.slice(0, CK.PAGE_SIZE).map(([path, cn, status, source, issuer, notAfter, days]) =>
                ({ path, cn, status, source, issuer, notAfter, days }));
            this.draw(section);
            this.loadSans(section);
            section.dataset.loadMs = String(Math.round(performance.now() - started));
        }).catch(err => {
            const tbody = section.querySelector("tbody");
            if (tbody)
                tbody.replaceChildren(CK.el("tr", {}, CK.el("td", { colspan: 6, class: "ck-empty ck-error" }, CK.errorText(err))));
        });
    },

    draw(section) {
        const st = this.state;
        const rows = (this.rows || []).slice();
        if (st.sort) {
            rows.sort((a, b) => (a[st.sort] < b[st.sort] ? -1 : a[st.sort] > b[st.sort] ? 1 : 0) * (st.desc ? -1 : 1));
        }
        section.querySelectorAll("th[data-sort]").forEach(th => {
            th.classList.toggle("ck-sorted-asc", st.sort === th.dataset.sort && !st.desc);
            th.classList.toggle("ck-sorted-desc", st.sort === th.dataset.sort && st.desc);
        });
        const tbody = section.querySelector("tbody");
        if (!tbody)
            return;
        if (rows.length === 0) {
            tbody.replaceChildren(CK.el("tr", {}, CK.el("td", { colspan: 6, class: "ck-empty" }, "No certificates match.")));
        } else {
            tbody.replaceChildren(...rows.map(c => CK.el("tr", { "data-path": c.path },
                CK.el("td", {}, CK.el("a", { href: "#/certificate/" + CK.pathId(c.path), class: "ck-cn" }, c.cn || "(no common name)"),
                      CK.el("div", { class: "ck-sans", "data-sans-for": c.path })),
                CK.el("td", {}, c.issuer),
                CK.el("td", {}, CK.date(c.notAfter)),
                CK.el("td", {}, String(c.days)),
                CK.el("td", {}, CK.statusLabel(c.status)),
                CK.el("td", {}, c.source))));
        }
        section.querySelector("#page-info").textContent = rows.length ? (st.offset + 1) + "–" + (st.offset + rows.length) : "";
        section.querySelector("#page-prev").disabled = st.offset === 0;
        section.querySelector("#page-next").disabled = !this.more;
    },

    /* SANs and provider are properties of each object: fetched for the page shown only. */
    loadSans(section) {
        for (const c of this.rows || []) {
            CK.getProperty(c.path, CK.CERTIFICATE, "SubjectAlternativeNames").then(sans => {
                const cell = section.querySelector('[data-sans-for="' + c.path + '"]');
                if (cell)
                    cell.textContent = sans.filter(s => s !== c.cn).join(", ");
            }).catch(() => {});
        }
    },

    refresh(section) {
        this.load(section);
    },
};
