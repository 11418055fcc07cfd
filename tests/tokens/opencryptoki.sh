#!/usr/bin/env bash
# A fresh openCryptoki software token ("swtok") in a folder, for keyd's test suite:
#   opencryptoki.sh start DIR   a slot configuration with only the software token, its data
#                               store in DIR/store, pkcsslotd started as a private process
#                               reading that configuration, and the token initialised with
#                               pkcsconf (label, SO PIN, user PIN);
#   opencryptoki.sh stop DIR    stops what start started (by the pids it wrote) and leaves DIR.
# start writes DIR/token.conf, the description the test harness gives keyd (see
# tests/tokens/README.md). Exits 77 (meson's skip) with the reason on stderr when
# openCryptoki is not installed or cannot be started here.
#
# openCryptoki 3.8 (Debian 12) fixes its paths at build time: pkcsslotd reads
# /etc/opencryptoki/opencryptoki.conf and listens on /run/pkcsslotd.socket, the library
# finds pkcsslotd through that socket and a System V shared memory segment keyed on the
# pkcsslotd binary, and a token's data store is /var/lib/opencryptoki/TOKNAME. So:
# - pkcsslotd runs in its own mount namespace (unshare -m) where our configuration is bound
#   over /etc/opencryptoki/opencryptoki.conf; the system's file is not changed;
# - the data store is DIR/store, reached through a symlink /var/lib/opencryptoki/TOKNAME
#   with a name unique to the run (removed by stop), and its lock folder
#   /var/lock/opencryptoki/TOKNAME likewise;
# - only one pkcsslotd can run on a machine: a lock (/run/lock/hsmca-opencryptoki.lock)
#   held by a small holder process for the token's lifetime makes concurrent runs wait, and
#   a pkcsslotd this script did not start (the system service) is a SKIP.
set -euo pipefail

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
token_args opencryptoki "$@"

export PATH=$PATH:/usr/sbin
module=$(pkcs11_module libopencryptoki.so)
conf=/etc/opencryptoki/opencryptoki.conf
lock=/run/lock/hsmca-opencryptoki.lock
# "PID TOKNAME" of the pkcsslotd this script started last, until its stop.
owner=/run/lock/hsmca-opencryptoki.owner
slotd_pidfile=/run/pkcsslotd.pid

remove_token_links() {
	rm -f "/var/lib/opencryptoki/$1"
	rm -rf "/var/lock/opencryptoki/$1"
}

stop_all() {
	local ours=
	[[ -s "$dir/pkcsslotd.pid" ]] && ours=$(cat "$dir/pkcsslotd.pid")
	stop_one pkcsslotd
	# pkcsslotd leaves its pid file behind when it stops: remove ours, so that the next run
	# does not take a pid that exited (or was reused) for a pkcsslotd someone else started.
	if [[ -n "$ours" && -s "$slotd_pidfile" && "$(cat "$slotd_pidfile")" == "$ours" ]]; then
		rm -f "$slotd_pidfile"
	fi
	if [[ -s "$dir/tokname" ]]; then
		remove_token_links "$(cat "$dir/tokname")"
		rm -f "$dir/tokname" "$owner"
	fi
	stop_one lock # last: the next run may start its pkcsslotd once this one is gone
}

# A pkcsslotd that an earlier run of this script started and never stopped (a test case that
# failed before its clean-up): that run is over, since this one holds the lock its holder
# held, so stop it rather than refuse every later run.
stop_leftover() {
	local opid oname
	[[ -s "$owner" ]] || return 0
	read -r opid oname <"$owner" || true
	if [[ -n "$opid" && -s "$slotd_pidfile" && "$(cat "$slotd_pidfile")" == "$opid" ]] &&
		running "$opid"; then
		echo "stopping pkcsslotd $opid, left running by an earlier run of $0" >&2
		stop_pid "$opid"
	fi
	[[ -z "$oname" ]] || remove_token_links "$oname"
	rm -f "$owner"
}

