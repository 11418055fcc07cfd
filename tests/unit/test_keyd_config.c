/* keyd configuration: what is accepted, and that every error names file, line and field. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyd_config.h"

static const char *base = "module: /usr/lib/softhsm/libsofthsm2.so\n"
                          "token: t\n"
                          "pin_file: /tmp/pin\n"
                          "socket: /tmp/k.sock\n";

static int parse(const char *extra, struct keyd_config *cfg, char *err)
{
	char text[4096];
	snprintf(text, sizeof(text), "%s%s", base, extra);
	return keyd_config_parse("keyd.yaml", text, strlen(text), cfg, err, 512);
}

START_TEST(full_config_parses)
{
	struct keyd_config cfg;
	char err[512] = "";

	ck_assert_msg(parse("socket_mode: \"0660\"\nworkers: 4\nqueue: 10\nlog_requests: false\n"
	                    "clients:\n"
	                    "  - name: cad\n    uid: 1000\n    gid: 1000\n"
	                    "    keys: [issuing, ocsp]\n    operations: [sign, get-public-key]\n"
	                    "  - name: admin\n    uid: 0\n    keys: [\"*\"]\n"
	                    "    operations: [\"*\", generate]\n",
	                    &cfg, err) == 0,
	              "%s", err);
	ck_assert_uint_eq(cfg.socket_mode, 0660);
	ck_assert_int_eq(cfg.workers, 4);
	ck_assert_int_eq(cfg.log_requests, 0);
	ck_assert_uint_eq(cfg.nclients, 2);
	ck_assert_ptr_eq(keyd_acl_find(&cfg, 1000, 1000), &cfg.clients[0]);
	ck_assert_ptr_null(keyd_acl_find(&cfg, 1000, 1001)); /* gid must match too */
	ck_assert(keyd_acl_key_allowed(&cfg.clients[0], "ocsp"));
	ck_assert(!keyd_acl_key_allowed(&cfg.clients[0], "root"));
	ck_assert(keyd_acl_op_allowed(&cfg.clients[0], KEYD_OP_SIGN));
	ck_assert(keyd_acl_op_allowed(&cfg.clients[0], KEYD_OP_HELLO));
	ck_assert(!keyd_acl_op_allowed(&cfg.clients[0], KEYD_OP_GENERATE));
	ck_assert(keyd_acl_op_allowed(&cfg.clients[1], KEYD_OP_GENERATE));
	keyd_config_free(&cfg);
}
END_TEST

START_TEST(rsa_sign_by_decrypt_is_off_unless_set)
{
	struct keyd_config cfg;
	char err[512] = "";

	ck_assert_msg(parse("", &cfg, err) == 0, "%s", err);
	ck_assert_int_eq(cfg.rsa_sign_by_decrypt, 0);
	keyd_config_free(&cfg);
	ck_assert_msg(parse("rsa_sign_by_decrypt: true\n", &cfg, err) == 0, "%s", err);
	ck_assert_int_eq(cfg.rsa_sign_by_decrypt, 1);
	keyd_config_free(&cfg);
	ck_assert_int_ne(parse("rsa_sign_by_decrypt: maybe\n", &cfg, err), 0);
	ck_assert_msg(strstr(err, "rsa_sign_by_decrypt"), "%s", err);
}
END_TEST

START_TEST(star_grants_everything_but_generate)
{
	struct keyd_config cfg;
	char err[512] = "";

	ck_assert_int_eq(
	    parse("clients:\n  - uid: 5\n    keys: [\"*\"]\n    operations: [\"*\"]\n", &cfg, err),
	    0);
	ck_assert(keyd_acl_op_allowed(&cfg.clients[0], KEYD_OP_SIGN));
	ck_assert(keyd_acl_op_allowed(&cfg.clients[0], KEYD_OP_STATUS));
	ck_assert(!keyd_acl_op_allowed(&cfg.clients[0], KEYD_OP_GENERATE));
	keyd_config_free(&cfg);
}
END_TEST

