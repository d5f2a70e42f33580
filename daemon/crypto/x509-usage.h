/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1: what a certificate's key may be used for, in the words of RFC 5280 and
 * OpenSSL: the Certificate properties KeyUsage and ExtendedKeyUsage. */

#include <openssl/x509.h>

/* The keyUsage bits set ("digitalSignature", "keyEncipherment", ...) and the extendedKeyUsage
 * purposes ("serverAuth", "clientAuth", or the dotted OID of one OpenSSL has no name for), each a
 * NULL-terminated array (empty when the extension is absent); g_strfreev() them. */
int x509_usage(X509 *x, char ***ret_key_usage, char ***ret_extended_key_usage);
/* The same from a DER certificate. */
int x509_usage_from_der(const uint8_t *der, size_t len, char ***ret_key_usage, char ***ret_extended_key_usage);
