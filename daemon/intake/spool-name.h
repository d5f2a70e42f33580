/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1: the names of the spool (DESIGN.md, "Spool directory"): which entries of incoming/
 * are CSRs, the names of their results, and which names may become an order's SpoolName (a
 * D-Bus string). Pure functions, any thread; fuzzed by tests/fuzz/fuzz-bus-strings.c. */

#include <stdbool.h>

/* The longest NAME in NAME.csr: issued/NAME.chain.pem must still fit in NAME_MAX. */
#define SPOOL_NAME_MAX 240U

/* NAME.csr, not starting with '.': what the spool takes. */
bool spool_name_is_csr(const char *name);

/* "NAME" of "NAME.csr" with another suffix (".crt", ".conf", ...). */
char *spool_name_with_suffix(const char *name, const char *suffix);

/* The failure report for NAME.csr: NAME.error where that fits in a file name, else (NAME over
 * NAME_MAX - 6 bytes, refused for its length) the first SPOOL_NAME_MAX bytes of NAME, '~', the
 * first 8 hex digits of the SHA-256 of NAME.csr and ".error": every refused file gets one. */
char *spool_error_name(const char *name);

/* Why NAME.csr cannot become an order (too long for its results, not UTF-8), as the rest of a
 * sentence starting with the name; NULL when it can. A name this accepts is valid UTF-8. */
char *spool_name_refusal(const char *name);

/* A file name or error text as one printable line (control characters become spaces). */
char *spool_one_line(const char *s);
