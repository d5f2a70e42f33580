/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1: Prometheus's text exposition format, written to a file atomically. A
 * MetricsText streams into a temporary file in the target's directory (through a buffer,
 * so 100,000 certificates never sit in memory twice), and metrics_text_commit() makes it
 * 0644 (node_exporter runs as another user), fsyncs it, renames it over the target and
 * fsyncs the directory: a reader sees the old file or the new one, never a part.
 * Usable from any thread (one writer per object). */

#include <stdio.h>

#include "macro.h"

typedef struct MetricsText MetricsText;

/* path: the final file (DIR/certkeeper.prom); the temporary file is DIR/.NAME.XXXXXX (not
 * matching *.prom, so node_exporter never reads it). */
int metrics_text_open(const char *path, MetricsText **ret);
/* Drops an uncommitted file. */
MetricsText *metrics_text_free(MetricsText *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(MetricsText *, metrics_text_free)

/* "# HELP NAME HELP\n# TYPE NAME TYPE\n" */
void metrics_text_family(MetricsText *t, const char *name, const char *type, const char *help);
/* Raw text, as is (metric names, '{', '=', ...). */
void metrics_text_append(MetricsText *t, const char *s, size_t n);
void metrics_text_puts(MetricsText *t, const char *s);
void metrics_text_u64(MetricsText *t, uint64_t v);
/* name="value" (with a leading ',' unless first), the value escaped as the format demands:
 * \ " and newline as \\ \" \n; bytes that are not UTF-8 become U+FFFD. */
void metrics_text_label(MetricsText *t, bool first, const char *name, const char *value);
/* "} VALUE\n" with VALUE an integer (first of all: "NAME VALUE\n" for an unlabelled one,
 * use metrics_text_sample). */
void metrics_text_end_u64(MetricsText *t, uint64_t v);
void metrics_text_sample(MetricsText *t, const char *name, uint64_t v);

/* Flush, fchmod 0644, fsync, rename, fsync the directory. The first error of any write
 * before is returned here. */
int metrics_text_commit(MetricsText *t);

/* The escaping of metrics_text_label() alone, for tests: a new string. */
char *metrics_escape_label_value(const char *value);
