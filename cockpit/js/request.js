/* Request a certificate: a daemon-generated key (names, algorithm, provider,
 * validity) or an uploaded CSR. Refusals are shown in place; the new order's
 * page shows its progress and policy warnings. */
"use strict";

CK.screens.request = {
    show(section) {
        const mode = CK.el("select", { id: "request-mode" }, CK.el("option", { value: "key" }, "The daemon generates the key"), CK.el("option", { value: "csr" }, "Upload a CSR (the key stays with you)"));
        const cn = CK.el("input", { id: "request-cn", placeholder: "www.example.com" });
        const sans = CK.el("input", { id: "request-sans", placeholder: "example.com, 192.0.2.1" });
        const alg = CK.el("select", { id: "request-algorithm" }, ["ec-256", "ec-384", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519"].map(a => CK.el("option", { value: a }, a)));
        const provider = CK.el("input", { id: "request-provider", placeholder: "local", list: "providers" });
        const validity = CK.el("input", { id: "request-validity", type: "number", min: 1, max: 3650, placeholder: "the policy's default" });
        const csr = CK.el("textarea", { id: "request-csr", rows: 8, placeholder: "-----BEGIN CERTIFICATE REQUEST-----" });
        const csrFile = CK.el("input", { id: "request-csr-file", type: "file", accept: ".csr,.pem,.req" });
        csrFile.addEventListener("change", () => { const f = csrFile.files[0]; if (f) f.text().then(t => { csr.value = t; }); });
        const keyRows = [CK.el("label", { for: "request-cn" }, "Common name"), cn,
            CK.el("label", { for: "request-sans" }, "Alternative names"), sans,
            CK.el("span", { class: "ck-help" }, "Comma-separated DNS names, IP addresses or URIs."),
            CK.el("label", { for: "request-algorithm" }, "Key algorithm"), alg];
        const csrRows = [CK.el("label", { for: "request-csr" }, "CSR (PEM)"), CK.el("div", {}, csr, csrFile)];
        const form = CK.el("div", { class: "ck-form" }, CK.el("label", { for: "request-mode" }, "Key"), mode, keyRows, csrRows,
                           CK.el("label", { for: "request-provider" }, "Provider"), provider,
                           CK.el("span", { class: "ck-help" }, "local (the built-in CA), acme, or an [ExternalCA] name."),
                           CK.el("label", { for: "request-validity" }, "Validity (days)"), validity);
        const result = CK.el("div", { id: "request-result" });
        const submit = CK.writeAction(CK.el("button", { class: "ck-primary", id: "request-submit" }, "Request"));
        const sync = () => {
            keyRows.forEach(e => { e.hidden = mode.value !== "key"; });
            csrRows.forEach(e => { e.hidden = mode.value !== "csr"; });
        };
        mode.addEventListener("change", sync);
        sync();
        submit.addEventListener("click", () => {
            const opts = {};
            if (provider.value.trim())
                opts.provider = { t: "s", v: provider.value.trim() };
            if (validity.value)
                opts.validity_days = { t: "u", v: parseInt(validity.value, 10) };
            let call;
            if (mode.value === "key") {
                if (!cn.value.trim()) {
                    result.replaceChildren(CK.el("p", { class: "ck-error" }, "A common name is needed."));
                    return;
                }
                opts.key_algorithm = { t: "s", v: alg.value };
                const names = sans.value.split(/[\s,]+/).filter(s => s);
                call = CK.manager("RequestCertificate", [cn.value.trim(), names, opts], { write: true });
            } else {
                call = CK.manager("SubmitCSR", [csr.value, opts], { write: true });
            }
            submit.disabled = true;
            result.replaceChildren(CK.el("p", { class: "ck-muted" }, "Submitting…"));
            call.then(r => {
                submit.disabled = false;
                result.replaceChildren(CK.el("div", { class: "ck-alert ck-info", id: "request-ok" }, "Order submitted: ",
                                             CK.el("a", { href: "#/order/" + CK.pathId(r[0]), id: "request-order" }, "order " + CK.pathId(r[0]))));
            }).catch(err => {
                submit.disabled = !!CK.readOnlyReason;
                result.replaceChildren(CK.el("div", { class: "ck-alert ck-danger", id: "request-error" }, CK.el("strong", {}, "Refused: "), CK.errorText(err)));
            });
        });
        CK.render(section, CK.el("h2", {}, "Request a certificate"), CK.el("div", { class: "ck-card" }, form,
                  CK.el("div", { class: "ck-toolbar ck-space-above" }, submit), result));
        CK.manager("GetPolicy", []).then(r => {
            const p = CK.unvariant(r[0]);
            const lines = Object.entries(p).filter(([k]) => /Allowed|Min|Max|Wildcard|Enforcement/.test(k))
                .map(([k, v]) => k + "=" + (Array.isArray(v) ? v.join(" ") : v));
            if (lines.length)
                section.querySelector(".ck-card").append(CK.el("p", { class: "ck-muted", id: "request-policy" }, "Issuance policy: " + lines.join("; ")));
        }).catch(() => {});
    },

    refresh() {},
};
