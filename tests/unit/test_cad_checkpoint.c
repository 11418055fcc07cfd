/* The audit checkpoint hsmca-cad signs is the structure keyd knows as kind audit-checkpoint:
 * cad's own encoder, read by keyd's kind reader, for small and large sequence numbers. */
#include <check.h>
#include <string.h>

#include "cad_internal.h"
#include "keyd_kind.h"

START_TEST(cad_checkpoint_is_keyd_kind_audit_checkpoint)
{
	static const int64_t seqs[] = {1, 127, 128, 65536, INT64_MAX};
	uint8_t hash[32], der[CAD_CHECKPOINT_DER_MAX];
	struct keyd_kind_info ki;

	memset(hash, 0xa5, sizeof(hash));
	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		size_t n = cad_checkpoint_der(seqs[i], hash, der);
		ck_assert_uint_gt(n, 0);
		keyd_kind_read(der, n, 1, &ki);
		ck_assert_int_eq(ki.kind, KEYD_KIND_CHECKPOINT);
		ck_assert_uint_eq(ki.total, n);
		/* the head hash is the structure's last 32 bytes */
		ck_assert_mem_eq(der + n - 32, hash, 32);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cad-checkpoint");
	TCase *tc = tcase_create("checkpoint");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, cad_checkpoint_is_keyd_kind_audit_checkpoint);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
