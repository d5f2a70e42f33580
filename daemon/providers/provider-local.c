/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The built-in Local PKI CA as a provider: signs on a worker thread with the
 * CA key held in memory. */

#include <glib.h>

#include "ca.h"
#include "log.h"
#include "provider.h"

typedef struct LocalProvider {
        Provider base;
        const Ca *ca;
        unsigned default_validity_days;
        char *chain_pem; /* the CA certificate: the whole chain of a local leaf */
} LocalProvider;

static int local_issue(Provider *p, const ProviderRequest *req, ProviderResult *ret) {
        LocalProvider *lp = (LocalProvider *) p;
        _cleanup_free_ char *err = NULL;
        X509 *leaf = NULL;

        LeafRequest lr = {
                .common_name = req->common_name,
                .dns_names = req->dns_names,
                .csr = req->pkey ? NULL : req->csr,
                .pkey = req->pkey,
                .validity_days = req->validity_days ? req->validity_days : lp->default_validity_days,
                .now = now_usec(),
        };
        int r = ca_sign_leaf(lp->ca, &lr, &leaf, &err);
        if (r < 0) {
                ret->outcome = PROVIDER_REJECTED;
                ret->error = g_strdup_printf("Local PKI could not sign: %s", err ? err : strerror(-r));
                return 0;
        }
        ret->outcome = PROVIDER_ISSUED;
        ret->certificate = leaf;
        ret->chain_pem = g_strdup(lp->chain_pem);
        return 0;
}

static char *local_identify(Provider *p) {
        LocalProvider *lp = (LocalProvider *) p;
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new(BIO_s_mem());
        char *data = NULL;
        long len;

        /* RFC 2253, as the Issuer of every certificate and certkeeperctl status print it,
         * not OpenSSL's "/O=…/CN=…". */
        if (!bio || X509_NAME_print_ex(bio, X509_get_subject_name(lp->ca->cert), 0, XN_FLAG_RFC2253) < 0)
                return g_strdup("Local PKI CA");
        len = BIO_get_mem_data(bio, &data);
        return g_strdup_printf("Local PKI CA %.*s", (int) MAX(len, 0), data ? data : "");
}

static void local_free(Provider *p) {
        LocalProvider *lp = (LocalProvider *) p;
        g_free(lp->chain_pem);
        g_free(lp->base.name);
        g_free(lp);
}

static const ProviderOps local_ops = {
        .order_type = "local-pki",
        .needs_csr = false,
        .can_issue_inline = true,
        .local_ca = true,
        .issue = local_issue,
        .revoke = NULL, /* our own CRL is the propagation: revocation.c handles it */
        .identify = local_identify,
        .free = local_free,
};

int provider_local_new(const Ca *ca, unsigned default_validity_days, Provider **ret) {
        LocalProvider *lp = g_new0(LocalProvider, 1);
        lp->base.ops = &local_ops;
        lp->base.name = g_strdup("local");
        lp->ca = ca;
        lp->default_validity_days = default_validity_days;
        lp->chain_pem = x509_to_pem(ca->cert);
        if (!lp->chain_pem) {
                provider_free(&lp->base);
                return -ENOMEM;
        }
        *ret = &lp->base;
        return 0;
}
