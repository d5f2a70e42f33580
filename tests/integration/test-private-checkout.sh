#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The suite does not depend on where the checkout lives. Here the source and
# build trees are seen through a directory only root may enter (as a clone in
# /root, mode 0700, is), and a scenario that runs certkeeperctl, call.py and
# certkeeperd as other users (test-unprivileged) runs from there under its own
# harness: it must pass, because lib.sh stages what other users run into the
# harness's world-readable run directory.

source "$(dirname "$0")/lib.sh"

PRIV=$CK_RUN/private
mkdir -p "$PRIV/src" "$PRIV/build" && chmod 0700 "$PRIV" || ck_bail "cannot make $PRIV"
# Read-only bind mounts: should anything remove $CK_RUN while they are in
# place, it meets EROFS instead of the checkout.
ro_bind() {
        mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" && return 0
        umount "$2" 2>/dev/null
        return 1
}
trap 'umount "$PRIV/build" "$PRIV/src" 2>/dev/null' EXIT
ro_bind "$CK_SOURCE_ROOT" "$PRIV/src" || ck_bail "cannot bind-mount the source tree read-only"
ro_bind "$CK_BUILD_ROOT" "$PRIV/build" || ck_bail "cannot bind-mount the build tree read-only"

# (Through env: setpriv itself manages to exec it, runuser and every program
# ck-user runs cannot.)
ck_check_fails "ck-user cannot run certkeeperctl from the private checkout (the case this covers)" \
        ck_as ck-user /usr/bin/env "$PRIV/build/tools/certkeeperctl" --version
ck_check_fails "nor read its call.py" ck_as ck-user cat "$PRIV/src/tests/integration/call.py"
ck_check "the staged certkeeperctl runs as ck-user" ck_as ck-user "$CERTKEEPERCTL" --version

out=$(cd "$PRIV/build" && env -u CK_RUN -u DBUS_SYSTEM_BUS_ADDRESS CK_SOURCE_ROOT="$PRIV/src" \
        CK_BUILD_ROOT="$PRIV/build" CERTKEEPERD="$PRIV/build/daemon/certkeeperd" \
        CERTKEEPERCTL="$PRIV/build/tools/certkeeperctl" "$PRIV/src/tests/harness/with-services.sh" --tap --services=polkit \
        "$PRIV/src/tests/integration/test-unprivileged.sh" 2>&1)
rc=$?
ck_check "test-unprivileged passes from the private checkout (exit $rc)" test "$rc" = 0 || ck_diag "$out"
ck_check "and it ran its checks" bash -c "[ \"\$(grep -c '^ok ' <<<\"\$0\")\" -ge 10 ]" "$out"
ck_check "none failed" bash -c "! grep -q '^not ok' <<<\"\$0\"" "$out" || ck_diag "$out"
ck_done
