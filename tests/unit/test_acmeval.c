/* hsmca-acmevald's pieces without a network: the allow-range check (IPv4, IPv6, IPv4-mapped),
 * the hosts patterns, the frames (round trips and every refusal), the key-authorization
 * digests, Boulder's trailing-white-space rule and the configuration's errors. */
#include <arpa/inet.h>
#include <check.h>
#include <string.h>

#include "acmevald.h"

static struct sockaddr_storage sa_of(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else {
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr),
		                 1);
		ss.ss_family = AF_INET6;
	}
	return ss;
}

static int allowed(const char *const *ranges, const char *ip)
{
	struct acmeval_cidr r[8];
	struct sockaddr_storage ss = sa_of(ip);
	size_t n = 0;

	for (; ranges[n]; n++)
		ck_assert_msg(acmeval_cidr_parse(ranges[n], &r[n]) == 0, "%s", ranges[n]);
	return acmeval_addr_allowed(r, n, (struct sockaddr *)&ss);
}

START_TEST(cidr_parse)
{
	struct acmeval_cidr c;

	ck_assert_int_eq(acmeval_cidr_parse("127.0.0.0/8", &c), 0);
	ck_assert_int_eq(c.family, AF_INET);
	ck_assert_int_eq(c.prefix, 8);
	ck_assert_int_eq(acmeval_cidr_parse("::1/128", &c), 0);
	ck_assert_int_eq(c.family, AF_INET6);
	ck_assert_int_eq(acmeval_cidr_parse("192.0.2.7", &c), 0);
	ck_assert_int_eq(c.prefix, 32);
	ck_assert_int_eq(acmeval_cidr_parse("0.0.0.0/0", &c), 0);
	ck_assert_int_eq(acmeval_cidr_parse("10.1.2.3/8", &c), -1); /* host bits */
	ck_assert_int_eq(acmeval_cidr_parse("10.0.0.0/33", &c), -1);
	ck_assert_int_eq(acmeval_cidr_parse("10.0.0.0/", &c), -1);
	ck_assert_int_eq(acmeval_cidr_parse("10.0.0.0/-1", &c), -1);
	ck_assert_int_eq(acmeval_cidr_parse("10.0.0.0/8x", &c), -1);
	ck_assert_int_eq(acmeval_cidr_parse("fe80::/129", &c), -1);
	ck_assert_int_eq(acmeval_cidr_parse("example.com/8", &c), -1);
	ck_assert_int_eq(acmeval_cidr_parse("", &c), -1);
}
END_TEST

START_TEST(allow_v4)
{
	static const char *const lo[] = {"127.0.0.0/8", NULL};
	static const char *const one[] = {"127.0.0.1/32", NULL};
	static const char *const odd[] = {"192.0.2.128/25", NULL};

	ck_assert_int_eq(allowed(lo, "127.0.0.1"), 1);
	ck_assert_int_eq(allowed(lo, "127.255.255.254"), 1);
	ck_assert_int_eq(allowed(lo, "128.0.0.1"), 0);
	ck_assert_int_eq(allowed(lo, "10.0.0.1"), 0);
	ck_assert_int_eq(allowed(one, "127.0.0.2"), 0);
	ck_assert_int_eq(allowed(odd, "192.0.2.128"), 1);
	ck_assert_int_eq(allowed(odd, "192.0.2.255"), 1);
	ck_assert_int_eq(allowed(odd, "192.0.2.127"), 0);
	/* An IPv4 range says nothing about IPv6. */
	ck_assert_int_eq(allowed(lo, "::1"), 0);
}
END_TEST

START_TEST(allow_v6)
{
	static const char *const lo6[] = {"::1/128", NULL};
	static const char *const doc[] = {"2001:db8::/33", NULL};
	static const char *const all6[] = {"::/0", NULL};

	ck_assert_int_eq(allowed(lo6, "::1"), 1);
	ck_assert_int_eq(allowed(lo6, "::2"), 0);
	ck_assert_int_eq(allowed(doc, "2001:db8:7fff::1"), 1);
	ck_assert_int_eq(allowed(doc, "2001:db8:8000::1"), 0);
	/* An IPv6 range says nothing about IPv4. */
	ck_assert_int_eq(allowed(all6, "127.0.0.1"), 0);
}
END_TEST

/* ::ffff:a.b.c.d connects to a.b.c.d: it is judged as that IPv4 address only. */
START_TEST(allow_mapped)
{
	static const char *const lo[] = {"127.0.0.0/8", NULL};
	static const char *const all6[] = {"::/0", NULL};
	static const char *const mapped_range[] = {"::ffff:0:0/96", NULL};

	ck_assert_int_eq(allowed(lo, "::ffff:127.0.0.1"), 1);
	ck_assert_int_eq(allowed(lo, "::ffff:10.0.0.1"), 0);
	ck_assert_int_eq(allowed(all6, "::ffff:10.0.0.1"), 0);
	ck_assert_int_eq(allowed(mapped_range, "::ffff:127.0.0.1"), 0);
	/* Not mapped: the IPv4-compatible form is an IPv6 address. */
	ck_assert_int_eq(allowed(lo, "::127.0.0.1"), 0);
}
END_TEST

