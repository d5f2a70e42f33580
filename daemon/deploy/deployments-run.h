/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2, worker side of deployments.c: one deployment of one certificate — unseal the key,
 * check that it belongs to the certificate, write the files (deploy-files.c), run the Exec.
 * Everything it needs is copied into the job on the loop; the job touches no store. */

#include <sys/types.h>

#include "keys.h"

#define DEPLOY_EXEC_OUTPUT_MAX (64U * 1024U)
#define DEPLOY_ERROR_MAX 4096U

typedef struct DeployJob {
        void *owner;                      /* Deployments */
        uint64_t deployment_id;
        uint64_t certificate_id;
        bool new_certificate;             /* not a Redeploy of what is there */
        char *name;
        char *directory;
        uid_t uid;
        gid_t gid;
        mode_t key_mode;
        const MasterKey *master_key;
        uint8_t *sealed_key;
        size_t sealed_key_len;
        uint8_t *der;
        size_t der_len;
        char *chain_pem;
        char **exec;                      /* empty: none */
        unsigned exec_timeout_sec;
        char **env;                       /* for the Exec */
        char **units;                     /* ReloadUnits, done by the loop after the job */
        uint64_t not_before, not_after;

        /* Results. */
        int r;
        char *error;
} DeployJob;

DeployJob *deploy_job_free(DeployJob *j);
void deploy_job_run(void *userdata);
