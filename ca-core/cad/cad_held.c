/* Requests answered later: see "requests answered later" in cad_internal.h. */
#include <stdio.h>
#include <sys/queue.h>

#include "cad_internal.h"

int cad_held_init(struct cad_held *h, const struct cad_req *r, event_callback_fn cb, void *arg)
{
	h->next = NULL;
	h->r.cad = r->cad;
	h->r.w = r->w;
	h->r.req = r->req;
	h->r.action = r->action;
	snprintf(h->r.path, sizeof(h->r.path), "%s", r->path);
	TAILQ_INIT(&h->r.query);
	h->ev = event_new(r->w->base, -1, 0, cb, arg);
	return h->ev ? 0 : -1;
}

void cad_held_push(struct cad_held_list *l, struct cad_held *h)
{
	h->next = l->head;
	l->head = h;
}

void cad_held_add(struct cad_held_list *l, struct cad_held *h)
{
	pthread_mutex_lock(&l->mu);
	cad_held_push(l, h);
	pthread_mutex_unlock(&l->mu);
}

void cad_held_unlink(struct cad_held_list *l, struct cad_held *h)
{
	pthread_mutex_lock(&l->mu);
	for (struct cad_held **q = &l->head; *q; q = &(*q)->next)
		if (*q == h) {
			*q = h->next;
			break;
		}
	pthread_mutex_unlock(&l->mu);
}

struct cad_held *cad_held_take(struct cad_held_list *l, const struct cad *cad)
{
	struct cad_held *h, **q, *mine = NULL;

	pthread_mutex_lock(&l->mu);
	for (q = &l->head; (h = *q);)
		if (h->r.cad == cad) {
			*q = h->next;
			h->next = mine;
			mine = h;
		} else {
			q = &h->next;
		}
	pthread_mutex_unlock(&l->mu);
	return mine;
}