START_TEST(hosts_patterns)
{
	ck_assert_int_eq(acmeval_host_match("*.example.com", "www.example.com"), 1);
	ck_assert_int_eq(acmeval_host_match("*.example.com", "a.b.example.com"), 1);
	ck_assert_int_eq(acmeval_host_match("*.example.com", "example.com"), 0);
	ck_assert_int_eq(acmeval_host_match("*.example.com", "badexample.com"), 0);
	ck_assert_int_eq(acmeval_host_match("www.example.com", "www.example.com"), 1);
	ck_assert_int_eq(acmeval_host_match("www.example.com", "x.www.example.com"), 0);
}
END_TEST

static const char *KA = "tok-en_1.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";

START_TEST(frame_roundtrip)
{
	struct acmeval_request r = {ACMEVAL_TLSALPN01, "dns", "www.example.com", "tok-en_1", KA};
	struct acmeval_result a = {0}, b;
	struct acmeval_req q;
	uint8_t buf[ACMEVAL_FRAME_HDR + ACMEVAL_FRAME_MAX];
	char err[256];
	size_t len;
	int n = acmeval_req_encode(&r, buf, sizeof(buf), err, sizeof(err));

	ck_assert_int_gt(n, ACMEVAL_FRAME_HDR);
	ck_assert_int_eq(acmeval_frame_header(buf, ACMEVAL_MAGIC_REQUEST, ACMEVAL_FRAME_MAX, &len,
	                                      err, sizeof(err)),
	                 0);
	ck_assert_uint_eq(len, (size_t)n - ACMEVAL_FRAME_HDR);
	ck_assert_int_eq(acmeval_req_decode(buf + ACMEVAL_FRAME_HDR, len, &q, err, sizeof(err)), 0);
	ck_assert_int_eq(q.type, ACMEVAL_TLSALPN01);
	ck_assert_int_eq(q.is_ip, 0);
	ck_assert_str_eq(q.identifier, "www.example.com");
	ck_assert_str_eq(q.token, "tok-en_1");
	ck_assert_str_eq(q.key_authorization, KA);

	acmeval_fail(&a, "unauthorized", "no TXT record found at %s", "_acme-challenge.x");
	n = acmeval_ans_encode(&a, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(acmeval_frame_header(buf, ACMEVAL_MAGIC_ANSWER, ACMEVAL_FRAME_MAX, &len,
	                                      err, sizeof(err)),
	                 0);
	ck_assert_int_eq(acmeval_ans_decode(buf + ACMEVAL_FRAME_HDR, len, &b, err, sizeof(err)), 0);
	ck_assert_int_eq(b.valid, 0);
	ck_assert_str_eq(b.problem_type, "unauthorized");
	ck_assert_str_eq(b.detail, "no TXT record found at _acme-challenge.x");
	a.valid = 1;
	n = acmeval_ans_encode(&a, buf, sizeof(buf));
	ck_assert_int_eq(acmeval_ans_decode(buf + ACMEVAL_FRAME_HDR, (size_t)n - ACMEVAL_FRAME_HDR,
	                                    &b, err, sizeof(err)),
	                 0);
	ck_assert_int_eq(b.valid, 1);
	ck_assert_str_eq(b.problem_type, "");
}
END_TEST

/* Encoding refuses what decoding would: each request names its field. */
START_TEST(frame_refusals_client)
{
	static const struct {
		struct acmeval_request r;
		const char *why;
	} bad[] = {
	    {{7, "dns", "a.example", "t", "t.x"}, "type"},
	    {{ACMEVAL_HTTP01, "email", "a.example", "t", "t.x"}, "identifier_type"},
	    {{ACMEVAL_HTTP01, "dns", "A.example", "t", "t.x"}, "identifier"},
	    {{ACMEVAL_HTTP01, "dns", "a..example", "t", "t.x"}, "identifier"},
	    {{ACMEVAL_HTTP01, "dns", "-a.example", "t", "t.x"}, "identifier"},
	    {{ACMEVAL_HTTP01, "dns", "a-.example", "t", "t.x"}, "identifier"},
	    {{ACMEVAL_HTTP01, "dns", "*.example", "t", "t.x"}, "identifier"},
	    {{ACMEVAL_HTTP01, "dns", "a.example.", "t", "t.x"}, "identifier"},
	    {{ACMEVAL_HTTP01, "ip", "a.example", "t", "t.x"}, "identifier"},
	    {{ACMEVAL_DNS01, "ip", "127.0.0.1", "t", "t.x"}, "dns-01"},
	    {{ACMEVAL_HTTP01, "dns", "a.example", "t/../x", "t/../x.x"}, "token"},
	    {{ACMEVAL_HTTP01, "dns", "a.example", "", ".x"}, "token"},
	    {{ACMEVAL_HTTP01, "dns", "a.example", "t", "u.x"}, "key_authorization"},
	    {{ACMEVAL_HTTP01, "dns", "a.example", "t", "t."}, "key_authorization"},
	    {{ACMEVAL_HTTP01, "dns", "a.example", "t", "t.x y"}, "key_authorization"},
	    {{ACMEVAL_HTTP01, "dns", NULL, "t", "t.x"}, "missing"},
	};
	uint8_t buf[ACMEVAL_FRAME_HDR + ACMEVAL_FRAME_MAX];
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		ck_assert_msg(acmeval_req_encode(&bad[i].r, buf, sizeof(buf), err, sizeof(err)) ==
		                  -1,
		              "case %zu accepted", i);
		ck_assert_msg(strstr(err, bad[i].why), "case %zu: \"%s\" lacks \"%s\"", i, err,
		              bad[i].why);
	}
}
END_TEST

