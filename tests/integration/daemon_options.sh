#!/usr/bin/env bash
# Every daemon answers the common options the same way (ca-core/lib/daemon_main.h): --help
# names them on stdout and exits 0, --version prints "NAME VERSION" and exits 0, a usage error
# exits 2, a configuration that does not load fails --check with 1 and names the field. keyd
# still accepts --debug, its old name for --verbose.
#
# usage: daemon_options.sh BUILT_BINARY...
set -uo pipefail

work=$(mktemp -d /tmp/hsmca-options-XXXXXX)
trap 'rm -rf -- "$work"' EXIT
printf 'nonsense_field: 1\n' >"$work/bad.yaml"
failed=0
fail() {
	echo "FAIL $*" >&2
	failed=1
}

for bin in "$@"; do
	name=$(basename -- "$bin")
	out=$("$bin" --help 2>/dev/null)
	rc=$?
	[[ $rc -eq 0 ]] || fail "$name --help: exit $rc, not 0"
	for opt in '--config FILE' --check --verbose --version --help; do
		grep -qe "$opt" <<<"$out" || fail "$name --help does not name $opt"
	done
	grep -q -- --debug <<<"$out" && fail "$name --help names --debug (hidden alias only)"

	out=$("$bin" --version 2>/dev/null)
	rc=$?
	[[ $rc -eq 0 ]] || fail "$name --version: exit $rc, not 0"
	[[ $out =~ ^$name\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "$name --version printed \"$out\""

	"$bin" >/dev/null 2>&1
	rc=$?
	[[ $rc -eq 2 ]] || fail "$name without --config: exit $rc, not 2"
	"$bin" --config "$work/bad.yaml" --no-such-option >/dev/null 2>&1
	rc=$?
	[[ $rc -eq 2 ]] || fail "$name --no-such-option: exit $rc, not 2"

	err=$("$bin" --config "$work/bad.yaml" --check 2>&1 >/dev/null)
	rc=$?
	[[ $rc -eq 1 ]] || fail "$name --check on a bad configuration: exit $rc, not 1"
	grep -q nonsense_field <<<"$err" || fail "$name --check does not name the bad field: $err"

	if [[ $name == hsmca-keyd ]]; then
		"$bin" --config "$work/bad.yaml" --check --debug >/dev/null 2>&1
		rc=$?
		[[ $rc -eq 1 ]] || fail "$name --debug (alias of --verbose): exit $rc, not 1"
	fi
	echo "ok $name"
done
exit $failed