stop_if_asked

for tool in pkcsslotd pkcsconf unshare flock; do
	command -v "$tool" >/dev/null || skip "$tool is not installed (deploy/deps installs opencryptoki)"
done
[[ -e "$module" ]] || skip "$module is missing (package opencryptoki)"
[[ -e "$conf" ]] || skip "$conf is missing (package opencryptoki)"
[[ -w /var/lib/opencryptoki && -w /var/lock/opencryptoki ]] ||
	skip "/var/lib/opencryptoki and /var/lock/opencryptoki are not writable (run as root)"
unshare -m true 2>/dev/null || skip "cannot make a mount namespace (unshare -m) here"

# One pkcsslotd per machine: wait for any other run's token to be stopped.
(
	exec 9>>"$lock"
	flock -w 600 9 || exit 1
	echo locked >"$dir/locked"
	exec sleep infinity
) </dev/null >/dev/null 2>&1 &
echo $! >"$dir/lock.pid"
for _ in $(seq 6000); do
	[[ -e "$dir/locked" ]] && break
	running "$(cat "$dir/lock.pid")" || skip "another openCryptoki test token held $lock for 600 s"
	sleep 0.1
done
[[ -e "$dir/locked" ]] || skip "another openCryptoki test token held $lock for 600 s"
stop_leftover
if [[ -s "$slotd_pidfile" ]] && running "$(cat "$slotd_pidfile")"; then
	skip "a pkcsslotd this script did not start is running (pid $(cat "$slotd_pidfile"), the system service?); stop it first"
fi

name=hsmca-$(random_hex 4)
echo "$name" >"$dir/tokname"
mkdir -p "$dir/store/TOK_OBJ"
chgrp -R pkcs11 "$dir/store" 2>/dev/null || true
chmod -R 0770 "$dir/store"
ln -sfn "$dir/store" "/var/lib/opencryptoki/$name"
mkdir -p "/var/lock/opencryptoki/$name"
cat >"$dir/opencryptoki.conf" <<CONF
version opencryptoki-3.1

slot 0
{
stdll = libpkcs11_sw.so
tokname = $name
description = "hsmca test software token"
}
CONF

rm -f "$slotd_pidfile"
# shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
unshare -m --propagation private sh -c \
	'mount --bind "$1" "$2" && exec pkcsslotd' sh "$dir/opencryptoki.conf" "$conf" \
	>"$dir/pkcsslotd.log" 2>&1 || skip "pkcsslotd did not start (see $dir/pkcsslotd.log)"
for _ in $(seq 50); do
	[[ -s "$slotd_pidfile" ]] && break
	sleep 0.1
done
[[ -s "$slotd_pidfile" ]] || skip "pkcsslotd wrote no pid file (see $dir/pkcsslotd.log)"
cp "$slotd_pidfile" "$dir/pkcsslotd.pid"
echo "$(cat "$slotd_pidfile") $name" >"$owner"

label=hsmca-test
# A new software token's SO PIN is 87654321 until changed; it takes PINs of 4 to 8 characters.
pin=$(random_hex 4)
sopin=$(random_hex 4)
{
	echo "$label" | pkcsconf -c 0 -I -S 87654321 &&
		pkcsconf -c 0 -P -S 87654321 -n "$sopin" &&
		pkcsconf -c 0 -u -S "$sopin" -n "$pin"
} >"$dir/pkcsconf.log" 2>&1 || skip "pkcsconf could not initialise the token (see $dir/pkcsconf.log)"

write_pin "$pin"
cat >"$dir/token.conf" <<CONF
module=$module
label=$label
pin_file=$dir/pin
keyd=module_ipc: true
env=LSAN_OPTIONS=suppressions=$here/opencryptoki.lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0
CONF
echo "opencryptoki token \"$label\" ready in $dir (data store $dir/store as /var/lib/opencryptoki/$name)"
