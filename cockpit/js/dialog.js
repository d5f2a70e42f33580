/* One modal dialog at a time (PatternFly's modal look). */
"use strict";

CK.openDialog = function (title, body, buttons) {
    const backdrop = document.getElementById("dialog-backdrop");
    const dialog = document.getElementById("dialog");
    const footer = CK.el("footer", {}, buttons || []);
    dialog.replaceChildren(CK.el("h2", { id: "dialog-title" }, title), body, footer);
    dialog.setAttribute("aria-labelledby", "dialog-title");
    backdrop.hidden = false;
    return { dialog, footer, close: CK.closeDialog };
};

CK.closeDialog = function () {
    document.getElementById("dialog-backdrop").hidden = true;
    document.getElementById("dialog").replaceChildren();
};

document.addEventListener("keydown", ev => {
    if (ev.key === "Escape" && !document.getElementById("dialog-backdrop").hidden)
        CK.closeDialog();
});
