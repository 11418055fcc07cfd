/* Who may create, manage and make tokens for whom: cad_role_may over every (actor role, target
 * role, action) and both "the actor itself" and "another principal", against the emCA model
 * written out here independently of the code: ca-admin manages every role, admin manages
 * officers, auditors, operators and ras, nobody else manages anyone; and a token, which its
 * maker sees, is only ever made with a role the maker holds itself, so an admin can never act
 * as an officer (or auditor, operator, ra) through a token it made. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cad_internal.h"

static const char *const roles[] = {"ca-admin", "admin", "officer", "auditor", "operator", "ra"};
#define NROLES (sizeof(roles) / sizeof(roles[0]))

/* The model: may a principal of role a manage (create, disable, revoke tokens of) one of t? */
static int manages(const char *a, const char *t)
{
	if (!strcmp(a, "ca-admin"))
		return 1;
	if (!strcmp(a, "admin"))
		return !strcmp(t, "officer") || !strcmp(t, "auditor") || !strcmp(t, "operator") ||
		       !strcmp(t, "ra");
	return 0;
}

START_TEST(every_actor_target_and_action)
{
	int checked = 0;

	for (size_t a = 0; a < NROLES; a++)
		for (size_t t = 0; t < NROLES; t++)
			for (int self = 0; self < 2; self++) {
				const char *actor = "alice", *target = self ? "alice" : "bob";
				int same_role = !strcmp(roles[a], roles[t]);
				int want_manage = manages(roles[a], roles[t]);
				int want_mint = same_role && (self || manages(roles[a], roles[t]));

				if (self && !same_role)
					continue; /* one principal has one role */
				ck_assert_msg(cad_role_may(roles[a], actor, CAD_OP_CREATE, roles[t],
				                           target) == want_manage,
				              "%s creating a %s", roles[a], roles[t]);
				ck_assert_msg(cad_role_may(roles[a], actor, CAD_OP_MANAGE, roles[t],
				                           target) == want_manage,
				              "%s managing a %s", roles[a], roles[t]);
				ck_assert_msg(cad_role_may(roles[a], actor, CAD_OP_MINT_TOKEN,
				                           roles[t], target) == want_mint,
				              "%s making a token for %s %s", roles[a],
				              self ? "itself, a" : "another", roles[t]);
				checked++;
			}
	ck_assert_int_eq(checked, (int)(NROLES * NROLES + NROLES));
}
END_TEST

/* The escalation the review found, spelled out: an admin makes officers (and the others) but
 * cannot make a token for one, for itself as one, nor for a ca-admin. */
START_TEST(an_admin_never_acts_as_a_role_it_manages)
{
	for (size_t t = 2; t < NROLES; t++) {
		ck_assert(cad_role_may("admin", "adm", CAD_OP_CREATE, roles[t], "x"));
		ck_assert(!cad_role_may("admin", "adm", CAD_OP_MINT_TOKEN, roles[t], "x"));
	}
	ck_assert(!cad_role_may("admin", "adm", CAD_OP_MINT_TOKEN, "ca-admin", "root"));
	ck_assert(!cad_role_may("admin", "adm", CAD_OP_MINT_TOKEN, "admin", "adm2"));
	ck_assert(cad_role_may("admin", "adm", CAD_OP_MINT_TOKEN, "admin", "adm"));
	ck_assert(!cad_role_may("ca-admin", "root", CAD_OP_MINT_TOKEN, "officer", "off"));
	ck_assert(cad_role_may("officer", "off", CAD_OP_MINT_TOKEN, "officer", "off"));
	ck_assert(!cad_role_may("officer", "off", CAD_OP_MINT_TOKEN, "officer", "off2"));
	ck_assert(!cad_role_may("nonsense", "x", CAD_OP_CREATE, "officer", "y"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cad-roles");
	TCase *tc = tcase_create("roles");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, every_actor_target_and_action);
	tcase_add_test(tc, an_admin_never_acts_as_a_role_it_manages);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
