#!/usr/bin/env bash
# The first of README's two commands, as a user runs it: ./deploy/quickstart on a fresh state
# folder, detached; the environment file, the demo PKI and keyd answer as the README says;
# PostgreSQL and hsmca-cad run, and README's issuance example (issue, show, revoke) works; a
# second start keeps the PKI and the database; --stop leaves nothing running.
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

unset HSMCA_KEYD_SOCKET SOFTHSM2_CONF OPENSSL_MODULES OPENSSL_CONF HSMCA_CA_BUNDLE \
	HSMCA_API_URL HSMCA_CLIENT_CERT HSMCA_CLIENT_KEY HSMCA_API_TOKEN PGHOST PGPORT PGDATABASE \
	PGUSER
# no_daemons_left: nothing of this state folder runs (else print what does, and fail).
no_daemons_left() {
	local what
	for what in "hsmca-keyd --config $state" "hsmca-cad --config $state" \
		"postgres -D $state/pg/data"; do
		if pgrep -f -- "$what" >/dev/null; then
			echo "$what"
			return 1
		fi
	done
	if [[ -e $state/pg/data/postmaster.pid ]]; then
		echo "postgres (postmaster.pid)"
		return 1
	fi
}
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

# The database and hsmca-cad.
for v in HSMCA_API_URL HSMCA_CLIENT_CERT HSMCA_CLIENT_KEY PGHOST PGPORT PGDATABASE; do
	[[ -n ${!v:-} ]] || fail "$v is not in the environment file"
done
[[ $HSMCA_API_URL == https://127.0.0.1:* ]] || fail "HSMCA_API_URL is $HSMCA_API_URL"
[[ -S $PGHOST/.s.PGSQL.$PGPORT ]] || fail "no PostgreSQL socket in $PGHOST"
[[ $(psql -X -tA -c "SHOW listen_addresses") == "" ]] || fail "PostgreSQL listens on TCP"
psql -X -tA -c "SELECT count(*) FROM principals" | grep -qx 2 ||
	fail "the database does not hold the two quickstart principals"
[[ $(stat -c %a "$HSMCA_CLIENT_KEY") == 600 ]] || fail "the operator key is not mode 0600"
openssl verify -CAfile "$pki/demo-root.pem" -untrusted "$pki/demo-operator-ca.pem" \
	"$HSMCA_CLIENT_CERT" >/dev/null || fail "the ca-admin certificate does not verify"
"$hsmca" principal show ca-admin | grep -q '"ca-admin"' || fail "ca-admin cannot use the API"

# README's issuance example: a CSR, issued by demo-officer, shown, revoked.
officer=(--cert "$state/operator/demo-officer.pem" --key "$state/operator/demo-officer.key")
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$state/www.key" \
	-subj /CN=www.example.com -addext subjectAltName=DNS:www.example.com \
	-out "$state/www.csr" 2>/dev/null || fail "openssl req failed"
"$hsmca" issue --profile tls-server --csr "$state/www.csr" "${officer[@]}" \
	>"$state/www.pem" 2>"$state/issue.err" || fail "hsmca issue failed: $(cat "$state/issue.err")"
openssl verify -CAfile "$pki/demo-root.pem" -untrusted "$pki/demo-issuing.pem" \
	"$state/www.pem" >/dev/null || fail "the issued certificate does not verify"
serial=$(openssl x509 -in "$state/www.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
grep -q "$serial" "$state/issue.err" || fail "hsmca issue did not name serial $serial"
"$hsmca" show "$serial" | grep -q '"status": "issued"' || fail "hsmca show: not issued"
"$hsmca" revoke "$serial" --reason keyCompromise "${officer[@]}" >/dev/null ||
	fail "hsmca revoke failed"
"$hsmca" show "$serial" | grep -q '"status": "revoked"' || fail "hsmca show: not revoked"
"$hsmca" show "$serial" | grep -q '"revocation_reason": "keyCompromise"' ||
	fail "hsmca show: wrong revocation reason"
# ca-admin may not issue (docs/api.md's permission matrix).
if "$hsmca" issue --profile tls-server --csr "$state/www.csr" >/dev/null 2>&1; then
	fail "ca-admin could issue"
fi

# hsmca backup with the quickstart's wrapping key; restore checks the archive (files only).
"$hsmca" backup "$state/demo.hsmcabak" --key demo-backup --config "$state/cad/cad.yaml" \
	--ca-cert "$pki/demo-root.pem" --ca-cert "$pki/demo-issuing.pem" >/dev/null 2>&1 ||
	fail "hsmca backup failed"
"$hsmca" restore "$state/demo.hsmcabak" --into "$state/restored" --files-only >/dev/null 2>&1 ||
	fail "hsmca restore --files-only failed"
cmp -s "$pki/demo-root.pem" "$state/restored/certs/demo-root.pem" ||
	fail "the restored root certificate differs"

# A second start with the same state keeps the PKI (no second ceremony).
before=$(sha256sum "$pki/demo-root.pem")
"$repo/deploy/quickstart" --state "$state" --stop >>"$log" 2>&1 || fail "--stop failed"
[[ ! -S $HSMCA_KEYD_SOCKET ]] || fail "keyd socket still there after --stop"
left=$(no_daemons_left) || fail "still running after --stop: $left"
"$repo/deploy/quickstart" --state "$state" --detach >>"$log" 2>&1 || fail "second start failed"
[[ $(sha256sum "$pki/demo-root.pem") == "$before" ]] || fail "second start changed the root"
"$hsmca" keyd status | grep -q "keys: 4" || fail "second start changed the keys"
"$hsmca" show "$serial" | grep -q '"status": "revoked"' ||
	fail "second start: the revoked certificate is not in the database"
"$repo/deploy/quickstart" --state "$state" --stop >>"$log" 2>&1 || fail "second --stop failed"
left=$(no_daemons_left) || fail "still running after the second --stop: $left"
echo "quickstart smoke: ok"
