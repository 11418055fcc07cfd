#!/usr/bin/env bash
# Every artefact of a quickstart run, checked by the validators relying parties use: OpenSSL
# (`openssl verify -x509_strict -crl_check_all`, `openssl crl`, `openssl ocsp`), GnuTLS
# (`certtool --verify`, `--verify-crl`, `ocsptool`), NSS (`crlutil -I`, `vfychain`) and
# Debian's python3-cryptography (validators.py). The artefacts: the root, the issuing CA, the
# OCSP signer, tls-server leaves with an RSA and an ECDSA key, a device certificate enrolled
# over EST, the issuing CA's full and delta CRL, the root's CRL (made by a crl ceremony, as a
# real root's is), and OCSP responses for a good and a revoked certificate. The leaves'
# keyUsage follows their key type (docs/lint.md).
#
# One function per artefact (check_<artefact>), each running every validator on it, so that a
# new assertion about an artefact (AIA, certificatePolicies) goes into its function.
set -euo pipefail

# HSMCA_VALIDATORS_STATE=DIR checks a quickstart already running on DIR (left running) instead
# of starting one on a throwaway folder.
repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd -P)
if [[ -n ${HSMCA_VALIDATORS_STATE:-} ]]; then
	state=$HSMCA_VALIDATORS_STATE
	log=$state/validators.log
	rm -rf "$state/artefacts" "$state/nssdb"
else
	state=$(mktemp -d "${TMPDIR:-/tmp}/hsmca-validators.XXXXXX")
	log=$state.log
	cleanup() {
		"$repo/deploy/quickstart" --state "$state" --stop >/dev/null 2>&1 || true
		rm -rf "$state" "$log"
	}
	trap cleanup EXIT
fi
fail() {
	echo "validators: $*" >&2
	tail -n 20 "$log" >&2 || true
	exit 1
}
step() { echo "validators: $*"; }

unset HSMCA_KEYD_SOCKET SOFTHSM2_CONF OPENSSL_MODULES OPENSSL_CONF HSMCA_CA_BUNDLE \
	HSMCA_API_URL HSMCA_CLIENT_CERT HSMCA_CLIENT_KEY HSMCA_API_TOKEN PGHOST PGPORT PGDATABASE \
	PGUSER HSMCA_OCSP_URL HSMCA_EST_URL HSMCA_CRL_URL
# Debian's python3 with Debian's python3-cryptography, whatever else is first on PATH.
python=/usr/bin/python3
for tool in openssl certtool ocsptool crlutil certutil vfychain curl "$python"; do
	command -v "$tool" >/dev/null || fail "$tool is missing (deploy/deps installs it)"
done

if [[ -z ${HSMCA_VALIDATORS_STATE:-} ]]; then
	"$repo/deploy/quickstart" --state "$state" --detach >"$log" 2>&1 ||
		fail "the quickstart failed"
fi
# shellcheck disable=SC1091
source "$state/env"
pki=$state/pki
a=$state/artefacts
mkdir -p "$a"
officer=(--cert "$state/operator/demo-officer.pem" --key "$state/operator/demo-officer.key")
curl_officer=(--cacert "$HSMCA_CA_BUNDLE" --cert "$state/operator/demo-officer.pem"
	--key "$state/operator/demo-officer.key")

# ---- the artefacts ----

cp "$pki/demo-root.pem" "$a/root.pem"
cp "$pki/demo-issuing.pem" "$a/issuing.pem"
cp "$pki/demo-ocsp.pem" "$a/ocsp-signer.pem"

# The root's CRL, by a crl ceremony with the root's key in keyd.
cat >"$state/root-crl.yaml" <<EOF
ceremony: crl
description: the demo root's CRL, for the validators
issuer: {label: demo-root, certificate: $pki/demo-root.pem}
signature: {hash: sha384}
crl: {number: 1, this_update: now, next_update: +30 days}
outputs: {crl: $a/root-crl.crl}
EOF
hsmca ceremony run "$state/root-crl.yaml" >>"$log" 2>&1 || fail "the root CRL ceremony failed"
# The ceremony writes PEM; NSS imports DER.
openssl crl -in "$a/root-crl.crl" -out "$a/root-crl.pem" || fail "the root CRL does not parse"
openssl crl -in "$a/root-crl.pem" -outform DER -out "$a/root-crl.der" || fail "root CRL to DER"

