/* Certificate profiles stored in the database, versioned (docs/profiles.md, "Managing
 * profiles"): the configuration's profiles become version 1 on the first start against an
 * empty table; admins create, edit (each edit a new, immutable version), clone and switch
 * profiles off through the API; every hsmca-cad picks a change up without a restart
 * (LISTEN hsmca_profiles, and at once on the instance that made it). A profile sent to the
 * API is checked by the configuration's own parser (cad_profile_parse) and by the linter on
 * sample certificates (ca_profile_lint) before anything is stored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "cad_internal.h"
#include "log.h"

/* Bounds of a profile body, checked before it is parsed: nesting, strings, list and map
 * sizes. The parser bounds each field further. */
#define BODY_MAX_DEPTH 3
#define BODY_MAX_STRING 512
#define BODY_MAX_ITEMS 64

static int bounded(const json_t *v, int depth, char *err, size_t errsz)
{
	const char *key;
	json_t *e;
	size_t i;

	if (depth > BODY_MAX_DEPTH) {
		snprintf(err, errsz, "nested more than %d levels deep", BODY_MAX_DEPTH);
		return -1;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (json_object_size(v) > BODY_MAX_ITEMS) {
			snprintf(err, errsz, "an object with more than %d fields", BODY_MAX_ITEMS);
			return -1;
		}
		json_object_foreach((json_t *)v, key, e)
		{
			if (strlen(key) > 64) {
				snprintf(err, errsz, "a field name longer than 64 bytes");
				return -1;
			}
			if (bounded(e, depth + 1, err, errsz))
				return -1;
		}
		return 0;
	case JSON_ARRAY:
		if (json_array_size(v) > BODY_MAX_ITEMS) {
			snprintf(err, errsz, "a list with more than %d entries", BODY_MAX_ITEMS);
			return -1;
		}
		json_array_foreach(v, i, e) if (bounded(e, depth + 1, err, errsz)) return -1;
		return 0;
	case JSON_STRING:
		if (json_string_length(v) > BODY_MAX_STRING ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			snprintf(err, errsz, "a string longer than %d bytes or holding a NUL",
			         BODY_MAX_STRING);
			return -1;
		}
		return 0;
	case JSON_INTEGER:
	case JSON_TRUE:
	case JSON_FALSE:
		return 0;
	default:
		snprintf(err, errsz, "null and fractional numbers are not profile values");
		return -1;
	}
}

int cad_profile_from_json(struct cad_config *cfg, const json_t *body, struct ca_profile *p,
                          char *err, size_t errsz)
{
	struct yconf y;
	char *text = NULL;
	int rc = -1;

	memset(p, 0, sizeof(*p));
	if (!json_is_object(body)) {
		snprintf(err, errsz, "a profile is a JSON object");
		return -1;
	}
	if (bounded(body, 0, err, errsz))
		return -1;
	/* JSON is YAML: the configuration's parser reads it, so a profile is checked the same
	 * way wherever it comes from. ENSURE_ASCII: YAML would fold U+2028 and U+0085 in a
	 * string; escaped, they stay what they are. */
	text = json_dumps(body, JSON_INDENT(1) | JSON_ENSURE_ASCII);
	if (!text || strlen(text) > DB_PROFILE_BODY_MAX) {
		snprintf(err, errsz, "a profile has at most %d bytes as JSON", DB_PROFILE_BODY_MAX);
		free(text);
		return -1;
	}
	if (yconf_load_mem(&y, "profile", text, strlen(text)) == 0 &&
	    cad_profile_parse(&y, yconf_root(&y), cfg, p) == 0) {
		rc = 0;
	} else {
		/* "profile:LINE: field: problem": the line of an API body means little. */
		const char *e = y.err, *c = strchr(e, ':');
		if (c && c[1] >= '0' && c[1] <= '9' && (c = strchr(c + 1, ':')) && c[1] == ' ')
			e = c + 2;
		snprintf(err, errsz, "%s", e[0] ? e : "the profile does not parse");
		cad_profile_clear(p);
	}
	yconf_free(&y);
	free(text);
	return rc;
}

/* --- the profiles in use --- */

/* A stored version parsed for this instance; NULL (logged) when it is not usable here. */
static struct ca_profile *parse_version(struct cad_config *cfg, const struct db_profile_version *v)
{
	struct ca_profile *p = calloc(1, sizeof(*p));
	json_t *body = json_loads(v->body, JSON_REJECT_DUPLICATES, NULL);
	char err[600];

