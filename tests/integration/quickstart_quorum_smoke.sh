#!/usr/bin/env bash
# ./deploy/quickstart --quorum on a fresh state folder, as docs/quorum.md tells it: the PIN is
# split into three share files (mode 0600) and is on disk nowhere, keyd starts sealed and the
# quickstart says on its last lines how to unseal; one share is not enough, a second unseals
# keyd and the quickstart brings up the other daemons. Then a seal makes hsmca-cad answer
# keyd-unavailable, and two shares later the same hsmca-cad (no restart) issues again, the same
# hsmca-ocspd answers for that certificate and the same hsmca-crld publishes its revocation.
# --stop leaves nothing running.
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd -P)
state=$(mktemp -d "${TMPDIR:-/tmp}/hsmca-quorum.XXXXXX")
log=$state.log
qs_pid=
cleanup() {
	[[ -n $qs_pid ]] && kill "$qs_pid" 2>/dev/null
	"$repo/deploy/quickstart" --state "$state" --stop >/dev/null 2>&1 || true
	rm -rf "$state" "$log"
}
trap cleanup EXIT
fail() {
	echo "quickstart --quorum smoke: $*" >&2
	tail -n 30 "$log" >&2 || true
	exit 1
}
unset HSMCA_KEYD_SOCKET SOFTHSM2_CONF OPENSSL_MODULES OPENSSL_CONF HSMCA_CA_BUNDLE \
	HSMCA_API_URL HSMCA_CLIENT_CERT HSMCA_CLIENT_KEY HSMCA_API_TOKEN PGHOST PGPORT PGDATABASE \
	PGUSER HSMCA_OCSP_URL HSMCA_EST_URL HSMCA_ACME_URL
hsmca=$repo/build/ca-core/cli/hsmca
shares=$state/keyd/shares
export HSMCA_KEYD_SOCKET=$state/run/keyd/keyd.sock

# Random free ports, not the quickstart's defaults: another run of the tests beside this one
# starts quickstarts too, and the default CRL port is chosen a minute before hsmca-crld binds it.
# shellcheck source=tests/ports.sh
source "$repo/tests/ports.sh"
pick_port api_port || exit 1
pick_port ocsp_port || exit 1
pick_port crl_port || exit 1
ports=(--api-port "$api_port" --ocsp-port "$ocsp_port" --crl-port "$crl_port")
"$repo/deploy/quickstart" --state "$state" "${ports[@]}" --quorum --detach >"$log" 2>&1 &
qs_pid=$!
# The build may come first: wait up to 15 minutes for the instructions.
for ((i = 0; i < 900; i++)); do
	grep -q "waiting for the quorum" "$log" && break
	kill -0 "$qs_pid" 2>/dev/null || fail "the quickstart ended before keyd was unsealed"
	sleep 1
done
grep -q "waiting for the quorum" "$log" || fail "no unseal instructions"
tail -n 7 "$log" | grep -qF "hsmca keyd unseal '$shares/custodian-1.share'" ||
	fail "the last lines do not say how to unseal"
[[ ! -e $state/keyd/pin ]] || fail "the PIN file is still there"
grep -q "^activation: quorum" "$state/keyd/keyd.yaml" || fail "keyd.yaml has no activation: quorum"
grep -q "pin_file" "$state/keyd/keyd.yaml" && fail "keyd.yaml names a PIN file"
for n in 1 2 3; do
	[[ $(stat -c %a "$shares/custodian-$n.share") == 600 ]] || fail "custodian-$n.share is not mode 0600"
done
"$hsmca" keyd status >"$state/status" || true
grep -q "^sealed: yes" "$state/status" || fail "keyd is not sealed: $(cat "$state/status")"
if "$hsmca" keyd list 2>"$state/list.err"; then
	fail "a sealed keyd listed its keys"
fi
grep -q "keyd is sealed" "$state/list.err" || fail "a sealed keyd does not say so: $(cat "$state/list.err")"

"$hsmca" keyd unseal "$shares/custodian-3.share" | grep -q "1 of 2 shares presented" ||
	fail "the first share was not counted"
