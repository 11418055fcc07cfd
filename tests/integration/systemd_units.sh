#!/usr/bin/env bash
# The systemd units of deploy/systemd, as meson configured them for installation:
# `systemd-analyze verify` passes on each, and `systemd-analyze security --offline=true` scores
# hsmca-keyd at 1.5 or lower and every other unit at 2.5 or lower (docs/systemd.md).
#
# usage: systemd_units.sh UNIT_DIR DAEMON=BUILT_BINARY...
# verify checks that ExecStart's program exists, so each unit is checked in a scratch folder
# with its installed path replaced by the binary this build made; a daemon this tree does not
# build yet gets an executable stand-in, and the script says so.
set -euo pipefail

unit_dir=$1
shift
declare -A built=()
for arg in "$@"; do
	built[${arg%%=*}]=${arg#*=}
done
declare -A bound=([keyd]=1.5 [cad]=2.5 [ocspd]=2.5 [crld]=2.5 [acmevald]=2.5)

command -v systemd-analyze >/dev/null || {
	echo "systemd-analyze is missing (Debian package systemd, in deploy/deps)" >&2
	exit 1
}

work=$(mktemp -d /tmp/hsmca-units-XXXXXX)
trap 'rm -rf -- "$work"' EXIT
failed=0
for daemon in keyd cad ocspd crld acmevald; do
	unit=hsmca-$daemon.service
	src=$unit_dir/$unit
	[[ -f "$src" ]] || { echo "FAIL $unit: not generated in $unit_dir" >&2; failed=1; continue; }
	bin=${built[$daemon]:-}
	if [[ -z "$bin" || ! -x "$bin" ]]; then
		bin=$work/bin/hsmca-$daemon
		mkdir -p -- "$work/bin"
		printf '#!/bin/sh\nexit 0\n' >"$bin"
		chmod 0755 -- "$bin"
		echo "note: hsmca-$daemon is not built in this tree; its unit is verified against a stand-in"
	fi
	# The installed binary path, whatever the prefix, becomes the built one.
	sed -E "s#^ExecStart=[^ ]*/hsmca-$daemon( |\$)#ExecStart=$bin\\1#" "$src" >"$work/$unit"
	grep -q "^ExecStart=$bin" "$work/$unit" || { echo "FAIL $unit: no ExecStart for hsmca-$daemon" >&2; failed=1; continue; }

	if ! out=$(cd "$work" && systemd-analyze verify "./$unit" 2>&1) || [[ -n "$out" ]]; then
		echo "FAIL $unit: systemd-analyze verify:" >&2
		echo "$out" >&2
		failed=1
		continue
	fi
	score=$(cd "$work" && systemd-analyze security --offline=true "./$unit" 2>&1 |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	if [[ -z "$score" ]]; then
		echo "FAIL $unit: no exposure level from systemd-analyze security" >&2
		failed=1
		continue
	fi
	if awk -v s="$score" -v b="${bound[$daemon]}" 'BEGIN { exit !(s > b) }'; then
		echo "FAIL $unit: exposure $score is above ${bound[$daemon]}" >&2
		(cd "$work" && systemd-analyze security --offline=true "./$unit" 2>&1 | grep -v '✓') >&2
		failed=1
		continue
	fi
	echo "ok   $unit: verify passes, exposure $score (bound ${bound[$daemon]})"
done
exit $failed
