/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <pthread.h>
#include <sys/eventfd.h>

#include "jobs.h"
#include "log.h"

typedef struct Job {
        JobRunFunc run;
        JobDoneFunc done;
        JobDestroyFunc destroy;
        void *userdata;
        struct Job *next;
} Job;

typedef struct JobQueue {
        Job *head, *tail;
} JobQueue;

struct JobPool {
        char *name;
        sd_event_source *source;
        int efd;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        JobQueue todo, finished;
        bool stopping;
        pthread_t *threads;
        unsigned n_threads;
        unsigned in_flight; /* loop thread only */
        JobBatchFunc batch;
        void *batch_userdata;
};

static void queue_push(JobQueue *q, Job *j) {
        j->next = NULL;
        if (q->tail)
                q->tail->next = j;
        else
                q->head = j;
        q->tail = j;
}

static Job *queue_pop(JobQueue *q) {
        Job *j = q->head;
        if (j) {
                q->head = j->next;
                if (!q->head)
                        q->tail = NULL;
        }
        return j;
}

static void *worker(void *arg) {
        JobPool *p = arg;

        for (;;) {
                pthread_mutex_lock(&p->lock);
                while (!p->todo.head && !p->stopping)
                        pthread_cond_wait(&p->cond, &p->lock);
                if (p->stopping) {
                        pthread_mutex_unlock(&p->lock);
                        return NULL;
                }
                Job *j = queue_pop(&p->todo);
                pthread_mutex_unlock(&p->lock);

                j->run(j->userdata);

                pthread_mutex_lock(&p->lock);
                bool was_empty = !p->finished.head;
                queue_push(&p->finished, j);
                pthread_mutex_unlock(&p->lock);

                /* One wake-up per batch is enough: the loop drains everything. */
                if (was_empty) {
                        uint64_t one = 1;
                        if (write(p->efd, &one, sizeof one) < 0 && errno != EAGAIN)
                                log_warning_errno(errno, "Cannot wake the loop: %m, ignoring.");
                }
        }
}

static int on_finished(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        JobPool *p = userdata;
        uint64_t v;

        (void) read(p->efd, &v, sizeof v);

        pthread_mutex_lock(&p->lock);
        Job *list = p->finished.head;
        p->finished.head = p->finished.tail = NULL;
        pthread_mutex_unlock(&p->lock);

        if (!list)
                return 0;

        if (p->batch)
                p->batch(p->batch_userdata, true);
        while (list) {
                Job *j = list;
                list = j->next;
                p->in_flight--;
                j->done(j->userdata);
                free(j);
        }
        if (p->batch)
                p->batch(p->batch_userdata, false);
        return 0;
}

int job_pool_new(sd_event *e, const char *name, unsigned n_threads, JobPool **ret) {
        JobPool *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->efd = -EBADF;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->cond, NULL);
        p->name = strdup(name);

        if (n_threads == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);
                n_threads = n > 0 ? (unsigned) n : 2;
        }

        p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (p->efd < 0) {
                int r = -errno;
                job_pool_free(p);
                return r;
        }
        int r = sd_event_add_io(e, &p->source, p->efd, EPOLLIN, on_finished, p);
        if (r < 0) {
                job_pool_free(p);
                return r;
        }
        (void) sd_event_source_set_description(p->source, name);

        p->threads = calloc(n_threads, sizeof(pthread_t));
        if (!p->threads || !p->name) {
                job_pool_free(p);
                return -ENOMEM;
        }
        for (unsigned i = 0; i < n_threads; i++) {
                r = pthread_create(&p->threads[i], NULL, worker, p);
                if (r != 0) {
                        job_pool_free(p);
                        return -r;
                }
                p->n_threads++;
                char tn[32];
                snprintf(tn, sizeof tn, "ck-%.6s-%u", name, i % 100U);
                tn[15] = 0; /* the kernel takes 15 characters */
                (void) pthread_setname_np(p->threads[i], tn);
        }

        *ret = p;
        return 0;
}

JobPool *job_pool_free(JobPool *p) {
        if (!p)
                return NULL;

        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        for (unsigned i = 0; i < p->n_threads; i++)
                pthread_join(p->threads[i], NULL);

        /* Jobs that never ran or never reached the loop are dropped: orders are
         * durable and resume on restart. Their userdata is owned by whoever
         * submitted them. */
        Job *j;
        while ((j = queue_pop(&p->todo)) || (j = queue_pop(&p->finished))) {
                if (j->destroy)
                        j->destroy(j->userdata);
                free(j);
        }

        sd_event_source_disable_unref(p->source);
        if (p->efd >= 0)
                close(p->efd);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->cond);
        free(p->threads);
        free(p->name);
        free(p);
        return NULL;
}

void job_pool_set_batch(JobPool *p, JobBatchFunc batch, void *userdata) {
        p->batch = batch;
        p->batch_userdata = userdata;
}

int job_pool_submit(JobPool *p, JobRunFunc run, JobDoneFunc done, JobDestroyFunc destroy, void *userdata) {
        Job *j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->run = run;
        j->done = done;
        j->destroy = destroy;
        j->userdata = userdata;

        pthread_mutex_lock(&p->lock);
        queue_push(&p->todo, j);
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
        p->in_flight++;
        return 0;
}

unsigned job_pool_in_flight(JobPool *p) {
        return p->in_flight;
}

unsigned job_pool_threads(JobPool *p) {
        return p->n_threads;
}
