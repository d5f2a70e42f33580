/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 3: the named errors of the D-Bus contract, in one table. */

#include <systemd/sd-bus.h>

#include "macro.h"

#define CK_ERROR_NOT_FOUND "org.certkeeper1.Error.NotFound"
#define CK_ERROR_INVALID_ARGUMENT "org.certkeeper1.Error.InvalidArgument"
#define CK_ERROR_INVALID_CSR "org.certkeeper1.Error.InvalidCSR"
#define CK_ERROR_NO_PRIVATE_KEY "org.certkeeper1.Error.NoPrivateKey"
#define CK_ERROR_ALREADY_REVOKED "org.certkeeper1.Error.AlreadyRevoked"
#define CK_ERROR_CONFIRMATION_REQUIRED "org.certkeeper1.Error.ConfirmationRequired"
#define CK_ERROR_CONFIRMATION_MISMATCH "org.certkeeper1.Error.ConfirmationMismatch"
#define CK_ERROR_CONFIRMATION_EXPIRED "org.certkeeper1.Error.ConfirmationExpired"
#define CK_ERROR_INVALID_REASON "org.certkeeper1.Error.InvalidReason"
#define CK_ERROR_PROVIDER_UNAVAILABLE "org.certkeeper1.Error.ProviderUnavailable"
/* Additions to the contract: */
#define CK_ERROR_LIMIT_EXCEEDED "org.certkeeper1.Error.LimitExceeded"
#define CK_ERROR_NOT_FAILED "org.certkeeper1.Error.NotFailed"
#define CK_ERROR_STORAGE "org.certkeeper1.Error.StorageUnavailable"

/* Registers the errno mapping of our names with sd-bus. */
extern const sd_bus_error_map certkeeper_error_map[];

/* Reply with a named error and a printf message; returns the negative errno
 * matching the name, for "return bus_error_setf(...)" in handlers. */
int bus_error_setf(sd_bus_error *error, const char *name, const char *fmt, ...) _printf_(3, 4);

/* For internal failures (store, OOM): a storage error that says what failed. */
int bus_error_internal(sd_bus_error *error, int r, const char *what);