	if (!p || !body || cad_profile_from_json(cfg, body, p, err, sizeof(err)) != 0) {
		if (p && body)
			log_warn("profile %s version %d is not usable by this hsmca-cad: %s",
			         v->name, (int)v->version, err);
		free(p);
		json_decref(body);
		return NULL;
	}
	json_decref(body);
	p->version = v->version;
	if (strcmp(p->name, v->name)) {
		log_warn("profile %s version %d names itself %s: not used", v->name,
		         (int)v->version, p->name);
		cad_profile_clear(p);
		free(p);
		return NULL;
	}
	return p;
}

/* Keep p (superseded) until cad_free. Under reg->mu. */
static void retire(struct cad_profiles *reg, struct ca_profile *p)
{
	if (reg->n_old == reg->cap_old) {
		size_t cap = reg->cap_old ? reg->cap_old * 2 : 16;
		struct ca_profile **o = realloc(reg->old, cap * sizeof(*o));
		if (!o) {
			/* Leak it rather than free what a request may still read. */
			log_error("profile %s: out of memory keeping a superseded version",
			          p->name);
			return;
		}
		reg->old = o;
		reg->cap_old = cap;
	}
	reg->old[reg->n_old++] = p;
}

static void audit_seed(struct db *db, struct cad_config *cfg, int64_t *seq, struct db_err *err,
                       enum db_status *rc)
{
	json_t *d = json_pack("{s:[], s:i, s:i}", "profiles", "old_version", 0, "new_version", 1);
	struct db_audit_entry e = {.actor = "hsmca-cad",
	                           .role = "local",
	                           .action = "profile.seed",
	                           .object = "profiles",
	                           .outcome = "success"};
	char *text;

	for (size_t i = 0; d && i < cfg->n_profiles; i++)
		json_array_append_new(json_object_get(d, "profiles"),
		                      json_string(cfg->profiles[i].name));
	text = d ? json_dumps(d, JSON_COMPACT) : NULL;
	e.detail = text ? text : "";
	*rc = db_audit_append_commit(db, &e, seq, err);
	free(text);
	json_decref(d);
}

int cad_profiles_seed(struct cad_config *cfg, struct db *db, int log_differences, char *err,
                      size_t errsz)
{
	const char *names[CAD_MAX_PROFILES], *bodies[CAD_MAX_PROFILES];
	struct db_profile_version *list = NULL;
	struct db_err derr = {0};
	enum db_status rc;
	size_t n = 0;
	int seeded = 0;
	int64_t seq;

	for (size_t i = 0; i < cfg->n_profiles; i++) {
		names[i] = cfg->profiles[i].name;
		bodies[i] = cfg->profile_json[i] ? cfg->profile_json[i] : "{}";
	}
	/* One transaction: the table lock, the check that it is empty, every version 1 and the
	 * audit entry; a second hsmca-cad starting at the same time waits and finds it full. */
	rc = db_begin(db, &derr);
	if (rc == DB_OK)
		rc = db_profiles_seed(db, names, bodies, cfg->n_profiles, "hsmca-cad configuration",
		                      &seeded, &derr);
	if (rc == DB_OK && seeded)
		audit_seed(db, cfg, &seq, &derr, &rc);
	else if (rc == DB_OK)
		rc = db_commit(db, &derr);
	if (rc != DB_OK) {
		db_rollback(db);
		snprintf(err, errsz, "storing the configuration's profiles: %s", derr.msg);
		return -1;
	}
	if (seeded)
		log_info("stored the configuration's %d profiles as version 1 (the database holds "
		         "the profiles from now on)",
		         seeded);
	if (!log_differences || seeded)
		return 0;
	/* From now on the database is the source of truth: say which profiles of the file it
	 * does not follow. */
	if (db_profile_list(db, &list, &n, &derr) != DB_OK) {
		snprintf(err, errsz, "reading the profiles: %s", derr.msg);
		return -1;
	}
	for (size_t i = 0; i < cfg->n_profiles; i++) {
		json_t *mine = json_loads(bodies[i], 0, NULL), *theirs = NULL;
		size_t j;
		for (j = 0; j < n && strcmp(list[j].name, names[i]); j++)
			;
		if (j < n)
			theirs = json_loads(list[j].body, 0, NULL);
		if (j == n)
			log_warn(
			    "configuration profile %s is not in the database: ignored (create it "
			    "through the API: the database holds the profiles)",
			    names[i]);
		else if (!mine || !theirs || !json_equal(mine, theirs))
			log_warn("configuration profile %s differs from the database's version %d: "
			         "ignored (the database holds the profiles)",
			         names[i], (int)list[j].version);
		json_decref(mine);
		json_decref(theirs);
	}
	db_profile_list_free(list, n);
	return 0;
}

