/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: the built-in http-01 responder of the ACME provider. It listens on
 * the wildcard address of one port only while some order has a challenge
 * pending, answers GET /.well-known/acme-challenge/TOKEN for the published
 * tokens, and 404 for anything else. Several concurrent orders share one
 * listener: the socket is opened by the first publisher and closed when the
 * last one withdraws. Runs its own thread. */

#include "macro.h"

typedef struct AcmeResponder AcmeResponder;

AcmeResponder *acme_responder_new(unsigned port);
AcmeResponder *acme_responder_free(AcmeResponder *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(AcmeResponder *, acme_responder_free)

/* Take a reference on the listener, opening it if this is the first one.
 * Returns negative errno (e.g. -EADDRINUSE) with *ret_error. */
int acme_responder_acquire(AcmeResponder *r, char **ret_error);
/* Drop a reference; the last one closes the socket and stops the thread. */
void acme_responder_release(AcmeResponder *r);

/* Publish or withdraw one token's key authorization. Tokens must be base64url. */
int acme_responder_add(AcmeResponder *r, const char *token, const char *key_authorization);
void acme_responder_remove(AcmeResponder *r, const char *token);

/* Shared by the webroot writer: is this a token we accept (base64url, 1..256)? */
bool acme_token_is_valid(const char *token);