START_TEST(grants_give_keys_operations_and_kinds)
{
	struct keyd_config cfg;
	char err[512] = "";
	const struct keyd_acl_entry *e;

	ck_assert_msg(parse("clients:\n"
	                    "  - name: ocspd\n"
	                    "    uid: 5\n"
	                    "    grants:\n"
	                    "      - keys: [ocsp]\n"
	                    "        operations: [get-public-key, sign]\n"
	                    "        kinds: [ocsp-response]\n"
	                    "      - keys: [\"*\"]\n"
	                    "        operations: [status]\n"
	                    "      - keys: [tls]\n"
	                    "        operations: [sign]\n"
	                    "        kinds: [\"*\", digest]\n"
	                    "key_certificates:\n"
	                    "  - key: ca\n"
	                    "    certificate: /etc/ca.pem\n",
	                    &cfg, err) == 0,
	              "%s", err);
	e = &cfg.clients[0];
	ck_assert_uint_eq(e->ngrants, 3);
	ck_assert(keyd_acl_allowed(e, "ocsp", KEYD_OP_SIGN));
	ck_assert(keyd_acl_allowed(e, "ocsp", KEYD_OP_SIGN_DATA));
	ck_assert(!keyd_acl_allowed(e, "other", KEYD_OP_SIGN));
	ck_assert(keyd_acl_allowed(e, "other", KEYD_OP_STATUS));
	ck_assert(!keyd_acl_allowed(e, "other", KEYD_OP_GET_PUBKEY));
	ck_assert_uint_eq(keyd_acl_kinds(e, "ocsp"), 1u << KEYD_KIND_OCSP);
	ck_assert_uint_eq(keyd_acl_kinds(e, "other"), 0);
	/* "*" is every kind but digest; digest by name */
	ck_assert_uint_eq(keyd_acl_kinds(e, "tls"), (1u << (KEYD_KIND_MAX_ + 1)) - 1);
	ck_assert_str_eq(keyd_keycert_path(&cfg, "ca"), "/etc/ca.pem");
	ck_assert_ptr_null(keyd_keycert_path(&cfg, "ocsp"));
	keyd_config_free(&cfg);

	/* the older form: one grant, kinds "*" (no digest) */
	ck_assert_int_eq(
	    parse("clients:\n  - uid: 5\n    keys: [a]\n    operations: [sign]\n", &cfg, err), 0);
	ck_assert_uint_eq(keyd_acl_kinds(&cfg.clients[0], "a"),
	                  ((1u << (KEYD_KIND_MAX_ + 1)) - 1) & ~(1u << KEYD_KIND_DIGEST));
	keyd_config_free(&cfg);
}
END_TEST

START_TEST(sign_grant_without_kinds_is_an_error)
{
	struct keyd_config cfg;
	char err[512] = "";

	ck_assert_int_eq(parse("clients:\n  - uid: 5\n    grants:\n      - keys: [a]\n"
	                       "        operations: [sign]\n",
	                       &cfg, err),
	                 -1);
	ck_assert_msg(strstr(err, "keyd.yaml:8: kinds: a grant with sign must name the kinds"),
	              "%s", err);
	ck_assert_int_eq(parse("clients:\n  - uid: 5\n    grants:\n      - keys: [a]\n"
	                       "        operations: [sign]\n        kinds: [certificates]\n",
	                       &cfg, err),
	                 -1);
	ck_assert_msg(strstr(err, "unknown kind \"certificates\""), "%s", err);
	ck_assert_int_eq(parse("clients:\n  - uid: 5\n    grants:\n      - keys: [a]\n"
	                       "        operations: [status]\n        kinds: [crl]\n",
	                       &cfg, err),
	                 -1);
	ck_assert_msg(strstr(err, "this grant has no sign"), "%s", err);
	ck_assert_int_eq(parse("clients:\n  - uid: 5\n    keys: [a]\n    grants:\n"
	                       "      - keys: [a]\n        operations: [status]\n",
	                       &cfg, err),
	                 -1);
	ck_assert_msg(strstr(err, "not both"), "%s", err);
}
END_TEST

START_TEST(unknown_field_names_line_and_field)
{
	struct keyd_config cfg;
	char err[512] = "";

	ck_assert_int_eq(parse("wokers: 3\n", &cfg, err), -1);
	ck_assert_str_eq(err, "keyd.yaml:5: config: unknown field \"wokers\"");
}
END_TEST

START_TEST(unknown_operation_is_an_error)
{
	struct keyd_config cfg;
	char err[512] = "";

	ck_assert_int_eq(
	    parse("clients:\n  - uid: 5\n    keys: [a]\n    operations: [export]\n", &cfg, err),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "keyd.yaml:8: operations: unknown operation \"export\""));
}
END_TEST

START_TEST(missing_required_field_is_named)
{
	struct keyd_config cfg;
	char err[512] = "";
	const char *text = "module: /m.so\ntoken: t\nsocket: /s\n";

	ck_assert_int_eq(keyd_config_parse("k.yaml", text, strlen(text), &cfg, err, sizeof(err)),
	                 -1);
	ck_assert_ptr_nonnull(strstr(err, "pin_file: required field is missing"));
}
END_TEST

