/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <glib.h>

#include "provider.h"

void provider_result_done(ProviderResult *r) {
        if (!r)
                return;
        g_free(r->certificate_pem);
        X509_free(r->certificate);
        g_free(r->chain_pem);
        g_free(r->cookie);
        g_free(r->error);
        *r = (ProviderResult) { 0 };
}

Provider *provider_free(Provider *p) {
        if (!p)
                return NULL;
        char *name = p->name;
        if (p->ops->free)
                p->ops->free(p);
        g_free(name);
        return NULL;
}
