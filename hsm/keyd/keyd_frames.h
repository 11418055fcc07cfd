/*
 * keyd_frames: splitting the bytes a connection has read into keyd frames (a 4-byte big-endian
 * body length, then the body: docs/keyd-protocol.md). Pure: it reads only the caller's bytes,
 * allocates nothing and keeps no state but the splitter's, so the server, its unit test and
 * its fuzz target run the same code.
 *
 *	struct keyd_split s;
 *	keyd_split_init(&s, buf, len, KEYD_FRAME_MAX);
 *	while ((rc = keyd_split_next(&s)) == KEYD_SPLIT_FRAME)
 *		use(buf + s.body_off, s.body_len);
 *	// KEYD_SPLIT_MORE: buf[s.consumed..len) is the start of a frame not yet whole;
 *	// KEYD_SPLIT_BAD: the header at buf + s.consumed is refused, s.why says why.
 */
#ifndef HSMCA_KEYD_FRAMES_H
#define HSMCA_KEYD_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#define KEYD_FRAME_HDR 4u /* the length prefix */

enum keyd_split_rc {
	KEYD_SPLIT_BAD = -1, /* a header keyd refuses: the connection is to be closed */
	KEYD_SPLIT_MORE = 0, /* no whole frame left: read more */
	KEYD_SPLIT_FRAME = 1 /* a whole frame: buf[body_off .. body_off + body_len) */
};

struct keyd_split {
	const uint8_t *buf;
	size_t len;
	uint32_t limit; /* the largest body accepted */
	/* the whole frames taken so far end here: the next frame starts at buf + consumed */
	size_t consumed;
	/* KEYD_SPLIT_FRAME: where the frame's body is */
	size_t body_off;
	uint32_t body_len;
	/* KEYD_SPLIT_MORE: the bytes the frame begun at buf + consumed takes in all, header
	 * included; 0 while its header is not whole yet */
	size_t need;
	/* KEYD_SPLIT_BAD: what is wrong with the header, for the log and the peer */
	char why[80];
};

void keyd_split_init(struct keyd_split *s, const uint8_t *buf, size_t len, uint32_t limit);

/* The next whole frame of the buffer (enum keyd_split_rc). After KEYD_SPLIT_MORE or
 * KEYD_SPLIT_BAD every further call answers the same. */
int keyd_split_next(struct keyd_split *s);

#endif