START_TEST(out_of_range_number_is_refused)
{
	struct keyd_config cfg;
	char err[512] = "";

	ck_assert_int_eq(parse("workers: 0\n", &cfg, err), -1);
	ck_assert_ptr_nonnull(strstr(err, "keyd.yaml:5: workers: 0 is outside 1..64"));
	ck_assert_int_eq(parse("queue: 12abc\n", &cfg, err), -1);
	ck_assert_ptr_nonnull(strstr(err, "is not a number"));
}
END_TEST

START_TEST(duplicate_field_is_refused)
{
	struct keyd_config cfg;
	char err[512] = "";

	ck_assert_int_eq(parse("token: again\n", &cfg, err), -1);
	ck_assert_ptr_nonnull(strstr(err, "given twice"));
}
END_TEST

START_TEST(bad_label_in_acl_is_refused)
{
	struct keyd_config cfg;
	char err[512] = "";

	ck_assert_int_eq(
	    parse("clients:\n  - uid: 5\n    keys: [\"a b\"]\n    operations: [sign]\n", &cfg, err),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "not a valid label"));
}
END_TEST

START_TEST(yaml_syntax_error_names_line)
{
	struct keyd_config cfg;
	char err[512] = "";

	ck_assert_int_eq(parse("clients: [\n", &cfg, err), -1);
	ck_assert_ptr_nonnull(strstr(err, "keyd.yaml:"));
	ck_assert_ptr_nonnull(strstr(err, "YAML syntax"));
}
END_TEST

START_TEST(uid_and_user_together_are_refused)
{
	struct keyd_config cfg;
	char err[512] = "";

	ck_assert_int_eq(parse("clients:\n  - uid: 5\n    user: root\n    keys: [a]\n"
	                       "    operations: [sign]\n",
	                       &cfg, err),
	                 -1);
	ck_assert_ptr_nonnull(strstr(err, "not both"));
}
END_TEST

static void write_pin(const char *path, mode_t mode, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

START_TEST(pin_file_permissions_are_enforced)
{
	char path[] = "/tmp/hsmca-pin-XXXXXX", pin[KEYD_PIN_MAX], err[512];
	int fd = mkstemp(path);

	close(fd);
	write_pin(path, 0600, "1234\n");
	ck_assert_int_eq(keyd_pin_read(path, pin, sizeof(pin), err, sizeof(err)), 0);
	ck_assert_str_eq(pin, "1234");
	write_pin(path, 0644, "1234\n");
	ck_assert_int_eq(keyd_pin_read(path, pin, sizeof(pin), err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "mode 644"));
	ck_assert_ptr_null(strstr(err, "1234"));
	write_pin(path, 0600, "\n");
	ck_assert_int_eq(keyd_pin_read(path, pin, sizeof(pin), err, sizeof(err)), -1);
	unlink(path);
}
END_TEST

/* activation: quorum: the quorum: section instead of pin_file, every mistake named. */
static int parse_quorum(const char *quorum, struct keyd_config *cfg, char *err)
{
	char text[4096];
	snprintf(text, sizeof(text),
	         "module: /usr/lib/softhsm/libsofthsm2.so\ntoken: t\nsocket: /tmp/k.sock\n%s",
	         quorum);
	return keyd_config_parse("keyd.yaml", text, strlen(text), cfg, err, 512);
}

#define QID "  id: \"00112233445566778899aabbccddeeff\"\n"
#define QVK "  verify_key: \"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"\n"

START_TEST(quorum_activation_parses)
{
	struct keyd_config cfg;
	char err[512] = "";

	ck_assert_msg(parse_quorum("activation: quorum\nquorum:\n" QID QVK "  threshold: 2\n"
	                           "  custodians:\n"
	                           "    - {name: custodian-1, uid: 1001}\n"
	                           "    - {name: custodian-2, uid: 1002}\n"
	                           "    - {name: custodian-3, uid: 1003}\n"
	                           "  sealers:\n    - {name: ops, uid: 1000}\n",
	                           &cfg, err) == 0,
	              "%s", err);
	ck_assert_int_eq(cfg.activation, KEYD_ACTIVATION_QUORUM);
	ck_assert_uint_eq(cfg.quorum.threshold, 2);
	ck_assert_uint_eq(cfg.quorum.total, 3);
	ck_assert_uint_eq(cfg.quorum.id[15], 0xff);
	ck_assert_int_eq(cfg.any_custodian, 0);
	ck_assert_str_eq(keyd_custodian_of(&cfg, 1002)->name, "custodian-2");
	ck_assert_ptr_null(keyd_custodian_of(&cfg, 1000));
	ck_assert_ptr_nonnull(keyd_sealer_of(&cfg, 1000));
	ck_assert_ptr_null(keyd_sealer_of(&cfg, 1001));
	ck_assert_uint_eq(keyd_custodian_named(&cfg, "custodian-3")->uid, 1003);
	keyd_config_free(&cfg);
	/* The default stays file: pin_file required. */
	ck_assert_int_eq(parse_quorum("", &cfg, err), -1);
	ck_assert_ptr_nonnull(strstr(err, "pin_file"));
}
END_TEST

START_TEST(quorum_mistakes_are_named)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
	    {"activation: quorum\npin_file: /tmp/pin\n", "never on disk: remove pin_file"},
	    {"activation: quorum\n", "needs a quorum: section"},
	    {"activation: vault\n", "\"vault\": file or quorum"},
	    {"pin_file: /tmp/p\nquorum:\n" QID, "quorum: needs activation: quorum"},
	    {"activation: quorum\nquorum:\n  id: \"00\"\n" QVK, "id: not 32 lower-case hex"},
	    {"activation: quorum\nquorum:\n" QID QVK "  threshold: 3\n  custodians:\n"
	     "    - {name: a, uid: 1}\n    - {name: b, uid: 2}\n",
	     "threshold"},
	    {"activation: quorum\nquorum:\n" QID QVK "  threshold: 2\n  custodians:\n"
	     "    - {name: a, uid: 1}\n    - {name: a, uid: 2}\n",
	     "a is listed twice"},
	    {"activation: quorum\nquorum:\n" QID QVK "  threshold: 2\n  custodians:\n"
	     "    - {name: a, uid: 1}\n    - {name: b}\n",
	     "needs uid or user"},
	    {"activation: quorum\nquorum:\n" QID QVK "  threshold: 2\n  custodians:\n"
	     "    - {name: a, uid: 1}\n    - {name: b, uid: 2}\n  wibble: 1\n",
	     "wibble"},
	    {"pin_file: /tmp/p\nclients:\n  - name: c\n    uid: 5\n    keys: [\"*\"]\n"
	     "    operations: [unseal]\n",
	     "unseal is not granted in clients"},
	};
	struct keyd_config cfg;
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = 0;
		ck_assert_msg(parse_quorum(cases[i].text, &cfg, err) == -1, "case %zu parsed", i);
		ck_assert_msg(strstr(err, cases[i].want) != NULL, "case %zu: %s", i, err);
		ck_assert_msg(strstr(err, "keyd.yaml:") != NULL, "case %zu: %s", i, err);
	}
}
END_TEST