/* Payloads the validator refuses: truncated, trailing bytes, NUL inside, too long. */
START_TEST(frame_refusals_server)
{
	struct acmeval_request r = {ACMEVAL_HTTP01, "dns", "a.example", "tok-en_1", KA};
	uint8_t buf[ACMEVAL_FRAME_HDR + ACMEVAL_FRAME_MAX + 8], hdr[8];
	struct acmeval_req q;
	char err[256];
	size_t len;
	int n = acmeval_req_encode(&r, buf, sizeof(buf), err, sizeof(err));

	ck_assert_int_gt(n, 0);
	len = (size_t)n - ACMEVAL_FRAME_HDR;
	for (size_t cut = 0; cut < len; cut++)
		ck_assert_int_eq(
		    acmeval_req_decode(buf + ACMEVAL_FRAME_HDR, cut, &q, err, sizeof(err)), -1);
	buf[n] = 'x';
	ck_assert_int_eq(acmeval_req_decode(buf + ACMEVAL_FRAME_HDR, len + 1, &q, err, sizeof(err)),
	                 -1);
	ck_assert_ptr_nonnull(strstr(err, "after the last field"));
	/* A NUL inside the identifier ("a\0example"). */
	buf[ACMEVAL_FRAME_HDR + 1 + 1 + 3 + 2 + 1] = 0;
	ck_assert_int_eq(acmeval_req_decode(buf + ACMEVAL_FRAME_HDR, len, &q, err, sizeof(err)),
	                 -1);
	/* Headers: wrong magic, too long. */
	acmeval_frame_put_header(hdr, "AVQ2", 10);
	ck_assert_int_eq(acmeval_frame_header(hdr, ACMEVAL_MAGIC_REQUEST, ACMEVAL_FRAME_MAX, &len,
	                                      err, sizeof(err)),
	                 -1);
	acmeval_frame_put_header(hdr, ACMEVAL_MAGIC_REQUEST, ACMEVAL_FRAME_MAX + 1);
	ck_assert_int_eq(acmeval_frame_header(hdr, ACMEVAL_MAGIC_REQUEST, ACMEVAL_FRAME_MAX, &len,
	                                      err, sizeof(err)),
	                 -1);
	ck_assert_ptr_nonnull(strstr(err, "exceeds"));
	acmeval_frame_put_header(hdr, ACMEVAL_MAGIC_REQUEST, 0xffffffffu);
	ck_assert_int_eq(acmeval_frame_header(hdr, ACMEVAL_MAGIC_REQUEST, ACMEVAL_FRAME_MAX, &len,
	                                      err, sizeof(err)),
	                 -1);
}
END_TEST

/* RFC 8555 §8.4: base64url(SHA-256(key authorization)), no padding; the value below is
 * printf %s KA | openssl dgst -sha256 -binary | basenc --base64url | tr -d = */
