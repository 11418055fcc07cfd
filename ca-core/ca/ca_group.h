/* Group commit inside the CA core (ca_group.c): database work that requests queue, done by
 * one leader for all of them in one transaction. */
#ifndef HSMCA_CA_GROUP_H
#define HSMCA_CA_GROUP_H

#include <pthread.h>
#include <stddef.h>

#include "ca.h"

/* The most jobs one leader takes at once. */
#define CA_GROUP_MAX 32

/* A queued piece of work; embed it first in the job's own struct. */
struct ca_group_job {
	struct ca_group_job *next;
	int done;
	pthread_cond_t cv; /* its waiter's own: woken when done, or to lead */
};

void ca_group_init(struct ca_group *g, int max_leading);
void ca_group_destroy(struct ca_group *g);
/* Queue job and return when it is done: by this thread as the leader (run over the group,
 * without the lock, on db), or by another. */
void ca_group_do(struct ca_group *g, struct db *db, struct ca_group_job *job,
                 void (*run)(struct db *db, struct ca_group_job **jobs, size_t n, void *arg),
                 void *arg);

#endif
