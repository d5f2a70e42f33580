/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2 (data only): the audit events: name, fixed journal MESSAGE_ID, and the catalog text.
 * This one table feeds audit.c and the generator of policy/certkeeper.catalog.
 * MESSAGE_IDs never change once released: tools filter on them. */

#define AUDIT_EVENTS(X)                                                                                      \
        X(REQUEST_AUTOMATED_SUBMITTED, "certificate.request_automated.submitted",                           \
          "d053b01c3ffe44ed91a0520182473c8e", "Certificate requested",                                      \
          "A caller asked certkeeperd to generate a key and obtain a certificate for it. The order "        \
          "is recorded and will be processed by the provider named in the entry.")                          \
        X(REQUEST_CSR_SUBMITTED, "certificate.request_csr.submitted", "4f383149b13348818e0679617d98ca44",   \
          "Certificate signing request submitted",                                                          \
          "A caller submitted a certificate signing request over D-Bus or through the spool directory. "    \
          "The private key stays with the caller.")                                                         \
        X(VIEW_ACCESSED, "certificate.view.accessed", "35c2e68af142492480a86b97decb5b7a",                   \
          "Certificate details viewed", "A caller read the detail view of a certificate.")                 \
        X(DOWNLOAD_SUCCESS, "certificate.download.success", "11eddd8dfb6f43b5acd5422cc41dc51c",             \
          "Certificate downloaded", "A caller downloaded a certificate (PEM), possibly with its chain.")    \
        X(DOWNLOAD_PFX_SUCCESS, "certificate.download_pfx.success", "e7e1e5eeef14480ebf63e25dd437bfda",     \
          "Certificate and private key exported",                                                           \
          "A caller exported a certificate together with its private key as a password-protected "          \
          "PKCS#12 file. The password was handed to the caller once and is not recorded anywhere.")        \
        X(REVOKE_REQUESTED, "certificate.revoke.requested", "2d6d2a2e2dda420e9232826c59cc4487",             \
          "Certificate revocation requested",                                                               \
          "A caller asked for a confirmation code to revoke a certificate. The code is valid for five "     \
          "minutes and is not recorded.")                                                                   \
        X(REVOKE_SUCCESS, "certificate.revoke.success", "7eee25288710440ca92250934dfdc7e0",                 \
          "Certificate revoked",                                                                            \
          "A certificate was revoked with the reason given in CERTKEEPER_REASON. Revocation is "            \
          "permanent. Certificates of the Local PKI appear on its CRL from now on.")                        \
        X(POLICY_HARD_FAIL, "certificate.policy_hard_fail", "5531d5f039584ceca9fbcb4678ae986f",             \
          "Certificate request blocked by policy",                                                          \
          "A request violated an issuance policy rule enforced as hard (CERTKEEPER_POLICY names the "       \
          "rule). The order failed; an alert was raised.")                                                  \
        X(POLICY_SOFT_FAIL, "certificate.policy_soft_fail", "603e3614152344849bdfb50436e58a0e",             \
          "Certificate request violates policy (warning)",                                                  \
          "A request violated an issuance policy rule enforced as soft (CERTKEEPER_POLICY names the "       \
          "rule). The order proceeds as requested; the warning is kept on the order.")                      \
        X(ISSUED, "certificate.issued", "96abf6c704a640ecb09760403946fe74", "Certificate issued",           \
          "An order completed and its certificate was added to the inventory.")                             \
        X(ORDER_FAILED, "certificate.order_failed", "0ed58dc475614c83b46cecf2a30bd970",                     \
          "Certificate order failed",                                                                       \
          "An order failed; the order's Error property and CERTKEEPER_REASON say why. An alert was "        \
          "raised. A failed order can be resubmitted with the same parameters.")                            \
        X(EXPIRING, "certificate.expiring", "16c4a88fffc44f559a17955761c10c97", "Certificate expiring",     \
          "A certificate in the inventory crossed an expiry threshold. Renew or replace it before it "      \
          "expires.")                                                                                       \
        X(DEPLOYMENT_CREATED, "certificate.deployment.created", "1ae5d4f9bb1e419d8e5c12aaf6496c7a",         \
          "Deployment created",                                                                             \
          "A deployment was created (over D-Bus, or from a file in deployments.d/, CERTKEEPER_DEPLOYMENT "  \
          "names it). certkeeperd orders its first certificate at once, keeps it renewed and writes it "    \
          "into the deployment's directory.")                                                               \
        X(DEPLOYMENT_DELETED, "certificate.deployment.deleted", "ade0bb6e28e944c298f98c08b09c330d",         \
          "Deployment deleted",                                                                             \
          "A deployment was deleted, or its file in deployments.d/ removed. Its certificates stay in the "  \
          "inventory; its files stay on disk unless their removal was asked for.")                          \
        X(RENEWAL_SUBMITTED, "certificate.renewal.submitted", "dd32f65e9dd74c10be1a6cb2423f2602",           \
          "Certificate renewal ordered",                                                                    \
          "A deployment ordered a certificate: its first one, a scheduled renewal, a retry or a renewal "   \
          "an administrator asked for. CERTKEEPER_ORDER_ID names the order.")                               \
        X(DEPLOYED, "certificate.deployed", "c5b0ad700f8141a68ac48d956032eb25", "Certificate deployed",     \
          "A deployment's certificate and key were written atomically into its directory and its "          \
          "actions (Exec, ReloadUnits) succeeded.")                                                          \
        X(RENEWAL_FAILED, "certificate.renewal_failed", "c5310f1fa8bd4f2b8d4b38493f5fbfb9",                 \
          "Certificate renewal failed",                                                                     \
          "A deployment's order failed (CERTKEEPER_REASON says why). The deployment is retrying with a "   \
          "growing delay (its NextAttemptAt property says when) and an alert was raised; the certificate "  \
          "deployed so far stays in place.")                                                                \
        X(DEPLOY_FAILED, "certificate.deploy_failed", "00a217eabcb34ca08d6f05868f5b5960",                   \
          "Certificate deployment failed",                                                                  \
          "Writing a deployment's files or running its actions (Exec, ReloadUnits) failed "                 \
          "(CERTKEEPER_REASON says why). It is retried without a new certificate; an alert was raised.")  \
        X(DEPLOYMENT_PAUSED, "certificate.deployment.paused", "3d35c679cc0f47f8a3849fb9c8b5c89b", "Deployment paused",      \
          "An administrator paused a deployment: it orders, renews and deploys nothing until it is "         \
          "resumed. Its certificate keeps expiring meanwhile.")                                               \
        X(DEPLOYMENT_RESUMED, "certificate.deployment.resumed", "674a5bb47d0f401d8a0accc085d55c0a", "Deployment resumed",   \
          "An administrator resumed a paused deployment; what became due meanwhile happens now.")

typedef enum AuditEvent {
#define AUDIT_EVENT_ENUM(id, name, mid, title, text) AUDIT_##id,
        AUDIT_EVENTS(AUDIT_EVENT_ENUM)
#undef AUDIT_EVENT_ENUM
        _AUDIT_EVENT_MAX,
} AuditEvent;
