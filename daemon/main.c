/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "log.h"

int main(int argc, char *argv[]) {
        log_info("certkeeperd skeleton");
        return 0;
}