int cad_profiles_sync(struct cad *cad, struct db *db, char *err, size_t errsz)
{
	struct cad_profiles *reg = &cad->profiles;
	struct db_profile_version *list = NULL;
	struct db_err derr = {0};
	size_t n = 0;
	int first;

	pthread_mutex_lock(&reg->mu);
	first = !reg->loaded;
	pthread_mutex_unlock(&reg->mu);
	if (first && cad_profiles_seed(cad->cfg, db, 1, err, errsz) != 0)
		return -1;
	if (db_profile_list(db, &list, &n, &derr) != DB_OK) {
		snprintf(err, errsz, "reading the profiles: %s", derr.msg);
		return -1;
	}
	for (size_t i = 0; i < n && i < CAD_MAX_STORED_PROFILES; i++) {
		struct ca_profile *p = NULL;
		size_t k;
		int have = 0;

		pthread_mutex_lock(&reg->mu);
		for (k = 0; k < reg->n_cur && strcmp(reg->cur[k]->name, list[i].name); k++)
			;
		have = k < reg->n_cur && reg->cur[k]->version >= list[i].version;
		pthread_mutex_unlock(&reg->mu);
		if (have || !(p = parse_version(cad->cfg, &list[i])))
			continue;
		pthread_mutex_lock(&reg->mu);
		/* Another thread may have loaded it meanwhile: the newest version wins. */
		for (k = 0; k < reg->n_cur && strcmp(reg->cur[k]->name, p->name); k++)
			;
		if (k < reg->n_cur && reg->cur[k]->version >= p->version) {
			retire(reg, p);
		} else if (k < reg->n_cur) {
			retire(reg, reg->cur[k]);
			reg->cur[k] = p;
			log_info("profile %s: version %d in use", p->name, (int)p->version);
		} else if (reg->n_cur < CAD_MAX_STORED_PROFILES) {
			reg->cur[reg->n_cur++] = p;
			if (!first)
				log_info("profile %s: version %d in use", p->name, (int)p->version);
		} else {
			retire(reg, p);
		}
		pthread_mutex_unlock(&reg->mu);
	}
	pthread_mutex_lock(&reg->mu);
	reg->loaded = 1;
	pthread_mutex_unlock(&reg->mu);
	db_profile_list_free(list, n);
	return 0;
}

struct ca_profile *cad_profile_current(struct cad *cad, struct db *db, const char *name)
{
	struct cad_profiles *reg = &cad->profiles;
	struct ca_profile *p = NULL;
	char err[600];
	int loaded;

	pthread_mutex_lock(&reg->mu);
	loaded = reg->loaded;
	pthread_mutex_unlock(&reg->mu);
	if (!loaded && db && cad_profiles_sync(cad, db, err, sizeof(err)) != 0)
		log_warn("%s", err);
	pthread_mutex_lock(&reg->mu);
	for (size_t i = 0; i < reg->n_cur; i++)
		if (!strcmp(reg->cur[i]->name, name))
			p = reg->cur[i];
	pthread_mutex_unlock(&reg->mu);
	return p;
}

int cad_profile_load(struct cad_config *cfg, struct db *db, const char *name, struct ca_profile *p,
                     char *err, size_t errsz)
{
	struct db_profile_version v = {0};
	struct db_err derr = {0};
	struct ca_profile *q;

	if (cad_profiles_seed(cfg, db, 0, err, errsz) != 0)
		return -1;
	switch (db_profile_get(db, name, 0, &v, &derr)) {
	case DB_OK:
		break;
	case DB_ERR_NOT_FOUND:
	case DB_ERR_INVALID:
		return 1;
	default:
		snprintf(err, errsz, "reading profile %s: %s", name, derr.msg);
		return -1;
	}
	q = parse_version(cfg, &v);
	db_profile_version_clear(&v);
	if (!q) {
		snprintf(err, errsz,
		         "profile %s: its stored version is not usable here (see the "
		         "log)",
		         name);
		return -1;
	}
	*p = *q; /* the patterns move with it */
	free(q);
	return 0;
}

/* --- LISTEN hsmca_profiles on the main loop --- */

