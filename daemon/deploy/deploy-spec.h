/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1: what a deployment is (DESIGN.md "Deployments"): its name, and its spec read
 * from a D-Bus a{sv} or from a deployments.d/NAME.conf [Deployment] section, checked and
 * with its defaults filled in. One reader for both: a file is turned into the a{sv} first.
 * Pure but for user and group lookups (NSS). */

#include <sys/types.h>

#include "macro.h"

#include <glib.h>

#define DEPLOY_NAME_MAX 64U
#define DEPLOY_UNITS_MAX 16U
#define DEPLOY_EXEC_ARGS_MAX 64U
#define DEPLOY_EXEC_TIMEOUT_DEFAULT 60U

typedef struct DeploySpec {
        char *common_name;
        char **subject_alt_names;         /* never NULL */
        char *provider;                   /* "" = the default (local) */
        char *key_algorithm;              /* "" = the default (ec-256) */
        unsigned validity_days;           /* 0 = the provider's default */
        char *directory;                  /* absolute, canonical */
        char *owner;
        char *group;
        uid_t uid;
        gid_t gid;
        unsigned key_mode;
        unsigned renew_before_days;       /* 0 = the default rule */
        bool rotate_key;
        char **reload_units;              /* never NULL */
        char **exec;                      /* never NULL; empty = none */
        unsigned exec_timeout_sec;
} DeploySpec;

DeploySpec *deploy_spec_free(DeploySpec *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(DeploySpec *, deploy_spec_free)

/* 1–64 of [a-z0-9._-], not starting with '.'. */
bool deploy_name_valid(const char *name);

typedef struct DeploySpecDefaults {
        const char *deploy_directory;     /* [Daemon] DeployDirectory= */
        unsigned default_validity_days;   /* the lifetime RenewBeforeDays= is checked against when the
                                           * spec has no validity_days (the Local PKI's default) */
} DeploySpecDefaults;

/* spec is an a{sv} with the keys of DESIGN.md. An unknown key, a value of the wrong type or
 * a bad value: -EINVAL with *ret_error naming the key and the value. */
int deploy_spec_from_variant(const char *name, GVariant *spec, const DeploySpecDefaults *d, DeploySpec **ret,
                             char **ret_error);

/* A deployments.d file's text: one [Deployment] section. Errors name the file (origin), the key
 * and the value. *ret_variant (optional) is the a{sv} it reads as. */
int deploy_spec_from_file(const char *name, const char *origin, const char *data, size_t len,
                          const DeploySpecDefaults *d, DeploySpec **ret, GVariant **ret_variant, char **ret_error);

/* The normalised spec as an a{sv} (every key, defaults filled in): what is stored. */
GVariant *deploy_spec_to_variant(const DeploySpec *s);

/* A systemd unit name as ReloadUnits= takes it. */
bool deploy_unit_name_valid(const char *unit);
