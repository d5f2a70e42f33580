/* Small helpers shared by the screens: elements, formatting, downloads. */
"use strict";
window.CK = window.CK || {};

/* el("td", {class: "x", onclick: fn}, child...) — children are nodes or text. */
CK.el = function (tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
        if (v === undefined || v === null || v === false)
            continue;
        if (k.startsWith("on"))
            e.addEventListener(k.substring(2), v);
        else if (k === "text")
            e.textContent = v;
        else
            e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
        if (c === null || c === undefined || c === false)
            continue;
        e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
};

/* Microseconds since the epoch (0: none) to "2026-12-03 11:30 UTC". */
CK.time = function (us) {
    if (!us)
        return "—";
    return new Date(us / 1000).toISOString().replace("T", " ").replace(/:\d\d\.\d+Z$/, " UTC");
};

CK.date = function (us) {
    return us ? new Date(us / 1000).toISOString().substring(0, 10) : "—";
};

CK.duration = function (us) {
    if (!us)
        return "—";
    if (us < 1000000)
        return Math.round(us / 1000) + " ms";
    if (us < 60000000)
        return (us / 1000000).toFixed(1) + " s";
    return Math.round(us / 60000000) + " min";
};

CK.statusLabel = function (status) {
    return CK.el("span", { class: "ck-label-status ck-status-" + status, "data-status": status }, status);
};

/* The id at the end of an object path, for links: /org/certkeeper1/order/7 → "7". */
CK.pathId = function (path) {
    return String(path).split("/").pop();
};

/* a{sv} from cockpit.dbus ({key: {t, v}}) to plain {key: value}. */
CK.unvariant = function (dict) {
    const out = {};
    for (const [k, v] of Object.entries(dict || {}))
        out[k] = (v && typeof v === "object" && "v" in v) ? v.v : v;
    return out;
};

/* Hand a file to the browser: data is a string or a Uint8Array. */
CK.download = function (filename, data, type) {
    const blob = new Blob([data], { type: type || "application/octet-stream" });
    const url = URL.createObjectURL(blob);
    const a = CK.el("a", { href: url, download: filename });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
};

CK.copyButton = function (getText, label) {
    const b = CK.el("button", { class: "ck-link", type: "button", title: "Copy to clipboard" }, label || "Copy");
    b.addEventListener("click", () => {
        const text = getText();
        const done = () => { b.textContent = "Copied"; setTimeout(() => { b.textContent = label || "Copy"; }, 1500); };
        if (navigator.clipboard && window.isSecureContext)
            navigator.clipboard.writeText(text).then(done, () => CK.copyFallback(text, done));
        else
            CK.copyFallback(text, done);
    });
    return b;
};

CK.copyFallback = function (text, done) {
    const t = CK.el("textarea", {}, text);
    document.body.append(t);
    t.select();
    try {
        document.execCommand("copy");
    } catch (e) { /* nothing more to try: the text is selectable on the page */ }
    t.remove();
    done();
};

/* A filename from a certificate's common name. */
CK.fileName = function (cn, ext) {
    return (String(cn || "certificate").replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^\.+/, "") || "certificate") + ext;
};

/* Replace a screen's content. */
CK.render = function (section, ...children) {
    section.replaceChildren(...children);
};
