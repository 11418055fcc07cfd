/* Requests answered later: see "requests answered later" in cad_internal.h. */
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>

#include "cad_internal.h"

/* What answering or serving a request again needs, from src into dst (the rest of dst as
 * the caller left it). */
static void req_copy(struct cad_req *dst, const struct cad_req *src)
{
	dst->cad = src->cad;
	dst->w = src->w;
	dst->req = src->req;
	dst->action = src->action;
	snprintf(dst->path, sizeof(dst->path), "%s", src->path);
	TAILQ_INIT(&dst->query);
}

int cad_held_init(struct cad_held *h, const struct cad_req *r, event_callback_fn cb, void *arg)
{
	h->next = NULL;
	req_copy(&h->r, r);
	h->ev = event_new(r->w->base, -1, 0, cb, arg);
	return h->ev ? 0 : -1;
}

void cad_held_request(const struct cad_held *h, struct cad_req *r)
{
	memset(r, 0, sizeof(*r));
	req_copy(r, &h->r);
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
