/* hsmca-keyd wire protocol: strict encoding and decoding of frames. */
#include "keyd_proto.h"

#include <string.h>

const char *keyd_op_name(int op)
{
	switch (op) {
	case KEYD_OP_HELLO:
		return "hello";
	case KEYD_OP_LIST_KEYS:
		return "list-keys";
	case KEYD_OP_GET_PUBKEY:
		return "get-public-key";
	case KEYD_OP_SIGN:
		return "sign";
	case KEYD_OP_STATUS:
		return "status";
	case KEYD_OP_GENERATE:
		return "generate";
	case KEYD_OP_WRAP:
		return "wrap";
	case KEYD_OP_UNWRAP:
		return "unwrap";
	case KEYD_OP_METRICS:
		return "metrics";
	case KEYD_OP_SIGN_DATA:
		return "sign-data";
	case KEYD_OP_UNSEAL:
		return "unseal";
	case KEYD_OP_SEAL:
		return "seal";
	case KEYD_OP_QUORUM:
		return "quorum-status";
	}
	return "unknown";
}

static const char *const kind_names[] = {
    "digest", "certificate", "ca-certificate", "crl", "ocsp-response", "csr", "audit-checkpoint",
};

const char *keyd_kind_name(int kind)
{
	return kind >= 0 && kind <= KEYD_KIND_MAX_ ? kind_names[kind] : "unknown";
}

int keyd_kind_from_name(const char *name)
{
	for (int k = 0; k <= KEYD_KIND_MAX_; k++)
		if (strcmp(kind_names[k], name) == 0)
			return k;
	return -1;
}

const char *keyd_status_name(int status)
{
	static const char *const names[] = {
	    "ok",      "malformed", "version", "denied",   "no-key", "bad-algorithm", "busy",
	    "offline", "hsm",       "exists",  "internal", "sealed", "share",
	};
	if (status >= 0 && status <= KEYD_E_MAX_)
		return names[status];
	if (status == 100)
		return "unreachable";
	if (status == 101)
		return "protocol";
	return "unknown";
}

const char *keyd_alg_name(int alg)
{
	switch (alg) {
	case KEYD_ALG_RSA_PKCS1:
		return "rsa-pkcs1";
	case KEYD_ALG_RSA_PSS:
		return "rsa-pss";
	case KEYD_ALG_ECDSA:
		return "ecdsa";
	}
	return "unknown";
}

const char *keyd_hash_name(int hash)
{
	switch (hash) {
	case KEYD_HASH_SHA256:
		return "sha256";
	case KEYD_HASH_SHA384:
		return "sha384";
	case KEYD_HASH_SHA512:
		return "sha512";
	}
	return "unknown";
}

size_t keyd_hash_len(int hash)
{
	switch (hash) {
	case KEYD_HASH_SHA256:
		return 32;
	case KEYD_HASH_SHA384:
		return 48;
	case KEYD_HASH_SHA512:
		return 64;
	}
	return 0;
}

