/* Overview: counts by status, expiring per the alert thresholds, failed
 * orders, open alerts; the Local CA with its certificate and CRL. */
"use strict";

CK.screens = CK.screens || {};

CK.countCertificates = function (filter) {
    /* The API has no count: page through ids only as far as needed (limit 1 per
     * probe would be many calls, so one call with a generous limit). */
    return CK.manager("ListCertificates", [filter]).then(r => r[0].length);
};

CK.screens.overview = {
    show(section) {
        const stat = (id, label, href) => CK.el("a", { class: "ck-stat", href: href, id: "stat-" + id },
                                                CK.el("span", { class: "ck-num" }, "…"),
                                                CK.el("span", { class: "ck-label" }, label));
        const caCard = CK.el("div", { class: "ck-card", id: "local-ca" }, CK.el("h3", {}, "Local CA"), CK.el("p", { class: "ck-muted" }, "Loading…"));
        CK.render(section, CK.el("h2", {}, "Overview"),
                  CK.el("div", { class: "ck-grid" },
                        stat("active", "Active certificates", "#/certificates?status=active"),
                        stat("expiring", "Expiring (within 30 days)", "#/certificates?expiring=30"),
                        stat("expired", "Expired", "#/certificates?status=expired"),
                        stat("revoked", "Revoked", "#/certificates?status=revoked"),
                        stat("failed", "Failed orders", "#/orders?status=failed"),
                        stat("alerts", "Open alerts", "#/alerts")),
                  caCard);
        this.refresh(section);
    },

    refresh(section) {
        const set = (id, n) => {
            const e = section.querySelector("#stat-" + id + " .ck-num");
            if (e)
                e.textContent = String(n);
        };
        CK.manager("GetPolicy", []).then(r => {
            const p = CK.unvariant(r[0]);
            const thresholds = p.ExpiryThresholdsDays || [30];
            const days = Math.max(...thresholds);
            const label = section.querySelector("#stat-expiring .ck-label");
            if (label)
                label.textContent = "Expiring (within " + days + " days)";
            section.querySelector("#stat-expiring").href = "#/certificates?expiring=" + days;
            return CK.countCertificates({ status: { t: "s", v: "active" }, expiring_within_days: { t: "u", v: days } })
                .then(n => set("expiring", n));
        }).catch(() => CK.countCertificates({ status: { t: "s", v: "active" }, expiring_within_days: { t: "u", v: 30 } })
            .then(n => set("expiring", n), () => {}));
        for (const s of ["active", "expired", "revoked"])
            CK.countCertificates({ status: { t: "s", v: s } }).then(n => set(s, n), () => {});
        CK.manager("ListOrders", [{ status: { t: "s", v: "failed" } }]).then(r => set("failed", r[0].length), () => {});
        CK.manager("ListAlerts", [{}]).then(r => set("alerts", r[0].length), () => {});
        this.refreshCA(section.querySelector("#local-ca"));
    },

    refreshCA(card) {
        CK.manager("GetCACertificate", []).then(r => {
            const pem = r[0];
            const fields = CK.pemSummary(pem);
            CK.render(card, CK.el("h3", {}, "Local CA"),
                      CK.el("dl", { class: "ck-details" },
                            CK.el("dt", {}, "Subject"), CK.el("dd", { id: "ca-subject" }, fields.subject || "(see the certificate)"),
                            CK.el("dt", {}, "Valid to"), CK.el("dd", { id: "ca-expiry" }, fields.notAfter || "—")),
                      CK.el("div", { class: "ck-toolbar ck-space-above" },
                            CK.el("button", { id: "download-ca", onclick: () => CK.download("certkeeper-local-ca.crt", pem, "application/x-pem-file") }, "Download CA certificate"),
                            CK.el("button", { id: "download-crl", onclick: () => CK.manager("GetCRL", []).then(c => CK.download("certkeeper-local-ca.crl", c[0], "application/x-pem-file")) }, "Download CRL")));
        }).catch(err => CK.render(card, CK.el("h3", {}, "Local CA"), CK.el("p", { class: "ck-muted" }, CK.errorText(err))));
    },
};

/* The CA's subject and expiry, read from its DER (a minimal walk over the
 * TBSCertificate: version, serial, signature, issuer, validity, subject). */
CK.derChildren = function (der, start, end) {
    const out = [];
    let i = start;
    while (i < end) {
        const tag = der[i];
        let len = der[i + 1];
        let hdr = 2;
        if (len & 0x80) {
            const n = len & 0x7f;
            len = 0;
            for (let k = 0; k < n; k++)
                len = len * 256 + der[i + 2 + k];
            hdr += n;
        }
        out.push({ tag, start: i + hdr, end: i + hdr + len });
        i += hdr + len;
    }
    return out;
};

CK.pemSummary = function (pem) {
    try {
        const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
        const der = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const cert = CK.derChildren(der, 0, der.length)[0];
        const tbs = CK.derChildren(der, cert.start, cert.end)[0];
        let f = CK.derChildren(der, tbs.start, tbs.end);
        if (f[0].tag === 0xa0)
            f = f.slice(1);
        const ascii = n => String.fromCharCode(...der.subarray(n.start, n.end));
        const validity = CK.derChildren(der, f[3].start, f[3].end);
        const t = ascii(validity[1]);
        const full = validity[1].tag === 0x17 ? (parseInt(t.substring(0, 2), 10) < 50 ? "20" : "19") + t : t;
        const notAfter = full.substring(0, 4) + "-" + full.substring(4, 6) + "-" + full.substring(6, 8);
        const names = [];
        for (const rdn of CK.derChildren(der, f[4].start, f[4].end)) {
            for (const atv of CK.derChildren(der, rdn.start, rdn.end)) {
                const [oid, value] = CK.derChildren(der, atv.start, atv.end);
                const o = Array.from(der.subarray(oid.start, oid.end)).join(".");
                const key = { "85.4.3": "CN", "85.4.10": "O", "85.4.11": "OU", "85.4.6": "C" }[o] || "OID";
                names.push(key + "=" + new TextDecoder().decode(der.subarray(value.start, value.end)));
            }
        }
        return { subject: names.join(", "), notAfter };
    } catch (e) {
        return {};
    }
};
