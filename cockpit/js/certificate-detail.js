/* Certificate detail: every field of Describe(), downloads, PFX and Revoke. */
"use strict";

CK.screens.certificate = {
    show(section, params, id) {
        this.path = CK.ROOT + "/certificate/" + id;
        CK.render(section, CK.el("p", { class: "ck-muted" }, "Loading…"));
        this.refresh(section);
    },

    refresh(section) {
        const path = this.path;
        CK.call(path, CK.CERTIFICATE, "Describe", []).then(r => {
            const d = CK.unvariant(r[0]);
            this.details = d;
            const row = (label, value, id) => [CK.el("dt", {}, label), CK.el("dd", { id: id }, value)];
            const fp = d.FingerprintSHA256 || "";
            const orderLink = d.Order && d.Order !== "/" ? CK.el("a", { href: "#/order/" + CK.pathId(d.Order), id: "order-link" }, "Order " + CK.pathId(d.Order)) : "—";
            const revoked = d.Status === "revoked";
            const pfx = CK.writeAction(CK.el("button", { id: "download-pfx", onclick: () => CK.pfxDialog(path, d) }, "Download PFX"));
            const revoke = CK.writeAction(CK.el("button", { id: "revoke", class: "ck-danger-button", onclick: () => CK.revokeDialog(path, d, () => this.refresh(section)) }, "Revoke…"));
            if (!d.HasPrivateKey) {
                pfx.disabled = true;
                pfx.title = "The daemon does not hold this certificate's private key.";
            }
            if (revoked || d.Source === "discovered") {
                revoke.disabled = true;
                revoke.title = revoked ? "Already revoked." : "Discovered certificates are revoked by their issuer.";
            }
            CK.render(section,
                      CK.el("p", {}, CK.el("a", { href: "#/certificates" }, "‹ Certificates")),
                      CK.el("h2", { id: "detail-cn" }, d.CommonName || "(no common name)", " ", CK.statusLabel(d.Status)),
                      CK.el("div", { class: "ck-toolbar" },
                            CK.el("button", { id: "download-crt", onclick: () => this.downloadPEM(path, d, false) }, "Download certificate"),
                            CK.el("button", { id: "download-chain", onclick: () => this.downloadPEM(path, d, true) }, "Download with chain"),
                            pfx, CK.el("span", { class: "ck-spacer" }), revoke),
                      CK.el("div", { class: "ck-error", id: "detail-error" }),
                      CK.el("div", { class: "ck-card" }, CK.el("dl", { class: "ck-details", id: "certificate-details" },
                            row("Common name", d.CommonName, "d-cn"),
                            row("Subject alternative names", (d.SubjectAlternativeNames || []).join(", ") || "—", "d-sans"),
                            row("Subject", d.Subject, "d-subject"),
                            row("Issuer", d.Issuer, "d-issuer"),
                            row("Provider", d.Provider || "—", "d-provider"),
                            row("Key algorithm", d.Algorithm, "d-algorithm"),
                            row("Signature digest", d.Digest, "d-digest"),
                            row("Valid from", CK.time(d.NotBefore), "d-not-before"),
                            row("Valid to", CK.time(d.NotAfter), "d-not-after"),
                            row("Days until expiry", String(d.DaysUntilExpiry), "d-days"),
                            row("Status", d.Status + (revoked ? " (" + (d.RevocationReason || "unspecified") + ", " + CK.time(d.RevokedAt) + ")" : ""), "d-status"),
                            row("Source", d.Source, "d-source"),
                            row("SHA-256 fingerprint", [CK.el("code", { id: "d-fingerprint" }, fp), " ", CK.copyButton(() => fp)], "d-fp"),
                            row("Serial number", CK.el("code", {}, d.SerialNumber || ""), "d-serial"),
                            row("Private key held by the daemon", d.HasPrivateKey ? "yes" : "no", "d-key"),
                            row("Order", orderLink, "d-order"),
                            d.Source === "discovered" ? row("Found in", (d.Paths || []).join(", ") || "—", "d-paths") : [],
                            d.Source === "discovered" ? row("Present", d.Present ? "yes" : "no (its files are gone)", "d-present") : [])));
        }).catch(err => CK.render(section, CK.el("p", {}, CK.el("a", { href: "#/certificates" }, "‹ Certificates")),
                                  CK.el("p", { class: "ck-error" }, CK.errorText(err))));
    },

    downloadPEM(path, d, chain) {
        CK.call(path, CK.CERTIFICATE, "DownloadPEM", [{ chain: { t: "b", v: chain } }])
            .then(r => CK.download(CK.fileName(d.CommonName, chain ? "-chain.crt" : ".crt"), r[0], "application/x-pem-file"))
            .catch(err => { document.getElementById("detail-error").textContent = CK.errorText(err); });
    },
};
