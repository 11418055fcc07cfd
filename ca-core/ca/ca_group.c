#include <pthread.h>

#include "ca_group.h"

/*
 * Group commit. Every issuance commits twice: its reservation (before keyd signs) and the signed
 * certificate with its audit entry, whose chain lock is held through the COMMIT and its flush to
 * disk, so that one runs one request at a time. So a request queues its database work in a
 * group; if no request is working for that group, it leads: it takes what is queued (its own
 * among it) and does it all in one transaction on its own connection (db_cert_reserve_many,
 * db_cert_store_many: one round trip and one flush for all reservations; one statement, two round
 * trips and one flush for all stores; each alone when one of them fails), then hands the lead on.
 * Requests that arrive meanwhile make up the next group. Nothing waits for company: a request
 * alone goes at once. Stores have one leader at a time (the chain lock would serialise more);
 * reservations CA_RESERVE_LEADERS, so that they also overlap when requests are few. Each
 * certificate is still committed before keyd signs it, and no answer is sent before its
 * certificate's commit.
 *
 * Each waiting request sleeps on its own condition variable, and a leader wakes exactly the
 * requests it finished and, when requests are still queued, the oldest of them to lead next.
 * (One shared condition variable woke every waiting event loop after each group, and most of
 * them only went back to sleep: wake-ups are dear on a virtual machine.)
 */
void ca_group_init(struct ca_group *g, int max_leading)
{
	pthread_mutex_init(&g->mu, NULL);
	g->head = NULL;
	g->tail = &g->head;
	g->leading = 0;
	g->max_leading = max_leading;
}

void ca_group_destroy(struct ca_group *g)
{
	pthread_mutex_destroy(&g->mu);
}

void ca_group_do(struct ca_group *g, struct db *db, struct ca_group_job *job,
                 void (*run)(struct db *db, struct ca_group_job **jobs, size_t n, void *arg),
                 void *arg)
{
	struct ca_group_job *jobs[CA_GROUP_MAX];
	size_t n;

	pthread_cond_init(&job->cv, NULL);
	pthread_mutex_lock(&g->mu);
	job->next = NULL;
	job->done = 0;
	*g->tail = job;
	g->tail = &job->next;
	while (!job->done) {
		if (g->leading >= g->max_leading || !g->head) {
			pthread_cond_wait(&job->cv, &g->mu);
			continue;
		}
		g->leading++;
		for (n = 0; g->head && n < CA_GROUP_MAX; n++) {
			jobs[n] = g->head;
			g->head = g->head->next;
		}
		if (!g->head)
			g->tail = &g->head;
		pthread_mutex_unlock(&g->mu);
		run(db, jobs, n, arg);
		pthread_mutex_lock(&g->mu);
		g->leading--;
		/* A finished job's waiter returns (and its job goes) once we let go of the
		 * mutex: nothing of it is touched after the signal. */
		for (size_t i = 0; i < n; i++) {
			jobs[i]->done = 1;
			if (jobs[i] != job)
				pthread_cond_signal(&jobs[i]->cv);
		}
		if (g->head && g->head != job)
			pthread_cond_signal(&g->head->cv); /* the next to lead */
	}
	pthread_mutex_unlock(&g->mu);
	pthread_cond_destroy(&job->cv);
}