int keyd_label_valid(const char *label)
{
	size_t n = 0;

	for (const char *s = label; *s; s++, n++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return n >= 1 && n <= KEYD_LABEL_MAX;
}

static const struct {
	uint32_t mech;
	const char *name, *use;
} mech_table[KEYD_NMECHS] = {
    {0x0000, "CKM_RSA_PKCS_KEY_PAIR_GEN", "RSA key generation"},
    {0x0001, "CKM_RSA_PKCS", "RSA PKCS#1 v1.5 signatures"},
    {0x000d, "CKM_RSA_PKCS_PSS", "RSA-PSS signatures"},
    {0x1040, "CKM_EC_KEY_PAIR_GEN", "EC key generation"},
    {0x1041, "CKM_ECDSA", "ECDSA signatures"},
    {0x1080, "CKM_AES_KEY_GEN", "AES key generation (wrap keys)"},
    {0x1087, "CKM_AES_GCM", "wrap and unwrap"},
};

const uint32_t keyd_mechs[KEYD_NMECHS] = {0x0000, 0x0001, 0x000d, 0x1040, 0x1041, 0x1080, 0x1087};

const char *keyd_mech_name(uint32_t mech)
{
	for (size_t i = 0; i < KEYD_NMECHS; i++)
		if (mech_table[i].mech == mech)
			return mech_table[i].name;
	return NULL;
}

const char *keyd_mech_use(uint32_t mech)
{
	for (size_t i = 0; i < KEYD_NMECHS; i++)
		if (mech_table[i].mech == mech)
			return mech_table[i].use;
	return NULL;
}

int keyd_status_retryable(int status)
{
	return status == KEYD_E_BUSY || status == KEYD_E_OFFLINE || status == KEYD_E_SEALED ||
	       status == 100;
}

int keyd_frame_len(const uint8_t hdr[4], uint32_t *body_len)
{
	uint32_t n =
	    (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];

	if (n == 0 || n > KEYD_FRAME_MAX)
		return -1;
	*body_len = n;
	return 0;
}

/* ---- writer ---- */

static void put(struct keyd_wbuf *w, const void *p, size_t n)
{
	if (w->err || n > w->cap - w->len) {
		w->err = 1;
		return;
	}
	if (n)
		memcpy(w->p + w->len, p, n);
	w->len += n;
}

void keyd_put_u8(struct keyd_wbuf *w, uint8_t v)
{
	put(w, &v, 1);
}

void keyd_put_u16(struct keyd_wbuf *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	put(w, b, 2);
}

void keyd_put_u32(struct keyd_wbuf *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	put(w, b, 4);
}

void keyd_put_u64(struct keyd_wbuf *w, uint64_t v)
{
	keyd_put_u32(w, (uint32_t)(v >> 32));
	keyd_put_u32(w, (uint32_t)v);
}

void keyd_put_blob(struct keyd_wbuf *w, const void *p, size_t n)
{
	if (n > UINT16_MAX) {
		w->err = 1;
		return;
	}
	keyd_put_u16(w, (uint16_t)n);
	put(w, p, n);
}

void keyd_put_str(struct keyd_wbuf *w, const char *s)
{
	keyd_put_blob(w, s, strlen(s));
}

static size_t frame_begin(struct keyd_wbuf *w)
{
	size_t at = w->len;
	keyd_put_u32(w, 0);
	return at;
}

static int frame_end(struct keyd_wbuf *w, size_t at)
{
	size_t body;

	if (w->err)
		return -1;
	body = w->len - at - 4;
	if (body == 0 || body > KEYD_FRAME_MAX) {
		w->err = 1;
		return -1;
	}
	w->p[at] = (uint8_t)(body >> 24);
	w->p[at + 1] = (uint8_t)(body >> 16);
	w->p[at + 2] = (uint8_t)(body >> 8);
	w->p[at + 3] = (uint8_t)body;
	return 0;
}

int keyd_req_encode(const struct keyd_req *req, struct keyd_wbuf *w)
{
	size_t at = frame_begin(w);

	keyd_put_u8(w, req->op);
	keyd_put_u32(w, req->id);
	switch (req->op) {
	case KEYD_OP_HELLO:
		keyd_put_u16(w, req->vmin);
		keyd_put_u16(w, req->vmax);
		break;
	case KEYD_OP_LIST_KEYS:
	case KEYD_OP_STATUS:
	case KEYD_OP_METRICS:
	case KEYD_OP_SEAL:
	case KEYD_OP_QUORUM:
		break;
	case KEYD_OP_UNSEAL:
		if (req->share_len == 0 || req->share_len > KEYD_SHARE_MAX || !req->share)
			w->err = 1;
		else
			keyd_put_blob(w, req->share, req->share_len);
		break;
	case KEYD_OP_GET_PUBKEY:
		keyd_put_str(w, req->label);
		break;
	case KEYD_OP_SIGN:
		keyd_put_str(w, req->label);
		keyd_put_u8(w, req->alg);
		keyd_put_u8(w, req->hash);
		keyd_put_u16(w, req->salt_len);
		if (req->digest_len > KEYD_DIGEST_MAX)
			w->err = 1;
		else
			keyd_put_blob(w, req->digest, req->digest_len);
		break;
	case KEYD_OP_SIGN_DATA:
		keyd_put_str(w, req->label);
		keyd_put_u8(w, req->alg);
		keyd_put_u8(w, req->hash);
		keyd_put_u16(w, req->salt_len);
		keyd_put_u8(w, req->flags);
		if (req->sdata_len > KEYD_CHUNK_MAX || (req->sdata_len && !req->sdata))
			w->err = 1;
		else
			keyd_put_blob(w, req->sdata, req->sdata_len);
		break;
	case KEYD_OP_GENERATE:
		keyd_put_str(w, req->label);
		keyd_put_u8(w, req->keytype);
		keyd_put_u16(w, req->keyparam);
		break;
	case KEYD_OP_WRAP:
	case KEYD_OP_UNWRAP:
		keyd_put_str(w, req->label);
		if (req->data_len > KEYD_WRAP_BLOB_MAX)
			w->err = 1;
		else
			keyd_put_blob(w, req->data, req->data_len);
		break;
	default:
		w->err = 1;
	}
	return frame_end(w, at);
}

/* Responses are built in place: begin reserves the length, end patches it. */
void keyd_resp_begin(struct keyd_wbuf *w, uint8_t op, uint32_t id, uint8_t status)
{
	(void)frame_begin(w);
	keyd_put_u8(w, op);
	keyd_put_u32(w, id);
	keyd_put_u8(w, status);
}

int keyd_resp_end(struct keyd_wbuf *w)
{
	return frame_end(w, 0);
}

int keyd_resp_error(struct keyd_wbuf *w, uint8_t op, uint32_t id, uint8_t status, const char *msg)
{
	char m[KEYD_MSG_MAX + 1];

	/* Messages are printable ASCII, bounded: they end up in logs. */
	size_t i;
	for (i = 0; msg[i] && i < KEYD_MSG_MAX; i++)
		m[i] = (msg[i] >= 0x20 && msg[i] < 0x7f) ? msg[i] : '?';
	m[i] = 0;
	w->len = 0;
	w->err = 0;
	keyd_resp_begin(w, op, id, status);
	keyd_put_str(w, m);
	return keyd_resp_end(w);
}

void keyd_put_keyinfo(struct keyd_wbuf *w, const struct keyd_keyinfo *ki)
{
	keyd_put_str(w, ki->label);
	keyd_put_u8(w, ki->type);
	keyd_put_u16(w, ki->bits);
	keyd_put_u8(w, ki->flags);
	keyd_put_blob(w, ki->spki, ki->spki_len);
}

void keyd_put_status(struct keyd_wbuf *w, const struct keyd_token_status *st)
{
	keyd_put_u8(w, st->online);
	keyd_put_str(w, st->token);
	keyd_put_u32(w, st->keys);
	keyd_put_u32(w, st->workers);
	keyd_put_u32(w, st->queue_depth);
	keyd_put_u32(w, st->queue_max);
	keyd_put_u32(w, st->reinits);
	keyd_put_u64(w, st->signs_ok);
	keyd_put_u64(w, st->signs_failed);
	keyd_put_u64(w, st->requests_denied);
}

void keyd_put_caps(struct keyd_wbuf *w, const struct keyd_token_caps *caps)
{
	keyd_put_u8(w, caps->have);
	keyd_put_u32(w, caps->token_flags);
	keyd_put_u32(w, caps->max_sessions);
	keyd_put_u8(w, caps->hw_major);
	keyd_put_u8(w, caps->hw_minor);
	keyd_put_u8(w, caps->fw_major);
	keyd_put_u8(w, caps->fw_minor);
	keyd_put_str(w, caps->manufacturer);
	keyd_put_str(w, caps->model);
	keyd_put_u8(w, caps->nmechs);
	for (unsigned i = 0; i < caps->nmechs && i < KEYD_CAPS_MECH_MAX; i++) {
		keyd_put_u32(w, caps->mechs[i].mech);
		keyd_put_u32(w, caps->mechs[i].min_size);
		keyd_put_u32(w, caps->mechs[i].max_size);
		keyd_put_u32(w, caps->mechs[i].flags);
	}
}

void keyd_put_quorum(struct keyd_wbuf *w, const struct keyd_quorum_status *q)
{
	keyd_put_u8(w, q->activation);
	keyd_put_u8(w, q->sealed);
	keyd_put_u8(w, q->presented);
	keyd_put_u8(w, q->threshold);
	keyd_put_u8(w, q->total);
	keyd_put_str(w, q->expected);
}

/* ---- reader ---- */

static const uint8_t *take(struct keyd_rbuf *r, size_t n)
{
	const uint8_t *p;

	if (r->err || n > r->len - r->off) {
		r->err = 1;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

static uint8_t get_u8(struct keyd_rbuf *r)
{
	const uint8_t *p = take(r, 1);
	return p ? p[0] : 0;
}

static uint16_t get_u16(struct keyd_rbuf *r)
{
	const uint8_t *p = take(r, 2);
	return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

static uint32_t get_u32(struct keyd_rbuf *r)
{
	const uint8_t *p = take(r, 4);
	return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

static uint64_t get_u64(struct keyd_rbuf *r)
{
	uint64_t hi = get_u32(r);
	return hi << 32 | get_u32(r);
}

static const uint8_t *get_blob(struct keyd_rbuf *r, size_t *n)
{
	*n = get_u16(r);
	return take(r, *n);
}

/* A string field: no NUL bytes, at most max bytes, copied NUL-terminated. */
static int get_str(struct keyd_rbuf *r, char *out, size_t max)
{
	size_t n;
	const uint8_t *p = get_blob(r, &n);

	if (!p || n > max || memchr(p, 0, n)) {
		r->err = 1;
		out[0] = 0;
		return -1;
	}
	memcpy(out, p, n);
	out[n] = 0;
	return 0;
}

static int get_label(struct keyd_rbuf *r, char *out)
{
	if (get_str(r, out, KEYD_LABEL_MAX) || !keyd_label_valid(out)) {
		r->err = 1;
		return -1;
	}
	return 0;
}

int keyd_req_decode(const uint8_t *body, size_t len, struct keyd_req *req, const char **why)
{
	struct keyd_rbuf r = {body, len, 0, 0};
	const uint8_t *d;

	memset(req, 0, sizeof(*req));
	req->op = get_u8(&r);
	req->id = get_u32(&r);
	if (r.err) {
		*why = "frame shorter than its header";
		return -1;
	}
	switch (req->op) {
	case KEYD_OP_HELLO:
		req->vmin = get_u16(&r);
		req->vmax = get_u16(&r);
		if (!r.err && req->vmin > req->vmax) {
			*why = "hello: minimum version above maximum";
			return -1;
		}
		break;
	case KEYD_OP_LIST_KEYS:
	case KEYD_OP_STATUS:
	case KEYD_OP_METRICS:
	case KEYD_OP_SEAL:
	case KEYD_OP_QUORUM:
		break;
	case KEYD_OP_UNSEAL:
		req->share = get_blob(&r, &req->share_len);
		if (!r.err && (req->share_len == 0 || req->share_len > KEYD_SHARE_MAX)) {
			*why = "unseal: the share must be 1..1024 bytes";
			return -1;
		}
		break;
	case KEYD_OP_GET_PUBKEY:
		if (get_label(&r, req->label)) {
			*why = "bad key label";
			return -1;
		}
		break;
	case KEYD_OP_SIGN:
		if (get_label(&r, req->label)) {
			*why = "bad key label";
			return -1;
		}
		req->alg = get_u8(&r);
		req->hash = get_u8(&r);
		req->salt_len = get_u16(&r);
		d = get_blob(&r, &req->digest_len);
		if (r.err)
			break;
		if (req->alg < KEYD_ALG_RSA_PKCS1 || req->alg > KEYD_ALG_ECDSA) {
			*why = "sign: unknown algorithm";
			return -1;
		}
		if (keyd_hash_len(req->hash) == 0) {
			*why = "sign: unknown hash";
			return -1;
		}
		if (req->digest_len != keyd_hash_len(req->hash)) {
			*why = "sign: digest length does not match the hash";
			return -1;
		}
		if (req->alg != KEYD_ALG_RSA_PSS && req->salt_len != 0) {
			*why = "sign: salt length given for a non-PSS algorithm";
			return -1;
		}
		memcpy(req->digest, d, req->digest_len);
		break;
	case KEYD_OP_SIGN_DATA:
		if (get_label(&r, req->label)) {
			*why = "bad key label";
			return -1;
		}
		req->alg = get_u8(&r);
		req->hash = get_u8(&r);
		req->salt_len = get_u16(&r);
		req->flags = get_u8(&r);
		req->sdata = get_blob(&r, &req->sdata_len);
		if (r.err)
			break;
		if (req->alg < KEYD_ALG_RSA_PKCS1 || req->alg > KEYD_ALG_ECDSA) {
			*why = "sign-data: unknown algorithm";
			return -1;
		}
		if (keyd_hash_len(req->hash) == 0) {
			*why = "sign-data: unknown hash";
			return -1;
		}
		if (req->alg != KEYD_ALG_RSA_PSS && req->salt_len != 0) {
			*why = "sign-data: salt length given for a non-PSS algorithm";
			return -1;
		}
		if (req->flags & ~(KEYD_SD_MORE | KEYD_SD_CONT)) {
			*why = "sign-data: unknown flags";
			return -1;
		}
		if (req->sdata_len == 0 || req->sdata_len > KEYD_CHUNK_MAX) {
			*why = "sign-data: data of 0 bytes or more than one chunk";
			return -1;
		}
		break;
	case KEYD_OP_GENERATE:
		if (get_label(&r, req->label)) {
			*why = "bad key label";
			return -1;
		}
		req->keytype = get_u8(&r);
		req->keyparam = get_u16(&r);
		if (r.err)
			break;
		if (req->keytype == KEYD_KEY_RSA) {
			if (req->keyparam != 2048 && req->keyparam != 3072 &&
			    req->keyparam != 4096) {
				*why = "generate: RSA size must be 2048, 3072 or 4096";
				return -1;
			}
		} else if (req->keytype == KEYD_KEY_EC) {
			if (req->keyparam != KEYD_CURVE_P256 && req->keyparam != KEYD_CURVE_P384) {
				*why = "generate: EC curve must be P-256 or P-384";
				return -1;
			}
		} else if (req->keytype == KEYD_KEY_AES) {
			if (req->keyparam != 256) {
				*why = "generate: AES size must be 256";
				return -1;
			}
		} else {
			*why = "generate: unknown key type";
			return -1;
		}
		break;
	case KEYD_OP_WRAP:
	case KEYD_OP_UNWRAP:
		if (get_label(&r, req->label)) {
			*why = "bad key label";
			return -1;
		}
		d = get_blob(&r, &req->data_len);
		if (r.err)
			break;
		if (req->op == KEYD_OP_WRAP &&
		    (req->data_len == 0 || req->data_len > KEYD_WRAP_DATA_MAX)) {
			*why = "wrap: the secret must be 1..512 bytes";
			return -1;
		}
		if (req->op == KEYD_OP_UNWRAP &&
		    (req->data_len <= KEYD_WRAP_OVERHEAD || req->data_len > KEYD_WRAP_BLOB_MAX)) {
			*why = "unwrap: the wrapped blob has an impossible length";
			return -1;
		}
		memcpy(req->data, d, req->data_len);
		break;
	default:
		*why = "unknown operation";
		return -1;
	}
	if (r.err) {
		*why = "field runs past the end of the frame";
		return -1;
	}
	if (r.off != r.len) {
		*why = "trailing bytes after the request";
		return -1;
	}
	return 0;
}

static int get_keyinfo(struct keyd_rbuf *r, struct keyd_keyinfo *ki)
{
	int ok;

	memset(ki, 0, sizeof(*ki));
	if (get_label(r, ki->label))
		return -1;
	ki->type = get_u8(r);
	ki->bits = get_u16(r);
	ki->flags = get_u8(r);
	ki->spki = get_blob(r, &ki->spki_len);
	/* RSA and EC keys carry their public key; AES keys have none. */
	if (ki->type == KEYD_KEY_RSA || ki->type == KEYD_KEY_EC)
		ok = ki->spki_len > 0 && ki->spki_len <= KEYD_SPKI_MAX;
	else
		ok = ki->type == KEYD_KEY_AES && ki->spki_len == 0;
	if (r->err || !ok) {
		r->err = 1;
		return -1;
	}
	return 0;
}

/* Printable ASCII only: the CLI prints these. */
static void get_text(struct keyd_rbuf *r, char *out)
{
	if (get_str(r, out, KEYD_CAPS_TEXT_MAX) == 0)
		for (const char *c = out; *c; c++)
			if (*c < 0x20 || *c > 0x7e)
				r->err = 1;
}

static void get_caps(struct keyd_rbuf *r, struct keyd_token_caps *caps)
{
	caps->present = 1;
	caps->have = get_u8(r);
	caps->token_flags = get_u32(r);
	caps->max_sessions = get_u32(r);
	caps->hw_major = get_u8(r);
	caps->hw_minor = get_u8(r);
	caps->fw_major = get_u8(r);
	caps->fw_minor = get_u8(r);
	get_text(r, caps->manufacturer);
	get_text(r, caps->model);
	caps->nmechs = get_u8(r);
	if (r->err || caps->have > (KEYD_CAPS_TOKEN_INFO | KEYD_CAPS_MECHS) ||
	    caps->nmechs > KEYD_CAPS_MECH_MAX ||
	    (caps->nmechs && !(caps->have & KEYD_CAPS_MECHS))) {
		r->err = 1;
		return;
	}
	for (unsigned i = 0; i < caps->nmechs && !r->err; i++) {
		caps->mechs[i].mech = get_u32(r);
		caps->mechs[i].min_size = get_u32(r);
		caps->mechs[i].max_size = get_u32(r);
		caps->mechs[i].flags = get_u32(r);
	}
}

int keyd_list_next(struct keyd_rbuf *r, struct keyd_keyinfo *ki)
{
	if (r->off >= r->len)
		return 0;
	return get_keyinfo(r, ki) == 0 ? 1 : 0;
}

int keyd_resp_decode(const uint8_t *body, size_t len, struct keyd_resp *resp, const char **why)
{
	struct keyd_rbuf r = {body, len, 0, 0};
	struct keyd_keyinfo ki;

	memset(resp, 0, sizeof(*resp));
	resp->op = get_u8(&r);
	resp->id = get_u32(&r);
	resp->status = get_u8(&r);
	if (r.err) {
		*why = "frame shorter than its header";
		return -1;
	}
	if (resp->op < KEYD_OP_HELLO || resp->op > KEYD_OP_MAX_) {
		*why = "unknown operation";
		return -1;
	}
	if (resp->status != KEYD_OK) {
		if (resp->status > KEYD_E_MAX_) {
			*why = "unknown status";
			return -1;
		}
		get_str(&r, resp->msg, KEYD_MSG_MAX);
		goto done;
	}
	switch (resp->op) {
	case KEYD_OP_HELLO:
		resp->version = get_u16(&r);
		get_str(&r, resp->server, KEYD_NAME_MAX);
		break;
	case KEYD_OP_LIST_KEYS:
		resp->nkeys = get_u16(&r);
		resp->keys = r.p + r.off;
		resp->keys_len = r.len - r.off;
		for (unsigned i = 0; i < resp->nkeys && !r.err; i++)
			get_keyinfo(&r, &ki);
		break;
	case KEYD_OP_GET_PUBKEY:
	case KEYD_OP_GENERATE:
		get_keyinfo(&r, &resp->key);
		break;
	case KEYD_OP_SIGN:
		resp->sig = get_blob(&r, &resp->sig_len);
		if (!r.err && (resp->sig_len == 0 || resp->sig_len > KEYD_SIG_MAX))
			r.err = 1;
		break;
	case KEYD_OP_SIGN_DATA:
		/* Empty: a frame of data taken in, more to come. */
		resp->sig = get_blob(&r, &resp->sig_len);
		if (!r.err && resp->sig_len > KEYD_SIG_MAX)
			r.err = 1;
		break;
	case KEYD_OP_WRAP:
	case KEYD_OP_UNWRAP:
		resp->sig = get_blob(&r, &resp->sig_len);
		if (!r.err && (resp->sig_len == 0 || resp->sig_len > KEYD_WRAP_BLOB_MAX))
			r.err = 1;
		break;
	case KEYD_OP_METRICS:
		/* Text only: printable ASCII, tabs and newlines. */
		resp->sig = get_blob(&r, &resp->sig_len);
		if (!r.err && (resp->sig_len == 0 || resp->sig_len > KEYD_METRICS_MAX))
			r.err = 1;
		for (size_t i = 0; !r.err && i < resp->sig_len; i++)
			if ((resp->sig[i] < 0x20 || resp->sig[i] > 0x7e) && resp->sig[i] != '\n' &&
			    resp->sig[i] != '\t')
				r.err = 1;
		break;
	case KEYD_OP_UNSEAL:
	case KEYD_OP_SEAL:
	case KEYD_OP_QUORUM:
		resp->q.activation = get_u8(&r);
		resp->q.sealed = get_u8(&r);
		resp->q.presented = get_u8(&r);
		resp->q.threshold = get_u8(&r);
		resp->q.total = get_u8(&r);
		get_str(&r, resp->q.expected, KEYD_EXPECTED_MAX);
		if (!r.err &&
		    (resp->q.activation < 1 || resp->q.activation > 2 || resp->q.sealed > 1 ||
		     resp->q.presented > resp->q.total || resp->q.threshold > resp->q.total))
			r.err = 1;
		/* Custodian names (A-Z a-z 0-9 . _ -) joined by ", ": nothing else is printed. */
		for (const char *c = resp->q.expected; !r.err && *c; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			      (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-' ||
			      *c == ',' || *c == ' '))
				r.err = 1;
		break;
	case KEYD_OP_STATUS:
		resp->st.online = get_u8(&r);
		get_str(&r, resp->st.token, KEYD_NAME_MAX);
		resp->st.keys = get_u32(&r);
		resp->st.workers = get_u32(&r);
		resp->st.queue_depth = get_u32(&r);
		resp->st.queue_max = get_u32(&r);
		resp->st.reinits = get_u32(&r);
		resp->st.signs_ok = get_u64(&r);
		resp->st.signs_failed = get_u64(&r);
		resp->st.requests_denied = get_u64(&r);
		/* Version 3 appends the token's capabilities; 1 and 2 end here. */
		if (!r.err && r.off < r.len)
			get_caps(&r, &resp->st.caps);
		break;
	}
done:
	if (r.err) {
		*why = "field runs past the end of the frame or is out of range";
		return -1;
	}
	if (r.off != r.len) {
		*why = "trailing bytes after the response";
		return -1;
	}
	return 0;
}