# issue NAME KEYSPEC: a tls-server certificate for NAME.example.com with a new key.
issue() {
	local name=$1
	shift
	openssl req -new -newkey "$@" -nodes -keyout "$a/$name.key" \
		-subj "/CN=$name.example.com" -addext "subjectAltName=DNS:$name.example.com" \
		-out "$a/$name.csr" 2>/dev/null || fail "openssl req ($name) failed"
	hsmca issue --profile tls-server --csr "$a/$name.csr" "${officer[@]}" >"$a/$name.pem" \
		2>"$a/$name.err" || fail "hsmca issue ($name) failed: $(cat "$a/$name.err")"
}
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
issue leaf-rsa rsa:2048
issue leaf-ec ec -pkeyopt ec_paramgen_curve:P-256
issue revoked ec -pkeyopt ec_paramgen_curve:P-256
issue revoked-base ec -pkeyopt ec_paramgen_curve:P-256
issue revoked-later rsa:2048

# A device certificate over EST.
ptoken=$(hsmca provision create --profile device --name validators "${officer[@]}" 2>/dev/null) ||
	fail "hsmca provision create failed"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$a/device.key" \
	-subj /CN=validators-device-$$ -outform DER -out "$a/device.der" 2>/dev/null ||
	fail "openssl req (device) failed"
openssl base64 -in "$a/device.der" -out "$a/device.b64"
code=$(curl -sS --cacert "$HSMCA_CA_BUNDLE" -u "validators-device-$$:$ptoken" \
	-H "Content-Type: application/pkcs10" --data-binary @"$a/device.b64" \
	-o "$a/device.p7" -w '%{http_code}' "$HSMCA_EST_URL/simpleenroll") ||
	fail "curl simpleenroll failed"
[[ $code == 200 ]] || fail "EST simpleenroll answered $code: $(cat "$a/device.p7")"
openssl base64 -d -in "$a/device.p7" | openssl pkcs7 -inform DER -print_certs \
	-out "$a/device.pem" || fail "the EST answer is not a PKCS#7 of certificates"

# fetch_crl NAME SERIAL: wait until crld serves NAME listing SERIAL; DER and PEM into $a.
fetch_crl() {
	local name=$1 serial=$2
	for _ in $(seq 150); do
		if curl -fsS "$HSMCA_CRL_URL$name.crl" -o "$a/$name.crl" 2>/dev/null &&
			openssl crl -inform DER -in "$a/$name.crl" -noout -text 2>/dev/null |
			grep -qi "Serial Number: $serial"; then
			openssl crl -inform DER -in "$a/$name.crl" -out "$a/$name.pem"
			return 0
		fi
		sleep 0.2
	done
	fail "$HSMCA_CRL_URL$name.crl does not list $serial"
}
# put_delta SECONDS: the issuing CA's delta CRL period, through the API (officer).
put_delta() {
	code=$(curl -sS "${curl_officer[@]}" -X PUT -o "$a/settings.json" -w '%{http_code}' \
		"$HSMCA_API_URL/api/v1/authorities/demo-issuing/settings" \
		-d "{\"delta_crl_seconds\":$1}") || fail "curl PUT settings failed"
	[[ $code == 200 ]] || fail "PUT settings answered $code: $(cat "$a/settings.json")"
}
revoke() { # CERT-NAME REASON
	hsmca revoke "$(serial_of "$a/$1.pem")" --reason "$2" "${officer[@]}" >/dev/null ||
		fail "hsmca revoke $1 failed"
}
# Deltas off, a revocation: a full CRL listing it. Deltas on, a revocation: a new full CRL
# (crld bases deltas on a full CRL made while they are on) and an empty delta on it. Another
# revocation: a delta on that full CRL listing it alone.
put_delta 0
revoke revoked keyCompromise
fetch_crl demo-issuing "$(serial_of "$a/revoked.pem")"
put_delta 600
revoke revoked-base superseded
fetch_crl demo-issuing "$(serial_of "$a/revoked-base.pem")"
revoke revoked-later superseded
fetch_crl demo-issuing-delta "$(serial_of "$a/revoked-later.pem")"
cp "$a/demo-issuing-delta.crl" "$a/delta.crl"
cp "$a/demo-issuing-delta.pem" "$a/delta.pem"
# The published full CRL may have been rebuilt meanwhile: the delta's base must be it.
curl -fsS "${HSMCA_CRL_URL}demo-issuing.crl" -o "$a/full.crl" || fail "no full CRL"
openssl crl -inform DER -in "$a/full.crl" -out "$a/full.pem"