static void listen_retry(struct cad *cad, int seconds);

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
	struct cad *cad = arg;
	struct cad_profiles *reg = &cad->profiles;
	struct db_err derr = {0};
	char err[600];
	int got = 0;

	(void)fd;
	(void)what;
	if (db_profiles_changed(reg->listen_db, &got, &derr) != DB_OK) {
		log_warn("profile changes: %s (listening again shortly)", derr.msg);
		event_free(reg->listen_ev);
		reg->listen_ev = NULL;
		db_close(reg->listen_db);
		reg->listen_db = NULL;
		listen_retry(cad, 1);
		return;
	}
	if (got && cad_profiles_sync(cad, reg->listen_db, err, sizeof(err)) != 0)
		log_warn("%s", err);
}

/* Connect, LISTEN, then read everything (what changed while nobody listened too). */
static int listen_now(struct cad *cad)
{
	struct cad_profiles *reg = &cad->profiles;
	struct db_err derr = {0};
	char err[600];

	if (db_connect(cad->cfg->database, &reg->listen_db, &derr) != DB_OK ||
	    db_profiles_listen(reg->listen_db, &derr) != DB_OK) {
		log_warn("profile changes: %s (listening again shortly)", derr.msg);
		db_close(reg->listen_db);
		reg->listen_db = NULL;
		return -1;
	}
	if (cad_profiles_sync(cad, reg->listen_db, err, sizeof(err)) != 0) {
		log_warn("%s", err);
		db_close(reg->listen_db);
		reg->listen_db = NULL;
		return -1;
	}
	reg->listen_ev = event_new(cad->base, PQsocket((PGconn *)db_pgconn(reg->listen_db)),
	                           EV_READ | EV_PERSIST, on_notify, cad);
	if (!reg->listen_ev || event_add(reg->listen_ev, NULL) != 0) {
		log_error("profile changes: cannot watch the database connection");
		if (reg->listen_ev)
			event_free(reg->listen_ev);
		reg->listen_ev = NULL;
		db_close(reg->listen_db);
		reg->listen_db = NULL;
		return -1;
	}
	return 0;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct cad *cad = arg;

	(void)fd;
	(void)what;
	if (listen_now(cad) != 0)
		listen_retry(cad, 2);
}

static void listen_retry(struct cad *cad, int seconds)
{
	struct timeval tv = {seconds, 0};

	if (cad->profiles.retry_ev)
		event_add(cad->profiles.retry_ev, &tv);
}

int cad_profiles_start(struct cad *cad, char *err, size_t errsz)
{
	struct cad_profiles *reg = &cad->profiles;

	reg->retry_ev = evtimer_new(cad->base, on_retry, cad);
	if (!reg->retry_ev) {
		snprintf(err, errsz, "setting up the profile listener failed");
		return -1;
	}
	if (listen_now(cad) != 0)
		listen_retry(cad, 2); /* the database may be down at start, as for requests */
	return 0;
}

void cad_profiles_stop(struct cad *cad)
{
	struct cad_profiles *reg = &cad->profiles;

	if (reg->listen_ev)
		event_free(reg->listen_ev);
	if (reg->retry_ev)
		event_free(reg->retry_ev);
	reg->listen_ev = reg->retry_ev = NULL;
	db_close(reg->listen_db);
	reg->listen_db = NULL;
	for (size_t i = 0; i < reg->n_cur; i++) {
		cad_profile_clear(reg->cur[i]);
		free(reg->cur[i]);
	}
	for (size_t i = 0; i < reg->n_old; i++) {
		cad_profile_clear(reg->old[i]);
		free(reg->old[i]);
	}
	free(reg->old);
	reg->old = NULL;
	reg->n_cur = reg->n_old = reg->cap_old = 0;
}

/* --- the API --- */

static json_t *version_json(const struct db_profile_version *v, int with_body)
{
	char t[32];
	json_t *o = json_pack("{s:s, s:i, s:i, s:b, s:s, s:s?}", "name", v->name, "version",
	                      (int)v->version, "current_version", (int)v->current, "enabled",
	                      v->enabled, "created_by", v->created_by, "created_at",
	                      cad_time_text(v->created_at, t, sizeof(t)));

	if (o && with_body && v->body)
		json_object_set_new(o, "profile", json_loads(v->body, 0, NULL));
	return o;
}

/* Check body as a profile of this instance, then lint sample certificates of it. 0, or -1
 * after replying (422: the profile is refused, naming the field or the lint rule). */