/* "*" does not give unseal or seal: the quorum: section names who may. */
START_TEST(star_grants_no_unseal_or_seal)
{
	struct keyd_config cfg;
	char err[512] = "";

	ck_assert_msg(parse("clients:\n  - name: c\n    uid: 5\n    keys: [\"*\"]\n"
	                    "    operations: [\"*\"]\n",
	                    &cfg, err) == 0,
	              "%s", err);
	ck_assert(!keyd_acl_op_allowed(&cfg.clients[0], KEYD_OP_UNSEAL));
	ck_assert(!keyd_acl_op_allowed(&cfg.clients[0], KEYD_OP_SEAL));
	ck_assert(keyd_acl_op_allowed(&cfg.clients[0], KEYD_OP_QUORUM));
	keyd_config_free(&cfg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("keyd-config");
	TCase *tc = tcase_create("config");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, full_config_parses);
	tcase_add_test(tc, star_grants_everything_but_generate);
	tcase_add_test(tc, grants_give_keys_operations_and_kinds);
	tcase_add_test(tc, sign_grant_without_kinds_is_an_error);
	tcase_add_test(tc, rsa_sign_by_decrypt_is_off_unless_set);
	tcase_add_test(tc, unknown_field_names_line_and_field);
	tcase_add_test(tc, unknown_operation_is_an_error);
	tcase_add_test(tc, missing_required_field_is_named);
	tcase_add_test(tc, out_of_range_number_is_refused);
	tcase_add_test(tc, duplicate_field_is_refused);
	tcase_add_test(tc, bad_label_in_acl_is_refused);
	tcase_add_test(tc, yaml_syntax_error_names_line);
	tcase_add_test(tc, uid_and_user_together_are_refused);
	tcase_add_test(tc, pin_file_permissions_are_enforced);
	tcase_add_test(tc, quorum_activation_parses);
	tcase_add_test(tc, quorum_mistakes_are_named);
	tcase_add_test(tc, star_grants_no_unseal_or_seal);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
