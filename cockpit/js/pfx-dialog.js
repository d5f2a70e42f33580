/* Download PFX: the daemon makes the PKCS#12 with a fresh one-time password,
 * which the dialog shows once (with a copy button) before the download. */
"use strict";

CK.pfxDialog = function (path, d) {
    const body = CK.el("div", {},
                       CK.el("p", {}, "The daemon packs the certificate, its chain and its private key into a PKCS#12 file protected by a new random password."),
                       CK.el("p", {}, CK.el("label", {}, CK.el("input", { type: "checkbox", id: "pfx-legacy" }), " Legacy encryption (3DES/SHA-1) for old consumers")),
                       CK.el("div", { id: "pfx-result" }));
    const create = CK.el("button", { class: "ck-primary", id: "pfx-create" }, "Create PFX");
    const cancel = CK.el("button", { id: "pfx-cancel", onclick: CK.closeDialog }, "Cancel");
    CK.openDialog("Download PFX: " + d.CommonName, body, [create, cancel]);
    create.addEventListener("click", () => {
        create.disabled = true;
        const legacy = document.getElementById("pfx-legacy").checked;
        CK.call(path, CK.CERTIFICATE, "ExportPFX", [{ legacy: { t: "b", v: legacy } }], { write: true }).then(r => {
            const pfx = cockpit.base64_decode(r[0], Uint8Array);
            let password = r[1];
            const result = document.getElementById("pfx-result");
            const secret = CK.el("span", { class: "ck-secret", id: "pfx-password" }, password);
            result.replaceChildren(
                CK.el("div", { class: "ck-alert ck-warn" }, CK.el("strong", {}, "Save this password now."), " It cannot be shown again: the daemon does not keep it."),
                CK.el("p", {}, secret, " ", CK.copyButton(() => password)),
                CK.el("button", { class: "ck-primary", id: "pfx-download", onclick: () => CK.download(CK.fileName(d.CommonName, ".pfx"), pfx, "application/x-pkcs12") }, "Download .pfx"));
            create.hidden = true;
            cancel.textContent = "Close";
            cancel.addEventListener("click", () => { password = ""; pfx.fill(0); }, { once: true });
        }).catch(err => {
            create.disabled = false;
            document.getElementById("pfx-result").replaceChildren(CK.el("p", { class: "ck-error", id: "pfx-error" }, CK.errorText(err)));
        });
    });
};
