# shellcheck shell=bash
# What the token scripts of tests/tokens share (tests/tokens/README.md). Sourced by each:
#
#   . "$(dirname "$0")/lib.sh"
#   token_args NAME "$@"    # sets cmd (start or stop) and dir; NAME is for SKIP lines
#   stop_all() { ...; }     # what stop does; skip calls it too
#   stop_if_asked           # cmd stop: stop_all and exit 0
#
# It sets here, the folder of the scripts (their LeakSanitizer suppressions live there).

# shellcheck disable=SC2034 # used by the scripts that source this
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# token_args NAME CMD DIR: cmd and dir, or the usage on stderr and exit 2.
token_args() {
	token_name=$1
	cmd=${2:-}
	dir=${3:-}
	if [[ -z "$cmd" || -z "$dir" || ("$cmd" != start && "$cmd" != stop) ]]; then
		echo "usage: $0 start|stop DIR" >&2
		exit 2
	fi
}

# skip REASON...: this token cannot be made here: stop what was started, exit 77 (meson's skip).
skip() {
	echo "SKIP $token_name token: $*" >&2
	stop_all
	exit 77
}

stop_if_asked() {
	[[ "$cmd" == stop ]] || return 0
	stop_all
	exit 0
}

# running PID: the process is there and has not exited. The daemons start leaves behind are
# not this shell's children: once they exit they stay zombies until whoever adopted them
# (init, or a subreaper) reaps them, which can take seconds, and `kill -0` still succeeds
# on a zombie. So read the state from /proc: gone or Z (zombie) is not running.
running() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) } # past "PID (comm) "; comm may hold spaces and parentheses
	[[ -n "$stat" && "${stat%% *}" != Z ]]
}

# stop_pid PID: TERM, up to 5 s to go, then KILL.
stop_pid() {
	kill "$1" 2>/dev/null || true
	for _ in $(seq 50); do
		running "$1" || return 0
		sleep 0.1
	done
	kill -9 "$1" 2>/dev/null || true
}

# stop_one NAME: stop the process whose pid start wrote to DIR/NAME.pid, and forget it.
stop_one() {
	local f=$dir/$1.pid
	[[ -s "$f" ]] || return 0
	stop_pid "$(cat "$f")"
	rm -f "$f"
}

# random_hex BYTES: that many random bytes as lower-case hexadecimal (PINs).
random_hex() {
	od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

# pkcs11_module FILE: where Debian installs the PKCS#11 module FILE on this machine.
pkcs11_module() {
	local multiarch
	multiarch=$(gcc -print-multiarch 2>/dev/null || true)
	echo "/usr/lib/${multiarch:-x86_64-linux-gnu}/pkcs11/$1"
}

# write_pin PIN: DIR/pin, mode 0600, token.conf's pin_file.
write_pin() {
	(umask 077 && printf '%s' "$1" >"$dir/pin")
}