sleep 2
"$hsmca" keyd status >"$state/status" || true
grep -q "^shares: 1 of 2 presented" "$state/status" || fail "status after one share: $(cat "$state/status")"
grep -q "^expected: custodian-1, custodian-2" "$state/status" || fail "status does not name who is expected"
kill -0 "$qs_pid" 2>/dev/null || fail "the quickstart went on with one share"
"$hsmca" keyd unseal "$shares/custodian-1.share" | grep -qx unsealed || fail "two shares did not unseal"
wait "$qs_pid" || fail "the quickstart failed after the unseal"
qs_pid=
grep -q "hsmca-keyd is unsealed" "$log" || fail "the quickstart did not notice the unseal"
grep -q "hsmca-cad (pid" "$log" || fail "hsmca-cad did not start"
# Shares are secrets: none of their lines is in a log.
for n in 1 3; do
	line=$(grep '^share: ' "$shares/custodian-$n.share" | cut -c8-40)
	grep -rqF "$line" "$state/log" "$log" && fail "a share appears in a log"
done

# shellcheck disable=SC1091
source "$state/env"
officer=(--cert "$state/operator/demo-officer.pem" --key "$state/operator/demo-officer.key")
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$state/www.key" \
	-subj /CN=www.example.com -addext subjectAltName=DNS:www.example.com \
	-out "$state/www.csr" 2>/dev/null || fail "openssl req failed"
issue() { "$hsmca" issue --profile tls-server --csr "$state/www.csr" "${officer[@]}" >"$state/www.pem" 2>"$state/issue.err"; }
issue || fail "issuance after the unseal failed: $(cat "$state/issue.err")"
cad_pid=$(cat "$state/run/cad.pid")

# Sealed again: hsmca-cad answers keyd-unavailable, and recovers once unsealed, unrestarted.
"$hsmca" keyd seal | grep -qx sealed || fail "hsmca keyd seal failed"
if issue; then fail "hsmca-cad issued while keyd was sealed"; fi
grep -q "keyd-unavailable" "$state/issue.err" || fail "issuance while sealed: $(cat "$state/issue.err")"
"$hsmca" keyd unseal "$shares/custodian-2.share" >/dev/null || fail "unseal after seal (1)"
"$hsmca" keyd unseal "$shares/custodian-3.share" | grep -qx unsealed || fail "unseal after seal (2)"
ok=0
for ((i = 0; i < 30; i++)); do
	if issue; then ok=1; break; fi
	sleep 1
done
((ok)) || fail "hsmca-cad did not issue again after the unseal: $(cat "$state/issue.err")"
[[ $(cat "$state/run/cad.pid") == "$cad_pid" ]] || fail "hsmca-cad was restarted"
kill -0 "$cad_pid" || fail "hsmca-cad is gone"

# hsmca-ocspd and hsmca-crld lived through the seal too, and sign again unrestarted: an OCSP
# answer for the certificate issued after the unseal, and a CRL naming it once revoked.
ocspd_pid=$(cat "$state/run/ocspd.pid")
crld_pid=$(cat "$state/run/crld.pid")
serial=$(openssl x509 -in "$state/www.pem" -noout -serial | cut -d= -f2)
ok=0
for ((i = 0; i < 60; i++)); do
	out=$(openssl ocsp -url "$HSMCA_OCSP_URL" -issuer "$state/pki/demo-issuing.pem" \
		-cert "$state/www.pem" -CAfile "$HSMCA_CA_BUNDLE" 2>&1) || true
	if grep -q "www.pem: good" <<<"$out" && grep -q "Response verify OK" <<<"$out"; then
		ok=1
		break
	fi
	sleep 1
done
((ok)) || fail "hsmca-ocspd does not answer for the new certificate after the unseal: $out"
"$hsmca" revoke "$serial" --reason keyCompromise "${officer[@]}" >/dev/null || fail "revoke failed"
ok=0
for ((i = 0; i < 60; i++)); do
	if curl -fsS "${HSMCA_CRL_URL}demo-issuing.crl" 2>/dev/null |
		openssl crl -inform DER -noout -text 2>/dev/null | grep -q "Serial Number: $serial"; then
		ok=1
		break
	fi
	sleep 1
done
((ok)) || fail "hsmca-crld did not publish the revocation after the unseal"
{ [[ $(cat "$state/run/ocspd.pid") == "$ocspd_pid" ]] && kill -0 "$ocspd_pid"; } ||
	fail "hsmca-ocspd was restarted"
{ [[ $(cat "$state/run/crld.pid") == "$crld_pid" ]] && kill -0 "$crld_pid"; } ||
	fail "hsmca-crld was restarted"

"$repo/deploy/quickstart" --state "$state" --stop >/dev/null 2>&1 || fail "--stop failed"
if pgrep -f -- "--config $state" >/dev/null; then fail "daemons left running after --stop"; fi
echo "quickstart --quorum smoke: ok"