# OCSP responses for a good and a revoked certificate, as hsmca-ocspd serves them.
ocsp_fetch() {
	local cert=$1 want=$2 out
	for _ in $(seq 50); do
		out=$(openssl ocsp -url "$HSMCA_OCSP_URL" -issuer "$a/issuing.pem" -cert "$a/$cert.pem" \
			-no_nonce -noverify -respout "$a/ocsp-$want.der" 2>&1) || true
		grep -q "$cert.pem: $want" <<<"$out" && return 0
		sleep 0.2
	done
	fail "OCSP for $cert is not $want: $out"
}
ocsp_fetch leaf-ec good
ocsp_fetch revoked revoked

# ---- the validators, one function each ----

# openssl verify, strict, every certificate's revocation checked (root CRL, full and delta).
# -extended_crl with -use_deltas: without it OpenSSL 3.0 scores a delta CRL as a complete one
# and may check a certificate against the delta alone (missing what the full CRL lists).
ossl_verify() { # CERT [extra options]; the output in $ossl_out
	local cert=$1
	shift
	ossl_out=$(openssl verify -x509_strict -crl_check_all -extended_crl -use_deltas \
		-CAfile "$a/root.pem" \
		-untrusted "$a/issuing.pem" -CRLfile "$a/root-crl.pem" -CRLfile "$a/full.pem" \
		-CRLfile "$a/delta.pem" "$@" "$cert" 2>&1)
}
openssl_accepts() { # CERT [purpose]
	ossl_verify "$1" ${2:+-purpose "$2"} || fail "openssl verify refuses $1: $ossl_out"
}
# GnuTLS: the chain against the root, with the CRLs.
gnutls_accepts() { # CERT [purpose OID]
	local out
	cat "$1" "$a/issuing.pem" >"$state/chain.pem"
	out=$(certtool --verify --load-ca-certificate "$a/root.pem" --infile "$state/chain.pem" \
		--load-crl "$a/full.pem" ${2:+--verify-purpose "$2"} 2>&1) ||
		fail "certtool --verify refuses $1: $out"
	grep -q "Chain verification output: Verified" <<<"$out" ||
		fail "certtool --verify does not verify $1: $out"
}
# NSS: a fresh database with the root trusted and the issuing CA's CRLs imported.
nssdb=$state/nssdb
nss_init() {
	rm -rf "$nssdb"
	mkdir -p "$nssdb"
	certutil -N -d "sql:$nssdb" --empty-password || fail "certutil -N failed"
	certutil -A -d "sql:$nssdb" -n root -t "CT,C,C" -a -i "$a/root.pem" || fail "certutil -A root"
	certutil -A -d "sql:$nssdb" -n issuing -t ",," -a -i "$a/issuing.pem" ||
		fail "certutil -A issuing"
}
nss_import_crl() { # DER-FILE
	local out
	out=$(crlutil -I -d "sql:$nssdb" -t 1 -i "$1" 2>&1) || fail "crlutil -I refuses $1: $out"
}
nss_verify() { # CERT USAGE; the output in $nss_out
	nss_out=$(vfychain -d "sql:$nssdb" -pp -u "$2" -g leaf -m crl -s requireInfo \
		-s failIfNoInfo -a "$1" 2>&1)
}
nss_accepts() { # CERT USAGE
	nss_verify "$1" "$2" || fail "vfychain refuses $1: $nss_out"
	grep -q "Chain is good" <<<"$nss_out" || fail "vfychain: $1: $nss_out"
}
py() { "$python" "$repo/tests/validators/validators.py" "$@" 2>&1 || fail "python-cryptography: $*"; }

