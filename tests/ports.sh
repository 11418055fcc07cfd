# shellcheck shell=bash
# Sourced by the test scripts that start daemons on TCP ports (the quickstart smokes, the
# replica responder, the fault run, the TPM token).
#
# port_free PORT: nothing accepts connections on 127.0.0.1 port PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_port VAR: a random free port in 10000..31999 into VAR, none of those this shell picked
# before. Not "the first free one from N": a second run of the tests beside this one (another
# clone, a CI runner) would pick the same port at the same moment, or take it while one of this
# run's daemons is down between a stop and its restart. Not the kernel's ephemeral range (32768
# on) either: the tests' own client connections take their source ports there and could take a
# stopped daemon's port. Returns 1 with a message naming the range when none is found.
hsmca_ports_taken=()
pick_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((10000 + RANDOM % 22000))
		[[ " ${hsmca_ports_taken[*]} " == *" $p "* ]] && continue
		if port_free "$p"; then
			hsmca_ports_taken+=("$p")
			printf -v "$1" '%s' "$p"
			return 0
		fi
	done
	echo "no free port in 10000..31999 after 100 tries" >&2
	return 1
}
