#!/usr/bin/env bash
# A fresh TPM 2.0 PKCS#11 token in a folder, for keyd's test suite:
#   tpm2.sh start DIR   a software TPM (swtpm, TCP on 127.0.0.1), a private D-Bus session bus
#                       and tpm2-abrmd on it (the resource manager: without one a TPM runs out
#                       of object slots within a few commands), and a tpm2-pkcs11 store under
#                       DIR/store holding one token, made with tpm2_ptool (once, as a template
#                       copied for each start);
#   tpm2.sh stop DIR    stops what start started (by the pids it wrote) and leaves DIR.
# start writes DIR/token.conf, the description the test harness gives keyd (see
# tests/tokens/README.md). Exits 77 (meson's skip) with the reason on stderr when the TPM
# stack is not installed or cannot be started here.
set -euo pipefail

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
token_args tpm2 "$@"

module=$(pkcs11_module libtpm2_pkcs11.so)

stop_all() {
	stop_one abrmd
	stop_one swtpm
	stop_one dbus
}

# shellcheck source=../ports.sh
. "$(dirname "$0")/../ports.sh"

stop_if_asked

for tool in swtpm tpm2-abrmd tpm2_ptool dbus-daemon; do
	command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin command -v "$tool" >/dev/null ||
		skip "$tool is not installed (deploy/deps installs swtpm, tpm2-abrmd, libtpm2-pkcs11-tools, dbus)"
done
[[ -e "$module" ]] || skip "$module is missing (package libtpm2-pkcs11-1)"
export PATH=$PATH:/usr/sbin

# serve: swtpm on DIR/tpm, a private D-Bus bus and tpm2-abrmd on it, until the TPM answers;
# sets port, name, tcti and exports what tpm2-tools and the module need. The daemons do not
# inherit fd 8 (the template's lock), so none of them can hold it after this script.
serve() {
	# swtpm uses PORT for commands and PORT+1 for its control channel, as the swtpm TCTI expects.
	local started=0 ready=0
	for _ in $(seq 20); do
		port=$((20000 + RANDOM % 20000))
		if ! port_free "$port" || ! port_free $((port + 1)); then
			continue
		fi
		if swtpm socket --tpm2 --tpmstate dir="$dir/tpm" \
			--server type=tcp,port=$port,bindaddr=127.0.0.1 \
			--ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
			--flags not-need-init,startup-clear --daemon --pid file="$dir/swtpm.pid" \
			--log file="$dir/swtpm.log" 2>>"$dir/swtpm.log" 8>&-; then
			started=1
			break
		fi
	done
	((started)) || skip "swtpm did not start (see $dir/swtpm.log)"

	cat >"$dir/dbus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$dir/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
CONF
	dbus-daemon --config-file="$dir/dbus.conf" --fork --print-pid >"$dir/dbus.pid" \
		2>"$dir/dbus.log" 8>&- || skip "dbus-daemon did not start (see $dir/dbus.log)"
	bus="unix:path=$dir/bus"
	name=com.intel.tss2.Tabrmd.hsmca
	DBUS_SESSION_BUS_ADDRESS=$bus tpm2-abrmd --session --dbus-name=$name --allow-root \
		--tcti="swtpm:host=127.0.0.1,port=$port" >"$dir/abrmd.log" 2>&1 8>&- &
	echo $! >"$dir/abrmd.pid"

	tcti="tabrmd:bus_type=session,bus_name=$name"
	export DBUS_SESSION_BUS_ADDRESS=$bus TPM2TOOLS_TCTI=$tcti TPM2_PKCS11_TCTI=$tcti
	export TPM2_PKCS11_STORE=$dir/store
	for _ in $(seq 50); do
		if timeout 5 tpm2_getcap properties-fixed >/dev/null 2>&1; then
			ready=1
			break
		fi
		running "$(cat "$dir/abrmd.pid")" || break
		sleep 0.1
	done
	((ready)) || skip "tpm2-abrmd did not answer (see $dir/abrmd.log; is libtss2-tcti-tabrmd0 installed?)"
}

label=hsmca-test

# The token is made once per version of these scripts, as a template: tpm2_ptool's init and
# addtoken (Python, seconds each) would otherwise be most of every test case's set-up. Each
# start copies the template's TPM state (with the primary key ptool persisted) and store
# into DIR, so every test still gets a token of its own that no other test touches. Made
# under a lock; a template whose making did not finish has no "done" and is made again.
version=$(cat "$here/tpm2.sh" "$here/lib.sh" | sha256sum | cut -c1-16)
template=${TMPDIR:-/tmp}/hsmca-tpm2-template-$(id -u)-$version
exec 8>>"$template.lock"
flock -w 300 8 || skip "another run held $template.lock for 300 s"
if [[ ! -e "$template/done" ]]; then
	rm -rf -- "$template"
	mkdir -m 0700 "$template"
	token_dir=$dir
	dir=$template
	mkdir -p "$dir/tpm" "$dir/store"
	chmod 0700 "$dir/tpm" "$dir/store"
	serve
	pin=$(random_hex 8)
	sopin=$(random_hex 8)
	if ! timeout 60 tpm2_ptool init --path "$dir/store" >"$dir/ptool.log" 2>&1 ||
		! timeout 60 tpm2_ptool addtoken --pid=1 --label=$label --sopin="$sopin" \
			--userpin="$pin" --path "$dir/store" >>"$dir/ptool.log" 2>&1; then
		cp "$dir/ptool.log" "$token_dir/ptool.log" 2>/dev/null || true
		dir=$token_dir
		skip "tpm2_ptool could not make the token (see $dir/ptool.log)"
	fi
	write_pin "$pin"
	stop_all # swtpm writes its state as it stops
	dir=$token_dir
	touch "$template/done"
fi
exec 8>&-

mkdir -p "$dir/tpm" "$dir/store"
chmod 0700 "$dir/tpm" "$dir/store"
cp -a "$template/tpm/." "$dir/tpm/"
cp -a "$template/store/." "$dir/store/"
pin=$(cat "$template/pin")
serve

write_pin "$pin"
# keyd settings this token needs (docs/hsm-compatibility.md): tpm2-pkcs11 signs RSA PKCS#1
# v1.5 by a raw decryption, so RSA keys need CKA_DECRYPT; and re-initialising the module
# after a fault reconnects to tpm2-abrmd over D-Bus (a Unix socket), which keyd's seccomp
# filter allows only with module_ipc.
cat >"$dir/token.conf" <<CONF
module=$module
label=$label
pin_file=$dir/pin
env=TPM2_PKCS11_TCTI=$tcti
env=TPM2_PKCS11_STORE=$dir/store
env=DBUS_SESSION_BUS_ADDRESS=$bus
env=TSS2_LOG=all+NONE
env=LSAN_OPTIONS=suppressions=$here/tpm2.lsan.supp:print_suppressions=0
keyd=rsa_sign_by_decrypt: true
keyd=module_ipc: true
CONF
echo "tpm2 token \"$label\" ready in $dir (swtpm on 127.0.0.1:$port)"