START_TEST(keyauth_digest)
{
	char b64[44];
	unsigned char d[32];

	acmeval_keyauth_digest_b64("abc", b64);
	ck_assert_str_eq(b64, "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
	acmeval_keyauth_digest("abc", d);
	ck_assert_uint_eq(d[0], 0xba);
	ck_assert_uint_eq(d[31], 0xad);
	ck_assert_uint_eq(strlen(b64), 43);
}
END_TEST

/* Boulder trims trailing white space only. */
START_TEST(body_rule)
{
	const char *ka = "t.x";

	ck_assert_int_eq(acmeval_body_matches("t.x", 3, ka), 1);
	ck_assert_int_eq(acmeval_body_matches("t.x\n", 4, ka), 1);
	ck_assert_int_eq(acmeval_body_matches("t.x \t\r\n", 7, ka), 1);
	ck_assert_int_eq(acmeval_body_matches(" t.x", 4, ka), 0);
	ck_assert_int_eq(acmeval_body_matches("t.xy", 4, ka), 0);
	ck_assert_int_eq(acmeval_body_matches("t.", 2, ka), 0);
	ck_assert_int_eq(acmeval_body_matches("t.x\0", 4, ka), 0);
	ck_assert_int_eq(acmeval_body_matches("", 0, ka), 0);
}
END_TEST

static int load(const char *text, struct acmeval_config *c, char *err, size_t errlen)
{
	return acmeval_config_load_mem("test.yaml", text, strlen(text), c, err, errlen);
}

START_TEST(config_good)
{
	struct acmeval_config c;
	char err[512];

	ck_assert_msg(load("listen: {path: /run/a.sock}\n", &c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(c.nallow, 2); /* loopback only by default */
	ck_assert_int_eq(c.http_port, 80);
	ck_assert_int_eq(c.tls_alpn_port, 443);
	ck_assert_int_eq(c.socket_mode, 0660);
	ck_assert_int_eq(c.peer_uid_set, 0);
	ck_assert_msg(load("listen: {path: /run/a.sock, mode: \"0600\", peer_user: \"1234\"}\n"
	                   "allow: [10.0.0.0/8]\n"
	                   "hosts: [{name: \"*.example.com\", address: \"::1\"}]\n"
	                   "ports: {http: 5002, https: 5001, tls_alpn: 5003}\n"
	                   "timeouts: {connect_ms: 100, read_ms: 200, total_ms: 300}\n"
	                   "resolver: \"[::1]:5353\"\nworkers: 2\nmax_redirects: 0\n",
	                   &c, err, sizeof(err)) == 0,
	              "%s", err);
	ck_assert_int_eq(c.nallow, 1);
	ck_assert_int_eq(c.nhosts, 1);
	ck_assert_int_eq(c.peer_uid, 1234);
	ck_assert_int_eq(c.http_port, 5002);
	ck_assert_str_eq(c.resolver, "[::1]:5353");
}
END_TEST

START_TEST(config_errors)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
	    {"allow: [127.0.0.0/8]\n", "listen"},
	    {"listen: {path: rel.sock}\n", "absolute"},
	    {"listen: {path: /a.sock, mode: \"0666\"}\n", "every user"},
	    {"listen: {path: /a.sock, peer_user: no-such-user-here}\n", "no such user"},
	    {"listen: {path: /a.sock}\nallow: [10.1.2.3/8]\n", "host bits"},
	    {"listen: {path: /a.sock}\nallow: []\n", "non-empty"},
	    {"listen: {path: /a.sock}\nhosts: [{name: \"Www.Example\", address: 127.0.0.1}]\n",
	     "lower-case"},
	    {"listen: {path: /a.sock}\nhosts: [{name: a.example, address: localhost}]\n",
	     "not an IP"},
	    {"listen: {path: /a.sock}\nresolver: 127.0.0.1\n", "ADDRESS:PORT"},
	    {"listen: {path: /a.sock}\nresolver: \"127.0.0.1:0\"\n", "ADDRESS:PORT"},
	    {"listen: {path: /a.sock}\nports: {http: 0}\n", "http"},
	    {"listen: {path: /a.sock}\nworkers: 0\n", "workers"},
	    {"listen: {path: /a.sock}\nmax_response_bytes: 100000000\n", "max_response_bytes"},
	    {"listen: {path: /a.sock}\nproxy: x\n", "proxy"},
	};
	struct acmeval_config c;
	char err[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		ck_assert_msg(load(bad[i].text, &c, err, sizeof(err)) == -1, "case %zu accepted",
		              i);
		ck_assert_msg(strstr(err, bad[i].why), "case %zu: \"%s\" lacks \"%s\"", i, err,
		              bad[i].why);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("acmeval");
	TCase *tc = tcase_create("acmeval");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, cidr_parse);
	tcase_add_test(tc, allow_v4);
	tcase_add_test(tc, allow_v6);
	tcase_add_test(tc, allow_mapped);
	tcase_add_test(tc, hosts_patterns);
	tcase_add_test(tc, frame_roundtrip);
	tcase_add_test(tc, frame_refusals_client);
	tcase_add_test(tc, frame_refusals_server);
	tcase_add_test(tc, keyauth_digest);
	tcase_add_test(tc, body_rule);
	tcase_add_test(tc, config_good);
	tcase_add_test(tc, config_errors);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
