#!/usr/bin/env bash
# The first of README's two commands, as a user runs it: ./deploy/quickstart on a fresh state
# folder, detached; the environment file, the demo PKI and keyd answer as the README says; a
# second start keeps the PKI; --stop leaves nothing running.
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd -P)
state=$(mktemp -d "${TMPDIR:-/tmp}/hsmca-quickstart.XXXXXX")
log=$state.log
cleanup() {
	"$repo/deploy/quickstart" --state "$state" --stop >/dev/null 2>&1 || true
	rm -rf "$state" "$log"
}
trap cleanup EXIT
fail() {
	echo "quickstart smoke: $*" >&2
	tail -n 30 "$log" >&2 || true
	exit 1
}

unset HSMCA_KEYD_SOCKET SOFTHSM2_CONF OPENSSL_MODULES OPENSSL_CONF HSMCA_CA_BUNDLE
"$repo/deploy/quickstart" --state "$state" --detach >"$log" 2>&1 || fail "first start failed"

[[ -f $state/env ]] || fail "no $state/env"
[[ $(stat -c %a "$state/env") == 600 ]] || fail "env is not mode 0600"
# shellcheck disable=SC1091
source "$state/env"
[[ -S $HSMCA_KEYD_SOCKET ]] || fail "HSMCA_KEYD_SOCKET is not a socket"
[[ -f $HSMCA_CA_BUNDLE ]] || fail "HSMCA_CA_BUNDLE missing"
grep -q "$(cat "$state/keyd/pin")" "$log" "$state/log/keyd.log" && fail "the PIN appears in a log"

hsmca=$repo/build/ca-core/cli/hsmca
"$hsmca" keyd status | grep -q "online: yes" || fail "keyd status is not online"
for k in demo-root demo-issuing demo-ocsp demo-operator-ca; do
	"$hsmca" keyd list | grep -q "^$k	.*never-extractable" || fail "key $k missing or extractable"
done
pki=$state/pki
openssl verify -CAfile "$pki/demo-root.pem" "$pki/demo-issuing.pem" >/dev/null ||
	fail "issuing CA does not verify"
openssl verify -CAfile "$pki/demo-root.pem" -untrusted "$pki/demo-issuing.pem" \
	"$pki/demo-ocsp.pem" >/dev/null || fail "OCSP signer does not verify"
for t in demo-root demo-issuing demo-ocsp demo-operator-ca; do
	[[ -f $pki/$t.transcript.txt ]] || fail "no transcript for $t"
done

# README's signing example, through the provider and keyd.
msg=$state/msg
echo hello >"$msg"
openssl dgst -sha256 -provider keyd -provider default -sign keyd:label=demo-issuing \
	-out "$msg.sig" "$msg" || fail "openssl dgst -sign keyd:label=demo-issuing failed"
openssl x509 -in "$pki/demo-issuing.pem" -pubkey -noout >"$msg.pub"
openssl dgst -sha256 -verify "$msg.pub" -signature "$msg.sig" "$msg" >/dev/null ||
	fail "the signature made through keyd does not verify"

# A second start with the same state keeps the PKI (no second ceremony).
before=$(sha256sum "$pki/demo-root.pem")
"$repo/deploy/quickstart" --state "$state" --stop >>"$log" 2>&1 || fail "--stop failed"
[[ ! -S $HSMCA_KEYD_SOCKET ]] || fail "keyd socket still there after --stop"
"$repo/deploy/quickstart" --state "$state" --detach >>"$log" 2>&1 || fail "second start failed"
[[ $(sha256sum "$pki/demo-root.pem") == "$before" ]] || fail "second start changed the root"
"$hsmca" keyd status | grep -q "keys: 4" || fail "second start changed the keys"
"$repo/deploy/quickstart" --state "$state" --stop >>"$log" 2>&1 || fail "second --stop failed"
if pgrep -f "hsmca-keyd --config $state" >/dev/null; then fail "keyd still running"; fi
echo "quickstart smoke: ok"
