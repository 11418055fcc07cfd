/* Splitting a connection's bytes into keyd frames (keyd_frames.h). */
#include "keyd_frames.h"

#include <stdio.h>
#include <string.h>

void keyd_split_init(struct keyd_split *s, const uint8_t *buf, size_t len, uint32_t limit)
{
	memset(s, 0, sizeof(*s));
	s->buf = buf;
	s->len = len;
	s->limit = limit;
}

int keyd_split_next(struct keyd_split *s)
{
	const uint8_t *h;
	uint32_t n;
	size_t left;

	if (s->why[0])
		return KEYD_SPLIT_BAD;
	s->body_off = 0;
	s->body_len = 0;
	s->need = 0;
	left = s->len - s->consumed;
	if (left < KEYD_FRAME_HDR)
		return KEYD_SPLIT_MORE;
	h = s->buf + s->consumed;
	n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	if (n == 0) {
		snprintf(s->why, sizeof(s->why), "frame length 0 outside 1..%u (an empty frame)",
		         s->limit);
		return KEYD_SPLIT_BAD;
	}
	if (n > s->limit) {
		snprintf(s->why, sizeof(s->why), "frame length %u outside 1..%u (over the limit)",
		         n, s->limit);
		return KEYD_SPLIT_BAD;
	}
	if (left - KEYD_FRAME_HDR < n) {
		s->need = KEYD_FRAME_HDR + (size_t)n;
		return KEYD_SPLIT_MORE;
	}
	s->body_off = s->consumed + KEYD_FRAME_HDR;
	s->body_len = n;
	s->consumed = s->body_off + n;
	return KEYD_SPLIT_FRAME;
}
