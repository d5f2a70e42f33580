/* The page's only peer: org.certkeeper1 on the system bus, through cockpit.dbus.
 * Tracks whether the daemon runs (the "owner" of the name) and whether polkit
 * lets this user act (read-only mode with the reason). */
"use strict";

CK.NAME = "org.certkeeper1";
CK.ROOT = "/org/certkeeper1";
CK.MANAGER = "org.certkeeper1.Manager";
CK.CERTIFICATE = "org.certkeeper1.Certificate";
CK.ORDER = "org.certkeeper1.Order";
CK.DEPLOYMENT = "org.certkeeper1.Deployment";

CK.client = cockpit.dbus(CK.NAME, { bus: "system" });
CK.daemonRunning = null;       /* null: not known yet */
CK.readOnlyReason = null;      /* a sentence when polkit refuses this user */
CK.listeners = { daemon: [], readonly: [] };

CK.on = function (what, fn) {
    CK.listeners[what].push(fn);
};

CK.emit = function (what, ...args) {
    for (const fn of CK.listeners[what])
        fn(...args);
};

CK.setDaemonRunning = function (running) {
    if (running === CK.daemonRunning)
        return;
    CK.daemonRunning = running;
    CK.emit("daemon", running);
};

CK.client.addEventListener("owner", (event, owner) => CK.setDaemonRunning(!!owner));

CK.isAccessDenied = function (err) {
    return !!err && (err.name === "org.freedesktop.DBus.Error.AccessDenied" ||
                     err.name === "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired");
};

CK.isDaemonGone = function (err) {
    return !!err && (err.name === "org.freedesktop.DBus.Error.ServiceUnknown" ||
                     err.name === "org.freedesktop.DBus.Error.NameHasNoOwner" ||
                     err.name === "org.freedesktop.DBus.Error.NoReply" ||
                     err.problem === "disconnected");
};

CK.setReadOnly = function (reason) {
    if (CK.readOnlyReason === reason)
        return;
    CK.readOnlyReason = reason;
    CK.emit("readonly", reason);
};

/* A human sentence for a D-Bus error, with the certkeeper error's own text. */
CK.errorText = function (err) {
    if (!err)
        return "Unknown error";
    const name = String(err.name || "").replace(/^org\.certkeeper1\.Error\./, "");
    if (CK.isAccessDenied(err))
        return "Not authorized: " + (err.message || "polkit refused this action");
    if (CK.isDaemonGone(err))
        return "The certkeeper daemon is not running.";
    return (err.message || name || String(err)) + (name && err.message && !err.message.includes(name) ? " (" + name + ")" : "");
};

/* call(path, iface, method, args) → Promise of the reply's values. A write
 * (opts.write) lets polkit ask interactively through Cockpit's agent; its
 * AccessDenied puts the page into read-only mode with the reason. */
CK.call = function (path, iface, method, args, opts) {
    const options = {};
    if (opts && opts.write)
        options.flags = "i"; /* ALLOW_INTERACTIVE_AUTHORIZATION */
    if (opts && opts.type)
        options.type = opts.type;
    return new Promise((resolve, reject) => {
        CK.client.call(path, iface, method, args || [], options)
            .then(reply => {
                CK.setDaemonRunning(true);
                resolve(reply);
            })
            .catch(err => {
                if (CK.isDaemonGone(err))
                    CK.setDaemonRunning(false);
                /* dbus-daemon's own refusals ("Rejected send message") are a
                 * bus policy problem, not this user's permissions. */
                if (opts && opts.write && CK.isAccessDenied(err) && !/^Rejected send message/.test(err.message || ""))
                    CK.setReadOnly("polkit refuses certkeeper's actions for this user (" + CK.errorText(err) +
                                   "); ask an administrator, or log in as one.");
                reject(err);
            });
    });
};

CK.manager = function (method, args, opts) {
    return CK.call(CK.ROOT, CK.MANAGER, method, args, opts);
};

CK.getProperty = function (path, iface, name) {
    return CK.call(path, "org.freedesktop.DBus.Properties", "Get", [iface, name])
        .then(reply => reply[0].v);
};

CK.getAll = function (path, iface) {
    return CK.call(path, "org.freedesktop.DBus.Properties", "GetAll", [iface])
        .then(reply => CK.unvariant(reply[0]));
};

/* Signals of the daemon: fn(member, path, args). */
CK.subscribe = function (fn) {
    CK.client.subscribe({ path_namespace: CK.ROOT }, (path, iface, member, args) => fn(member, path, args, iface));
};

/* Whether this user may act. Root may; anyone else may if Cockpit says they
 * are an administrator (polkit will then ask through Cockpit's agent). Actions
 * that polkit refuses anyway switch to read-only at the first refusal. */
CK.checkPermission = function () {
    cockpit.user().then(user => {
        CK.user = user;
        if (user.id === 0)
            return;
        const perm = cockpit.permission({ admin: true });
        const decide = () => {
            if (perm.allowed === false)
                CK.setReadOnly("You are logged in as " + user.name + ", whom polkit does not allow to order, " +
                               "export, revoke or acknowledge certificates; everything can be read. " +
                               "Log in as an administrator to act.");
        };
        perm.addEventListener("changed", decide);
        decide();
    });
};

/* Mark an action button as needing write access: disabled with the reason in read-only mode. */
CK.writeButtons = [];
CK.writeAction = function (button) {
    button.classList.add("ck-write");
    CK.writeButtons.push(button);
    CK.applyReadOnly(button);
    return button;
};

CK.applyReadOnly = function (button) {
    if (CK.readOnlyReason) {
        button.disabled = true;
        button.title = CK.readOnlyReason;
    }
};

CK.on("readonly", () => {
    CK.writeButtons = CK.writeButtons.filter(b => b.isConnected);
    CK.writeButtons.forEach(CK.applyReadOnly);
});
