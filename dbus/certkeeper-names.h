/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The names of the D-Bus contract (DESIGN.md), shared by certkeeperd and
 * certkeeperctl so that neither can drift from the other.
 * dbus/org.certkeeper1.xml is the interface itself. */

#define CK_BUS_NAME "org.certkeeper1"
#define CK_ROOT_PATH "/org/certkeeper1"
#define CK_MANAGER_PATH CK_ROOT_PATH
#define CK_CERT_PREFIX "/org/certkeeper1/certificate"   /* + "/<id>" */
#define CK_ORDER_PREFIX "/org/certkeeper1/order"        /* + "/<id>" */
#define CK_DEPLOYMENT_PREFIX "/org/certkeeper1/deployment" /* + "/<id>" */

#define CK_MANAGER_IFACE "org.certkeeper1.Manager"
#define CK_ORDER_IFACE "org.certkeeper1.Order"
#define CK_CERTIFICATE_IFACE "org.certkeeper1.Certificate"
#define CK_CERT_IFACE CK_CERTIFICATE_IFACE
#define CK_DEPLOYMENT_IFACE "org.certkeeper1.Deployment"

#define CK_ERROR_PREFIX "org.certkeeper1.Error."
#define CK_ERROR_NOT_FOUND CK_ERROR_PREFIX "NotFound"
#define CK_ERROR_INVALID_ARGUMENT CK_ERROR_PREFIX "InvalidArgument"
#define CK_ERROR_INVALID_CSR CK_ERROR_PREFIX "InvalidCSR"
#define CK_ERROR_NO_PRIVATE_KEY CK_ERROR_PREFIX "NoPrivateKey"
#define CK_ERROR_ALREADY_REVOKED CK_ERROR_PREFIX "AlreadyRevoked"
#define CK_ERROR_CONFIRMATION_REQUIRED CK_ERROR_PREFIX "ConfirmationRequired"
#define CK_ERROR_CONFIRMATION_MISMATCH CK_ERROR_PREFIX "ConfirmationMismatch"
#define CK_ERROR_CONFIRMATION_EXPIRED CK_ERROR_PREFIX "ConfirmationExpired"
#define CK_ERROR_INVALID_REASON CK_ERROR_PREFIX "InvalidReason"
#define CK_ERROR_PROVIDER_UNAVAILABLE CK_ERROR_PREFIX "ProviderUnavailable"
#define CK_ERROR_EXISTS CK_ERROR_PREFIX "Exists"
#define CK_ERROR_READ_ONLY CK_ERROR_PREFIX "ReadOnly"
/* Additions to the contract: */
#define CK_ERROR_LIMIT_EXCEEDED CK_ERROR_PREFIX "LimitExceeded"
#define CK_ERROR_NOT_FAILED CK_ERROR_PREFIX "NotFailed"
#define CK_ERROR_STORAGE CK_ERROR_PREFIX "StorageUnavailable"
