/* Fuzz keyd's frame splitter (hsm/keyd/keyd_frames.h): what a peer writes to keyd's socket,
 * cut into frames as hsmca-keyd cuts it. Input: one byte choosing the body limit, four bytes
 * seeding the sizes of the pieces the rest arrives in, then the bytes of the connection.
 *
 * Checked: whole frames are contiguous from the start, each inside the buffer with a body of
 * 1..limit bytes as its header says; consumed never passes the length; MORE says what the begun
 * frame needs, BAD names a header that is zero or over the limit and stays BAD. The same bytes
 * fed in pieces, with what is left of a frame kept at the front of the buffer as keyd keeps it,
 * give the same frames and end the same way as fed at once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyd_frames.h"
#include "keyd_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct frame {
	size_t off; /* of the body in the whole stream */
	uint32_t len;
};

struct outcome {
	struct frame *f;
	size_t n;
	int end;        /* KEYD_SPLIT_MORE or KEYD_SPLIT_BAD */
	size_t pending; /* MORE: the bytes kept for the next frame */
	size_t need;
	char why[sizeof(((struct keyd_split *)0)->why)];
};

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Split buf[0..len) as far as it goes, checking each step; frames are recorded at base + off. */
static int split_checked(const uint8_t *buf, size_t len, uint32_t limit, size_t base,
                         struct outcome *o, struct keyd_split *s)
{
	size_t end = 0; /* where the last frame ended: the next one starts there */
	int rc;

	keyd_split_init(s, buf, len, limit);
	while ((rc = keyd_split_next(s)) == KEYD_SPLIT_FRAME) {
		if (s->body_off != end + KEYD_FRAME_HDR || s->body_len == 0 ||
		    s->body_len > limit || s->body_off + s->body_len != s->consumed ||
		    s->consumed > len || be32(buf + end) != s->body_len)
			abort();
		end = s->consumed;
		o->f[o->n].off = base + s->body_off;
		o->f[o->n].len = s->body_len;
		o->n++;
	}
	if (s->consumed != end)
		abort();
	if (rc == KEYD_SPLIT_MORE) {
		size_t left = len - s->consumed;
		if (left < KEYD_FRAME_HDR ? s->need != 0
		                          : s->need <= left || s->need - KEYD_FRAME_HDR > limit ||
		                                s->need - KEYD_FRAME_HDR != be32(buf + s->consumed))
			abort();
	} else {
		uint32_t n;
		if (rc != KEYD_SPLIT_BAD || !s->why[0] || len - s->consumed < KEYD_FRAME_HDR)
			abort();
		n = be32(buf + s->consumed);
		if (n != 0 && n <= limit)
			abort();
		if (keyd_split_next(s) != KEYD_SPLIT_BAD) /* it stays refused */
			abort();
	}
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome one = {0}, many = {0};
	struct keyd_split s;
	const uint8_t *in;
	uint8_t *acc;
	uint32_t limit, seed;
	size_t len, got = 0, kept = 0, base = 0, i;
	int rc = KEYD_SPLIT_MORE;

	if (size < 5)
		return 0;
	/* small limits reach "over the limit" with short inputs; 0xff is keyd's own */
	limit = data[0] == 0xff ? KEYD_FRAME_MAX : 1u + data[0];
	seed = be32(data + 1) | 1u;
	in = data + 5;
	len = size - 5;
	/* at most one frame per 5 bytes */
	one.f = malloc((len / 5 + 1) * sizeof(*one.f));
	many.f = malloc((len / 5 + 1) * sizeof(*many.f));
	acc = malloc(len + 1);
	if (!one.f || !many.f || !acc)
		abort();

	/* at once */
	one.end = split_checked(in, len, limit, 0, &one, &s);
	one.pending = len - s.consumed;
	one.need = s.need;
	memcpy(one.why, s.why, sizeof(one.why));

	/* in pieces of 1..64 bytes, what is left of a frame moved to the front as keyd does */
	keyd_split_init(&s, acc, 0, limit);
	while (got < len && rc == KEYD_SPLIT_MORE) {
		size_t piece;
		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		piece = 1 + seed % 64;
		if (piece > len - got)
			piece = len - got;
		memcpy(acc + kept, in + got, piece);
		got += piece;
		kept += piece;
		rc = split_checked(acc, kept, limit, base, &many, &s);
		if (rc == KEYD_SPLIT_MORE) {
			memmove(acc, acc + s.consumed, kept - s.consumed);
			base += s.consumed;
			kept -= s.consumed;
		}
	}
	many.end = rc;
	many.pending = kept;
	many.need = s.need;
	memcpy(many.why, s.why, sizeof(many.why));

	if (one.n != many.n || one.end != many.end)
		abort();
	for (i = 0; i < one.n; i++)
		if (one.f[i].off != many.f[i].off || one.f[i].len != many.f[i].len)
			abort();
	if (one.end == KEYD_SPLIT_MORE && (one.pending != many.pending || one.need != many.need))
		abort();
	if (one.end == KEYD_SPLIT_BAD && strcmp(one.why, many.why) != 0)
		abort();
	free(acc);
	free(one.f);
	free(many.f);
	return 0;
}