# keyUsage by key type: an RSA leaf has keyEncipherment, an EC leaf never.
ku_of() { openssl x509 -in "$1" -noout -ext keyUsage | tail -n +2 | tr -d ' '; }

# ---- one function per artefact ----

check_root() {
	openssl_accepts "$a/root.pem"
	certtool --verify --load-ca-certificate "$a/root.pem" --infile "$a/root.pem" \
		>"$state/out" 2>&1 || fail "certtool: the root: $(cat "$state/out")"
	nss_accepts "$a/root.pem" 11
	py cert "$a/root.pem" --root
}
check_root_crl() {
	openssl crl -in "$a/root-crl.pem" -CAfile "$a/root.pem" -noout 2>&1 | grep -q "verify OK" ||
		fail "openssl crl: the root CRL does not verify"
	certtool --verify-crl --load-ca-certificate "$a/root.pem" --infile "$a/root-crl.pem" \
		>"$state/out" 2>&1 || fail "certtool --verify-crl: the root CRL: $(cat "$state/out")"
	nss_import_crl "$a/root-crl.der"
	py crl "$a/root-crl.pem" "$a/root.pem"
}
check_issuing() {
	openssl_accepts "$a/issuing.pem"
	gnutls_accepts "$a/issuing.pem"
	nss_accepts "$a/issuing.pem" 11
	py cert "$a/issuing.pem" "$a/root.pem"
}
check_ocsp_signer() {
	openssl_accepts "$a/ocsp-signer.pem"
	gnutls_accepts "$a/ocsp-signer.pem" 1.3.6.1.5.5.7.3.9
	nss_accepts "$a/ocsp-signer.pem" 10
	py cert "$a/ocsp-signer.pem" "$a/issuing.pem"
}
check_leaf_rsa() {
	openssl_accepts "$a/leaf-rsa.pem" sslserver
	gnutls_accepts "$a/leaf-rsa.pem" 1.3.6.1.5.5.7.3.1
	nss_accepts "$a/leaf-rsa.pem" 1
	py cert "$a/leaf-rsa.pem" "$a/issuing.pem" --server leaf-rsa.example.com
	[[ $(ku_of "$a/leaf-rsa.pem") == "DigitalSignature,KeyEncipherment" ]] ||
		fail "the RSA leaf's keyUsage is $(ku_of "$a/leaf-rsa.pem")"
}
check_leaf_ec() {
	openssl_accepts "$a/leaf-ec.pem" sslserver
	gnutls_accepts "$a/leaf-ec.pem" 1.3.6.1.5.5.7.3.1
	nss_accepts "$a/leaf-ec.pem" 1
	py cert "$a/leaf-ec.pem" "$a/issuing.pem" --server leaf-ec.example.com
	[[ $(ku_of "$a/leaf-ec.pem") == "DigitalSignature" ]] ||
		fail "the ECDSA leaf's keyUsage is $(ku_of "$a/leaf-ec.pem"): keyEncipherment on an EC key?"
}
check_device() {
	openssl_accepts "$a/device.pem" sslclient
	gnutls_accepts "$a/device.pem" 1.3.6.1.5.5.7.3.2
	nss_accepts "$a/device.pem" 0
	py cert "$a/device.pem" "$a/issuing.pem"
	[[ $(ku_of "$a/device.pem") == "DigitalSignature,KeyAgreement" ]] ||
		fail "the device's keyUsage is $(ku_of "$a/device.pem")"
}
check_revoked() {
	# Everyone refuses the revoked certificates: the full CRL's, and the delta's.
	ossl_verify "$a/revoked.pem" && fail "openssl verify accepts the revoked certificate"
	grep -q "certificate revoked" <<<"$ossl_out" || fail "openssl verify: $ossl_out"
	ossl_verify "$a/revoked-later.pem" && fail "openssl verify -use_deltas accepts the certificate the delta revokes"
	grep -q "certificate revoked" <<<"$ossl_out" || fail "openssl verify (delta): $ossl_out"
	cat "$a/revoked.pem" "$a/issuing.pem" >"$state/chain.pem"
	certtool --verify --load-ca-certificate "$a/root.pem" --infile "$state/chain.pem" \
		--load-crl "$a/full.pem" >"$state/out" 2>&1 && fail "certtool accepts the revoked certificate"
	grep -qi "revoked" "$state/out" || fail "certtool (revoked): $(cat "$state/out")"
	nss_verify "$a/revoked.pem" 1 && fail "vfychain accepts the revoked certificate"
	grep -q "ERROR -8180" <<<"$nss_out" || fail "vfychain (revoked): $nss_out" # SEC_ERROR_REVOKED_CERTIFICATE
	py revoked "$a/revoked.pem" "$a/full.pem" "$a/issuing.pem"
	py revoked "$a/revoked-later.pem" "$a/delta.pem" "$a/issuing.pem"
}
check_full_crl() {
	openssl crl -in "$a/full.pem" -CAfile "$a/issuing.pem" -noout 2>&1 | grep -q "verify OK" ||
		fail "openssl crl: the full CRL does not verify"
	openssl crl -in "$a/full.pem" -noout -text | grep -q "Issuing Distribution Point" &&
		fail "the full CRL carries an Issuing Distribution Point"
	certtool --verify-crl --load-ca-certificate "$a/issuing.pem" --infile "$a/full.pem" \
		>"$state/out" 2>&1 || fail "certtool --verify-crl: the full CRL: $(cat "$state/out")"
	grep -q "Verification output: Verified" "$state/out" ||
		fail "certtool --verify-crl: $(cat "$state/out")"
	nss_import_crl "$a/full.crl"
	py crl "$a/full.pem" "$a/issuing.pem"
}
check_delta_crl() {
	openssl crl -in "$a/delta.pem" -CAfile "$a/issuing.pem" -noout 2>&1 | grep -q "verify OK" ||
		fail "openssl crl: the delta CRL does not verify"
	certtool --verify-crl --load-ca-certificate "$a/issuing.pem" --infile "$a/delta.pem" \
		>"$state/out" 2>&1 || fail "certtool --verify-crl: the delta CRL: $(cat "$state/out")"
	grep -q "Verification output: Verified" "$state/out" ||
		fail "certtool --verify-crl (delta): $(cat "$state/out")"
	py crl "$a/delta.pem" "$a/issuing.pem" --delta-of "$a/full.pem"
}
check_ocsp() { # WANT (good or revoked) CERT
	local want=$1 cert=$2 out
	out=$(openssl ocsp -respin "$a/ocsp-$want.der" -issuer "$a/issuing.pem" -cert "$a/$cert.pem" \
		-CAfile "$a/root.pem" -verify_other "$a/issuing.pem" 2>&1) ||
		fail "openssl ocsp: the $want response: $out"
	grep -q "Response verify OK" <<<"$out" || fail "openssl ocsp ($want): $out"
	grep -q "$cert.pem: $want" <<<"$out" || fail "openssl ocsp ($want): $out"
	out=$(ocsptool --response-info --load-response "$a/ocsp-$want.der" 2>&1) ||
		fail "ocsptool --response-info ($want): $out"
	grep -qi "Certificate Status: $want" <<<"$out" || fail "ocsptool ($want): $out"
	# ocsptool checks the signer against its trust list directly: the issuing CA, which
	# issued the delegated OCSP signer (RFC 6960 4.2.2.2).
	out=$(ocsptool --verify-response --load-trust "$a/issuing.pem" \
		--load-response "$a/ocsp-$want.der" 2>&1) ||
		fail "ocsptool --verify-response ($want): $out"
	grep -q "Verifying OCSP Response: Success" <<<"$out" ||
		fail "ocsptool --verify-response ($want): $out"
	py ocsp "$a/ocsp-$want.der" "$a/$cert.pem" "$a/issuing.pem" "$want"
}

nss_init
step "the full CRL"
check_full_crl
step "the delta CRL"
check_delta_crl
step "the root and its CRL"
check_root_crl
check_root
step "the issuing CA"
check_issuing
step "the OCSP signer"
check_ocsp_signer
step "the tls-server leaves (RSA, ECDSA)"
check_leaf_rsa
check_leaf_ec
step "the EST device certificate"
check_device
step "the revoked certificates"
check_revoked
step "the OCSP responses"
check_ocsp good leaf-ec
check_ocsp revoked revoked
step "all artefacts accepted by openssl, GnuTLS, NSS and python-cryptography"
