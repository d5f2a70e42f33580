/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Prints the journal catalog of the audit events (build time helper). */

#include "audit.h"

int main(void) {
        audit_write_catalog(stdout);
        return 0;
}
