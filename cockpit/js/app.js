/* The page: routes (#/screen/id?query), the daemon's signals to the screen on
 * show, the not-running banner that clears itself when the daemon returns. */
"use strict";

CK.current = null;

CK.route = function () {
    const loc = cockpit.location;
    const parts = loc.path.length ? loc.path : ["overview"];
    let name = parts[0];
    if (!CK.screens[name])
        name = "overview";
    const params = new URLSearchParams(Object.entries(loc.options || {}).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v]));
    document.querySelectorAll(".ck-screen").forEach(s => { s.hidden = s.id !== "screen-" + name; });
    const tabFor = { certificate: "certificates", order: "orders" }[name] || name;
    document.querySelectorAll("#tabs a").forEach(a => a.classList.toggle("ck-active", a.dataset.screen === tabFor));
    CK.current = { name, section: document.getElementById("screen-" + name), params, id: parts[1] };
    CK.screens[name].show(CK.current.section, params, parts[1]);
};

/* Redraw the screen on show (debounced: a burst of signals is one redraw). */
CK.refreshTimer = null;
CK.refreshCurrent = function () {
    clearTimeout(CK.refreshTimer);
    CK.refreshTimer = setTimeout(() => {
        CK.refreshAlertBadge();
        if (CK.current && document.getElementById("dialog-backdrop").hidden)
            CK.screens[CK.current.name].refresh(CK.current.section);
    }, 150);
};

CK.subscribe(member => {
    if (["OrderChanged", "CertificateAdded", "CertificateRevoked", "AlertRaised", "DeploymentChanged", "PropertiesChanged"].includes(member))
        CK.refreshCurrent();
});

CK.on("daemon", running => {
    document.getElementById("daemon-down").hidden = running !== false;
    document.getElementById("main").classList.toggle("ck-disabled", running === false);
    if (running) {
        CK.probeDeployments();
        CK.refreshCurrent();
    }
});

CK.on("readonly", reason => {
    document.getElementById("read-only").hidden = !reason;
    document.getElementById("read-only-reason").textContent = reason || "";
});

/* Whether the daemon runs: cockpit.dbus reports the name's owner; until it
 * does, and while it is gone, a cheap call tells (and wakes activation). */
CK.probeDaemon = function () {
    CK.getProperty(CK.ROOT, CK.MANAGER, "Version").catch(() => {});
};
setInterval(() => { if (CK.daemonRunning !== true) CK.probeDaemon(); }, 2000);

cockpit.addEventListener("locationchanged", CK.route);
CK.checkPermission();
CK.probeDaemon();
CK.probeDeployments();
CK.refreshAlertBadge();
CK.route();
