/* Revoke: the daemon's six-digit code, typed back, with one of the RFC 5280
 * reasons; wrong and expired codes are shown in place. */
"use strict";

CK.REVOCATION_REASONS = [
    ["unspecified", "Unspecified"],
    ["keyCompromise", "Key compromise"],
    ["cACompromise", "CA compromise"],
    ["affiliationChanged", "Affiliation changed"],
    ["superseded", "Superseded"],
    ["cessationOfOperation", "Cessation of operation"],
];

CK.revokeDialog = function (path, d, done) {
    const code = CK.el("span", { class: "ck-secret", id: "revoke-code" }, "……");
    const input = CK.el("input", { id: "revoke-input", inputmode: "numeric", maxlength: 6, autocomplete: "off", placeholder: "six digits" });
    const reason = CK.el("select", { id: "revoke-reason" }, CK.REVOCATION_REASONS.map(([v, l]) => CK.el("option", { value: v }, l)));
    const error = CK.el("p", { class: "ck-error", id: "revoke-error" });
    const body = CK.el("div", {},
                       CK.el("div", { class: "ck-alert ck-danger" }, CK.el("strong", {}, "Revocation is permanent."),
                             " ", d.CommonName, " (serial ", CK.el("code", {}, d.SerialNumber || ""), ") will be listed in the CA's CRL and can never be used again."),
                       CK.el("p", {}, "Confirmation code: ", code, " — valid for 5 minutes."),
                       CK.el("div", { class: "ck-form" },
                             CK.el("label", { for: "revoke-input" }, "Type the code"), input,
                             CK.el("label", { for: "revoke-reason" }, "Reason"), reason),
                       error);
    const revoke = CK.el("button", { class: "ck-danger-button", id: "revoke-confirm", disabled: true }, "Revoke");
    const newCode = CK.el("button", { id: "revoke-new-code", hidden: true }, "Get a new code");
    CK.openDialog("Revoke " + d.CommonName, body, [revoke, newCode, CK.el("button", { id: "revoke-cancel", onclick: CK.closeDialog }, "Cancel")]);

    const ask = () => {
        error.textContent = "";
        newCode.hidden = true;
        input.value = "";
        CK.call(path, CK.CERTIFICATE, "RequestRevocation", [], { write: true }).then(r => {
            code.textContent = r[0];
            revoke.disabled = false;
            input.focus();
        }).catch(err => { code.textContent = "—"; error.textContent = CK.errorText(err); });
    };
    newCode.addEventListener("click", ask);
    revoke.addEventListener("click", () => {
        if (!/^\d{6}$/.test(input.value.trim())) {
            error.textContent = "The code is six digits.";
            return;
        }
        revoke.disabled = true;
        CK.call(path, CK.CERTIFICATE, "Revoke", [input.value.trim(), reason.value], { write: true }).then(() => {
            CK.closeDialog();
            done();
        }).catch(err => {
            const name = String(err.name || "");
            if (name.endsWith(".ConfirmationMismatch"))
                error.textContent = "Wrong code. " + (err.message || "") + " After three wrong tries the code is void.";
            else if (name.endsWith(".ConfirmationExpired"))
                error.textContent = "The code has expired or was used up: get a new code.";
            else
                error.textContent = CK.errorText(err);
            if (name.endsWith(".ConfirmationExpired") || name.endsWith(".ConfirmationRequired"))
                newCode.hidden = false;
            else
                revoke.disabled = false;
        });
    });
    ask();
};
