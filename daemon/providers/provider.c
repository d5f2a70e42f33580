/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <glib.h>

#include "helper-run.h"
#include "provider.h"

void provider_result_done(ProviderResult *r) {
        if (!r)
                return;
        free(r->certificate_pem);
        X509_free(r->certificate);
        free(r->chain_pem);
        free(r->cookie);
        free(r->error);
        *r = (ProviderResult) { .outcome = 0 };
}

Provider *provider_free(Provider *p) {
        /* The provider's own free() releases everything, p->name and p included. */
        if (p)
                p->ops->free(p);
        return NULL;
}

void provider_cancel_all(void) {
        helper_run_cancel_all();
}

bool provider_cancelled(void) {
        return helper_run_cancelled();
}
