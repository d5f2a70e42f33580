/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: issuance policy. Pure: a request description in, a verdict list
 * out; no bus, no store. */

#include "config.h"

typedef struct PolicyRequest {
        const char *common_name;          /* may be NULL/"" */
        char *const *dns_names;           /* SANs, as requested (normalised or not), NULL-terminated:
                                           * DNS names, IP addresses and URIs (san_type()) */
        const char *key_algorithm;        /* pkey_describe() style: "rsa-2048", "ec-256", "rsa-1024"... */
        unsigned rsa_bits;                /* 0 unless RSA */
        unsigned validity_days;           /* effective requested validity */
} PolicyRequest;

typedef struct PolicyViolation {
        const char *rule;                 /* the config key: "AllowedDomains", "MaxValidityDays"... */
        Enforcement enforcement;
        char *message;                    /* readable, names the offending value and the limit */
        const char *detail;               /* message without its "Rule: " prefix (points into it):
                                           * for the audit record, which names the rule already */
} PolicyViolation;

typedef struct PolicyVerdict {
        PolicyViolation *violations;
        size_t n_violations;
} PolicyVerdict;

void policy_verdict_done(PolicyVerdict *v);
bool policy_verdict_is_hard_fail(const PolicyVerdict *v);

/* Evaluate every rule; each violated rule appears once (naming the first
 * offending value for list rules). */
int policy_evaluate(const PolicyConfig *p, const PolicyRequest *req, PolicyVerdict *ret);

/* Match a DNS name against a domain glob: '*' matches within one label only
 * ("*.example.com" matches "a.example.com", not "a.b.example.com" nor
 * "example.com"); case-insensitive; trailing dots ignored on both sides. A
 * wildcard name ("*.a.example.com") matches a glob only if the glob covers
 * every name it could stand for. */
bool policy_domain_match(const char *glob, const char *name);

/* Match a URI (normalised) against an AllowedURIPrefixes= entry: the prefix must end where a
 * part of the URI does ("spiffe://example.org/ns/prod" allows ".../ns/prod" and
 * ".../ns/prod/x", not ".../ns/production"), unless it ends in a delimiter ('/', ':', '?',
 * '#', '=', '&'). Case-sensitive: both are normalised (scheme and host lower-case). */
bool policy_uri_prefix_match(const char *prefix, const char *uri);

/* Check a glob from the config: returns false for empty, whitespace, or
 * characters outside [a-z0-9.*-]. */
bool policy_glob_valid(const char *glob);
