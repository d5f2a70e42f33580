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

/* The CA's subject and expiry: the daemon exports the CA as a certificate
 * object too (managed, the issuer of everything local); find it by its
 * fingerprint through the API instead of parsing ASN.1 in the page. */
CK.pemSummary = function (pem) {
    const out = {};
    CK.caFingerprint(pem).then(fp => CK.manager("GetCertificateByFingerprint", [fp]))
        .then(r => CK.getAll(r[0], CK.CERTIFICATE))
        .then(p => {
            const s = document.getElementById("ca-subject");
            const e = document.getElementById("ca-expiry");
            if (s)
                s.textContent = p.Subject || p.CommonName;
            if (e)
                e.textContent = CK.date(p.NotAfter) + " (" + p.DaysUntilExpiry + " days)";
        })
        .catch(() => {});
    return out;
};

CK.caFingerprint = function (pem) {
    const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
    const der = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    return crypto.subtle.digest("SHA-256", der).then(d => Array.from(new Uint8Array(d), b => b.toString(16).padStart(2, "0")).join(""));
};