static int judge(struct cad_req *r, const json_t *body, struct ca_profile *p)
{
	char err[900], rule[64];

	if (cad_profile_from_json(r->cad->cfg, body, p, err, sizeof(err)) != 0) {
		cad_reply_error(r, 422, "bad-profile", "%s", err);
		return -1;
	}
	switch (ca_profile_lint(&r->cad->ca, p, rule, sizeof(rule), err, sizeof(err))) {
	case 0:
		return 0;
	case 1:
		log_info("profile %s refused for %s: lint rule %s", p->name, r->who.name, rule);
		cad_reply_error(r, 422, "lint-failed",
		                "the profile would issue certificates failing lint rule %s, so it "
		                "was not stored: %s",
		                rule, err);
		break;
	default:
		cad_reply_error(r, 422, "bad-profile", "%s", err);
		break;
	}
	cad_profile_clear(p);
	return -1;
}

/* Store body as the version after old_version of name (0: create), with its audit entry;
 * reply with the new version (status). */
static void store(struct cad_req *r, const char *name, const json_t *body, int32_t old_version,
                  json_t *detail, int status)
{
	struct db_profile_version v = {0};
	struct db_err err = {0};
	struct ca_profile p;
	struct db *db;
	int32_t version = 0;
	char *text = NULL, why[600];

	if (judge(r, body, &p) != 0)
		goto out;
	cad_profile_clear(&p);
	if (!(db = cad_db(r)))
		goto out;
	text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text) {
		cad_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	if (db_begin(db, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		goto out;
	}
	switch (db_profile_store(db, name, text, r->who.name, old_version, &version, &err)) {
	case DB_OK:
		break;
	case DB_ERR_CONFLICT:
		db_rollback(db);
		cad_deny(r, 409, "profile-exists", name, "a profile named \"%s\" exists", name);
		goto out;
	case DB_ERR_STATE:
		db_rollback(db);
		cad_deny(r, 409, "profile-changed", name,
		         "profile %s changed meanwhile (it is no longer at version %d): read it "
		         "again and retry",
		         name, (int)old_version);
		goto out;
	default:
		db_rollback(db);
		cad_reply_db_error(r, &err);
		goto out;
	}
	json_object_set_new(detail, "old_version",
	                    old_version ? json_integer(old_version) : json_null());
	json_object_set_new(detail, "new_version", json_integer(version));
	if (cad_commit_with_audit(r, db, name, detail) != 0)
		goto out;
	log_info("profile %s: version %d stored by %s (was %d)", name, (int)version, r->who.name,
	         (int)old_version);
	/* This instance uses it from the next request on; the others on the announcement. */
	if (cad_profiles_sync(r->cad, db, why, sizeof(why)) != 0)
		log_warn("%s", why);
	if (db_profile_get(db, name, version, &v, &err) != DB_OK) {
		cad_reply_db_error(r, &err);
		goto out;
	}
	cad_reply_json(r, status, version_json(&v, 1));
out:
	db_profile_version_clear(&v);
	free(text);
}

static const char *const *body_fields(void)
{
	/* The configuration's profile fields (cad_profile_parse says which are required). */
	static const char *const fields[] = {
	    "name",
	    "authority",
	    "key_profile",
	    "max_validity_days",
	    "key_usage",
	    "extended_key_usage",
	    "subject_fields",
	    "subject_cn_required",
	    "san",
	    "san_required",
	    "policies",
	    "cps_uri",
	    "subject_patterns",
	    "not_after_beyond_issuer",
	    NULL,
	};
	return fields;
}

void cad_h_profile_create(struct cad_req *r)
{
	json_t *body = cad_body_object(r, body_fields()), *detail;
	const char *name;

	if (!body)
		return;
	name = json_string_value(json_object_get(body, "name"));
	if (!name) {
		cad_reply_error(r, 422, "bad-profile", "name: required field is missing");
		json_decref(body);
		return;
	}
	detail = json_object();
	store(r, name, body, 0, detail, 201);
	json_decref(detail);
	json_decref(body);
}

/* The profile named by the path: its current version into v. 0, or -1 after replying. */
static int current_of(struct cad_req *r, struct db *db, struct db_profile_version *v)
{
	struct db_err err = {0};

	switch (db_profile_get(db, r->args[0], 0, v, &err)) {
	case DB_OK:
		return 0;
	case DB_ERR_NOT_FOUND:
	case DB_ERR_INVALID:
		cad_deny(r, 404, "unknown-profile", r->args[0], "no profile named \"%.64s\"",
		         r->args[0]);
		return -1;
	default:
		cad_reply_db_error(r, &err);
		return -1;
	}
}

void cad_h_profile_edit(struct cad_req *r)
{
	json_t *body = cad_body_object(r, body_fields()), *detail = NULL, *n;
	struct db_profile_version cur = {0};
	struct db *db;

	if (!body)
		return;
	if (!(db = cad_db(r)) || current_of(r, db, &cur) != 0)
		goto out;
	/* The path names the profile; the body may repeat it, never rename it. */
	n = json_object_get(body, "name");
	if (n && (!json_is_string(n) || strcmp(json_string_value(n), cur.name))) {
		cad_reply_error(r, 422, "bad-profile",
		                "name: the body names another profile than the path (%s); clone "
		                "it to make a new name",
		                cur.name);
		goto out;
	}
	json_object_set_new(body, "name", json_string(cur.name));
	detail = json_object();
	store(r, cur.name, body, cur.version, detail, 200);
out:
	json_decref(detail);
	db_profile_version_clear(&cur);
	json_decref(body);
}

void cad_h_profile_clone(struct cad_req *r)
{
	static const char *const fields[] = {"name", "version", NULL};
	json_t *body = cad_body_object(r, fields), *src = NULL, *detail = NULL, *v;
	struct db_profile_version from = {0};
	struct db_err err = {0};
	const char *name;
	struct db *db;
	int32_t version = 0;

	if (!body)
		return;
	name = json_string_value(json_object_get(body, "name"));
	v = json_object_get(body, "version");
	if (!name || (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
	                    json_integer_value(v) > INT32_MAX))) {
		cad_reply_error(r, 400, "bad-request",
		                "\"name\" (a string: the new profile's) is required; \"version\" "
		                "(which version to copy, default the current one) is a positive "
		                "integer");
		goto out;
	}
	if (v)
		version = (int32_t)json_integer_value(v);
	if (!(db = cad_db(r)))
		goto out;
	switch (db_profile_get(db, r->args[0], version, &from, &err)) {
	case DB_OK:
		break;
	case DB_ERR_NOT_FOUND:
	case DB_ERR_INVALID:
		cad_deny(r, 404, "unknown-profile", r->args[0], "%s", err.msg);
		goto out;
	default:
		cad_reply_db_error(r, &err);
		goto out;
	}
	if (!(src = json_loads(from.body, 0, NULL))) {
		cad_reply_error(r, 500, "internal", "profile %s version %d does not read back",
		                from.name, (int)from.version);
		goto out;
	}
	json_object_set_new(src, "name", json_string(name));
	detail =
	    json_pack("{s:s, s:i}", "cloned_from", from.name, "cloned_version", (int)from.version);
	store(r, name, src, 0, detail, 201);
out:
	json_decref(detail);
	json_decref(src);
	db_profile_version_clear(&from);
	json_decref(body);
}

void cad_h_profile_show(struct cad_req *r)
{
	struct db_profile_version v = {0}, *list = NULL;
	struct db_err err = {0};
	const char *q;
	struct db *db;
	json_t *o, *arr;
	size_t n = 0;
	long version = 0;

	if (cad_query_parse(r) != 0) {
		cad_reply_error(r, 400, "bad-request", "the query string does not parse");
		return;
	}
	if ((q = cad_query(r, "version"))) {
		char *end;
		version = strtol(q, &end, 10);
		if (!*q || *end || version < 1 || version > INT32_MAX) {
			cad_reply_error(r, 400, "bad-request",
			                "\"version\" must be a positive integer");
			return;
		}
	}
	if (!(db = cad_db(r)))
		return;
	switch (db_profile_get(db, r->args[0], (int32_t)version, &v, &err)) {
	case DB_OK:
		break;
	case DB_ERR_NOT_FOUND:
	case DB_ERR_INVALID:
		cad_deny(r, 404, "unknown-profile", r->args[0], "%s", err.msg);
		return;
	default:
		cad_reply_db_error(r, &err);
		return;
	}
	if (db_profile_versions(db, v.name, &list, &n, &err) != DB_OK) {
		db_profile_version_clear(&v);
		cad_reply_db_error(r, &err);
		return;
	}
	o = version_json(&v, 1);
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *e = version_json(&list[i], 0);
		json_object_del(e, "name");
		json_object_del(e, "current_version");
		json_object_del(e, "enabled");
		json_array_append_new(arr, e);
	}
	json_object_set_new(o, "versions", arr);
	cad_reply_json(r, 200, o);
	db_profile_list_free(list, n);
	db_profile_version_clear(&v);
}
