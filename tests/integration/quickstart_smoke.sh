#!/usr/bin/env bash
# The first of README's two commands, as a user runs it: ./deploy/quickstart on a fresh state
# folder, detached; the environment file, the demo PKI and keyd answer as the README says;
# PostgreSQL and hsmca-cad run, and README's issuance example (issue, show, revoke) works; a
# second start keeps the PKI and the database, and renews hsmca-cad's TLS certificate when it
# is due (judged at a later time by HSMCA_QUICKSTART_NOW); --stop leaves nothing running.
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
	PGUSER HSMCA_OCSP_URL
unset HSMCA_EST_URL HSMCA_ACME_URL
# no_daemons_left: nothing of this state folder runs (else print what does, and fail).
no_daemons_left() {
	local what
	for what in "hsmca-keyd --config $state" "hsmca-cad --config $state" \
		"hsmca-crld --config $state" \
		"hsmca-ocspd --config $state" \
		"hsmca-acmevald --config $state" \
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
# Random free ports, not the quickstart's defaults: another run of the tests beside this one
# starts quickstarts too, and the default CRL port is chosen a minute before hsmca-crld binds it.
# shellcheck source=tests/ports.sh
source "$repo/tests/ports.sh"
pick_port api_port || exit 1
pick_port ocsp_port || exit 1
pick_port crl_port || exit 1
ports=(--api-port "$api_port" --ocsp-port "$ocsp_port" --crl-port "$crl_port")
"$repo/deploy/quickstart" --state "$state" "${ports[@]}" --detach >"$log" 2>&1 || fail "first start failed"

[[ -f $state/env ]] || fail "no $state/env"
[[ $(stat -c %a "$state/env") == 600 ]] || fail "env is not mode 0600"
# shellcheck disable=SC1091
source "$state/env"
[[ -S $HSMCA_KEYD_SOCKET ]] || fail "HSMCA_KEYD_SOCKET is not a socket"
[[ -f $HSMCA_CA_BUNDLE ]] || fail "HSMCA_CA_BUNDLE missing"
# The ACME challenge validator: its socket, open to its owner only (docs/acmeval.md).
[[ -S ${HSMCA_ACMEVAL_SOCKET:-} ]] || fail "HSMCA_ACMEVAL_SOCKET is not a socket"
# Open to its owner only (not as root), or to hsmca-cad's group (as root; see below).
if ((EUID != 0)); then
	[[ $(stat -c %a "$HSMCA_ACMEVAL_SOCKET") == 600 ]] || fail "the validator's socket is not mode 0600"
fi
grep -q "$(cat "$state/keyd/pin")" "$log" "$state/log/keyd.log" && fail "the PIN appears in a log"
# The environment puts the CLI on PATH (once, however often it is sourced) and leaves
# OPENSSL_MODULES alone: exported for a whole shell it breaks other OpenSSL builds.
[[ $(command -v hsmca) == "$repo/build/ca-core/cli/hsmca" ]] || fail "state/env does not put hsmca on PATH"
[[ -z ${OPENSSL_MODULES+set} ]] || fail "state/env exports OPENSSL_MODULES"
path_before=$PATH
# shellcheck disable=SC1091
source "$state/env"
[[ $PATH == "$path_before" ]] || fail "sourcing state/env twice changes PATH again"

hsmca=hsmca
# Invariant 1 of docs/architecture.md: keyd alone maps the PKCS#11 module; no other daemon of the service has it in
# its address space (read from /proc/PID/maps).
module_mappers=0
for pid in $(pgrep -f -- "--config $state" || true); do
	exe=$(basename "$(readlink "/proc/$pid/exe" 2>/dev/null || echo '?')")
	if grep -q libsofthsm2 "/proc/$pid/maps" 2>/dev/null; then
		[[ $exe == hsmca-keyd ]] || fail "$exe (pid $pid) maps the PKCS#11 module"
		module_mappers=$((module_mappers + 1))
	fi
done
((module_mappers == 1)) || fail "expected keyd alone to map the PKCS#11 module, found $module_mappers"
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

# README's signing example, through the provider and keyd, the folder on the command line:
# a certification request signed with the issuing CA's key (kind csr) verifies, and the same
# key is refused arbitrary data (typed signing: kind digest is not granted).
(cd "$repo" && openssl req -new -provider-path build/hsm/provider -provider keyd \
	-provider default -key keyd:label=demo-issuing -subj /CN=keyd-demo -out "$state/demo.csr") ||
	fail "openssl req -provider-path build/hsm/provider -key keyd:label=demo-issuing failed"
openssl req -in "$state/demo.csr" -verify -noout 2>/dev/null ||
	fail "the request signed through keyd does not verify"
msg=$state/msg
echo hello >"$msg"
if (cd "$repo" && openssl dgst -sha256 -provider-path build/hsm/provider -provider keyd \
	-provider default -sign keyd:label=demo-issuing -out "$msg.sig" "$msg") 2>"$msg.err"; then
	fail "keyd signed arbitrary data with the issuing CA's key"
fi
grep -q "kind digest not granted" "$msg.err" || fail "the refusal does not say why: $(cat "$msg.err")"

# Least privilege (docs/security.md, invariant 6), when the quickstart runs as root: every
# daemon runs as its own system user, reads only its own files, has only its keyd grant, and
# keyd checks issuers against each CA key's certificate (key_certificates).
if ((EUID == 0)); then
	for d in keyd cad ocspd crld acmevald; do
		pid=$(cat "$state/run/$d.pid")
		uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
		[[ $uid == "$(id -u "hsmca-$d")" ]] || fail "hsmca-$d (pid $pid) runs as uid $uid, not as user hsmca-$d"
	done
	owner_mode() { stat -c '%U %a' "$1"; }
	[[ $(owner_mode "$state/keyd/pin") == "hsmca-keyd 600" ]] || fail "the PIN is $(owner_mode "$state/keyd/pin")"
	[[ $(owner_mode "$state/softhsm/tokens") == "hsmca-keyd 700" ]] || fail "the token folder is $(owner_mode "$state/softhsm/tokens")"
	[[ $(owner_mode "$state/cad/tls.key") == "hsmca-cad 600" ]] || fail "cad's TLS key is $(owner_mode "$state/cad/tls.key")"
	[[ $(stat -c %a "$HSMCA_ACMEVAL_SOCKET") == 660 ]] || fail "the validator's socket is not mode 0660"
	[[ $(stat -c %G "$HSMCA_ACMEVAL_SOCKET") == hsmca-acmevald ]] || fail "the validator's socket is not group hsmca-acmevald"
	# run_as USER CMD...: CMD as USER (its groups), from /, keyd's socket in the environment.
	run_as() {
		local u=$1
		shift
		(cd / && setpriv --reuid="$u" --regid="$u" --init-groups -- "$@")
	}
	for u in hsmca-cad hsmca-ocspd hsmca-crld hsmca-acmevald; do
		for f in "$state/keyd/pin" "$state/softhsm/softhsm2.conf" "$state/keyd/keyd.yaml"; do
			run_as "$u" test -r "$f" && fail "$u can read $f"
		done
	done
	for u in hsmca-ocspd hsmca-crld hsmca-acmevald hsmca-keyd; do
		run_as "$u" test -r "$state/cad/tls.key" && fail "$u can read hsmca-cad's TLS key"
	done
	run_as hsmca-ocspd test -r "$state/crld/crld.yaml" && fail "hsmca-ocspd can read crld's configuration"
	run_as hsmca-crld test -r "$state/ocspd/ocspd.yaml" && fail "hsmca-crld can read ocspd's configuration"
	run_as hsmca-acmevald test -w "$HSMCA_KEYD_SOCKET" && fail "hsmca-acmevald may connect to keyd's socket"
	run_as hsmca-ocspd test -w "$HSMCA_ACMEVAL_SOCKET" && fail "hsmca-ocspd may connect to the validator's socket"
	grep -q '^key_certificates:' "$state/keyd/keyd.yaml" || fail "keyd's configuration names no key_certificates"
	# No grant names "*" kinds, and only the operator's (the last client) "*" keys.
	grep -q 'kinds: \["\*"\]' "$state/keyd/keyd.yaml" && fail "keyd's configuration grants kinds \"*\""
	sed '/name: operator/,$d' "$state/keyd/keyd.yaml" | grep -q 'keys: \["\*"\]' &&
		fail "a daemon's keyd grant names every key (\"*\")"

	# No daemon user can have a certificate signed that its grant does not name, through the
	# provider as any OpenSSL program would (openssl req -x509 with -CA/-CAkey keyd:...).
	mint=$state/mint
	mkdir -p -- "$mint"
	chmod 0755 -- "$mint"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$mint/leaf.key" 2>/dev/null ||
		fail "openssl genpkey failed"
	chmod 0644 -- "$mint/leaf.key" # a throwaway key the daemon users read
	# mint USER CA_PEM KEY [REQ_OPTIONS...]: USER signs a certificate for leaf.key with keyd
	# key KEY as CA CA_PEM; its error output in $mint/err.
	mint() {
		local u=$1 ca=$2 key=$3
		shift 3
		run_as "$u" env HSMCA_KEYD_SOCKET="$HSMCA_KEYD_SOCKET" openssl req -x509 -new \
			-provider-path "$repo/build/hsm/provider" -provider keyd -provider default \
			-key "$mint/leaf.key" -subj /CN=minted.example.com -days 1 -CA "$ca" \
			-CAkey "keyd:label=$key" "$@" >"$mint/out" 2>"$mint/err"
	}
	metric() { # metric KIND REASON: keyd's hsmca_keyd_sign_refusals_total for them (0 if none)
		"$hsmca" keyd metrics | awk -v k="kind=\"$1\"" -v r="reason=\"$2\"" \
			'/^hsmca_keyd_sign_refusals_total\{/ && index($0, k) && index($0, r) { n = $NF } END { print n + 0 }'
	}
	kind_before=$(metric certificate kind-not-granted)
	ca_before=$(metric ca-certificate kind-not-granted)
	issuer_before=$(metric certificate wrong-issuer)
	# hsmca-ocspd: not with the issuing CA's key (not granted at all) ...
	mint hsmca-ocspd "$pki/demo-issuing.pem" demo-issuing -addext basicConstraints=critical,CA:FALSE &&
		fail "hsmca-ocspd had a certificate signed by demo-issuing"
	grep -qi "not granted\|denied" "$mint/err" || fail "hsmca-ocspd's refusal says nothing: $(cat "$mint/err")"
	# ... nor with its own OCSP signer key (kind certificate not granted).
	mint hsmca-ocspd "$pki/demo-ocsp.pem" demo-ocsp -addext basicConstraints=critical,CA:FALSE &&
		fail "hsmca-ocspd had a certificate signed by its OCSP signer key"
	grep -q "kind certificate not granted" "$mint/err" ||
		fail "hsmca-ocspd's refusal does not name the kind: $(cat "$mint/err")"
	# hsmca-crld cannot either, with the issuing key it signs CRLs with.
	mint hsmca-crld "$pki/demo-issuing.pem" demo-issuing -addext basicConstraints=critical,CA:FALSE &&
		fail "hsmca-crld had a certificate signed by demo-issuing"
	grep -q "kind certificate not granted" "$mint/err" ||
		fail "hsmca-crld's refusal does not name the kind: $(cat "$mint/err")"
	# hsmca-cad signs end-entity certificates of its CA (what issuance does) ...
	mint hsmca-cad "$pki/demo-issuing.pem" demo-issuing -addext basicConstraints=critical,CA:FALSE ||
		fail "hsmca-cad could not sign an end-entity certificate as demo-issuing: $(cat "$mint/err")"
	openssl verify -CAfile "$pki/demo-root.pem" -untrusted "$pki/demo-issuing.pem" "$mint/out" >/dev/null ||
		fail "hsmca-cad's end-entity certificate does not verify"
	cp -- "$mint/out" "$mint/ee.pem"
	# ... but no CA certificate (cA=TRUE) ...
	mint hsmca-cad "$pki/demo-issuing.pem" demo-issuing -addext basicConstraints=critical,CA:TRUE &&
		fail "hsmca-cad had a CA certificate (cA=TRUE) signed"
	grep -q "kind ca-certificate not granted" "$mint/err" ||
		fail "hsmca-cad's cA=TRUE refusal does not name the kind: $(cat "$mint/err")"
	# ... and none naming another issuer than demo-issuing's certificate (key_certificates):
	# a CA certificate with demo-issuing's public key under another name (made with a
	# software key), so that openssl's own key check passes and keyd's issuer check decides.
	openssl x509 -in "$pki/demo-issuing.pem" -noout -pubkey >"$mint/issuing-pub.pem"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$mint/soft.key" \
		-subj /CN=soft -days 1 -out "$mint/soft.pem" 2>/dev/null &&
		openssl req -new -key "$mint/soft.key" -subj "/C=DE/O=hsmca quickstart/CN=Not demo-issuing" \
			-out "$mint/other.csr" 2>/dev/null &&
		printf '%s\n' "basicConstraints = critical, CA:TRUE" "subjectKeyIdentifier = hash" \
			>"$mint/ca.ext" &&
		openssl x509 -req -in "$mint/other.csr" -CA "$mint/soft.pem" -CAkey "$mint/soft.key" \
			-force_pubkey "$mint/issuing-pub.pem" -set_serial 1 -days 1 -extfile "$mint/ca.ext" \
			-out "$mint/other-ca.pem" 2>/dev/null || fail "could not make the other-issuer certificate"
	chmod 0644 -- "$mint/other-ca.pem"
	mint hsmca-cad "$mint/other-ca.pem" demo-issuing -addext basicConstraints=critical,CA:FALSE &&
		fail "hsmca-cad had a certificate naming another issuer signed with demo-issuing"
	grep -q "issuer is not the subject" "$mint/err" ||
		fail "the wrong-issuer refusal does not say so: $(cat "$mint/err")"
	# Every daemon user, with its own key, is refused each kind its grant does not name
	# (a request, a digest, a CRL, an OCSP response) and gets the one it does: hsmca-crld a
	# CRL, hsmca-ocspd an OCSP response (openssl ca -gencrl and openssl ocsp as a one-shot
	# responder, through the provider; cad's certificate kind is above).
	openssl ocsp -issuer "$pki/demo-issuing.pem" -cert "$mint/ee.pem" -no_nonce \
		-reqout "$mint/req.der" || fail "openssl ocsp -reqout failed"
	echo hello >"$mint/msg"
	chmod 0644 -- "$mint/req.der" "$mint/msg"
	# kind_try USER KIND KEY CERT: USER has keyd sign KIND with KEY (CERT: its certificate).
	kind_try() {
		local u=$1 kind=$2 key=$3 cert=$4 d=$mint/$1
		local prov=(-provider-path "$repo/build/hsm/provider" -provider keyd -provider default)
		mkdir -p -- "$d"
		: >"$d/index.txt"
		echo 01 >"$d/crlnumber"
		printf '%s\n' "[ca]" "default_ca = d" "[d]" "database = $d/index.txt" \
			"crlnumber = $d/crlnumber" "default_md = sha256" "default_crl_days = 1" >"$d/ca.cnf"
		chown -R -- "$u:" "$d"
		case $kind in
		csr) set -- openssl req -new "${prov[@]}" -key "keyd:label=$key" -subj /CN=kind-test ;;
		digest) set -- openssl dgst -sha256 "${prov[@]}" -sign "keyd:label=$key" "$mint/msg" ;;
		crl) set -- openssl ca -gencrl -batch "${prov[@]}" -config "$d/ca.cnf" \
			-keyfile "keyd:label=$key" -cert "$cert" ;;
		ocsp-response) set -- openssl ocsp "${prov[@]}" -index "$d/index.txt" \
			-CA "$pki/demo-issuing.pem" -rsigner "$cert" -rkey "keyd:label=$key" \
			-reqin "$mint/req.der" -respout "$d/resp.der" ;;
		esac
		run_as "$u" env HSMCA_KEYD_SOCKET="$HSMCA_KEYD_SOCKET" "$@" >"$mint/out" 2>"$mint/err" ||
			return 1
		[[ $kind != ocsp-response || -s $d/resp.der ]]
	}
	issuing=$pki/demo-issuing.pem
	for entry in "hsmca-cad demo-issuing $issuing -" "hsmca-ocspd demo-ocsp $pki/demo-ocsp.pem ocsp-response" \
		"hsmca-crld demo-issuing $issuing crl"; do
		read -r u key cert granted <<<"$entry"
		for kind in csr digest crl ocsp-response; do
			if [[ $kind == "$granted" ]]; then
				kind_try "$u" "$kind" "$key" "$cert" ||
					fail "$u could not have its granted kind $kind signed with $key: $(cat "$mint/err")"
			else
				kind_try "$u" "$kind" "$key" "$cert" &&
					fail "$u had kind $kind signed with $key, which its grant does not name"
				grep -q "kind $kind not granted" "$mint/err" ||
					fail "$u's $kind refusal does not name the kind: $(cat "$mint/err")"
			fi
		done
	done
	openssl ocsp -respin "$mint/hsmca-ocspd/resp.der" -CAfile "$HSMCA_CA_BUNDLE" -noverify \
		-resp_text 2>/dev/null | grep -q "hsmca Demo OCSP Signer" ||
		fail "hsmca-ocspd's OCSP response is not signed by the demo OCSP signer"
	# Each refusal is counted in keyd's metrics by kind and reason.
	(($(metric certificate kind-not-granted) >= kind_before + 2)) ||
		fail "keyd's metrics do not count the refused certificates (kind-not-granted)"
	(($(metric ca-certificate kind-not-granted) >= ca_before + 1)) ||
		fail "keyd's metrics do not count the refused CA certificate"
	(($(metric certificate wrong-issuer) >= issuer_before + 1)) ||
		fail "keyd's metrics do not count the wrong issuer"
	echo "least privilege: each daemon its own user and files; ocspd, crld and cad refused what their grants do not name"
fi

# The database and hsmca-cad.
for v in HSMCA_API_URL HSMCA_CLIENT_CERT HSMCA_CLIENT_KEY PGHOST PGPORT PGDATABASE HSMCA_OCSP_URL; do
	[[ -n ${!v:-} ]] || fail "$v is not in the environment file"
done
[[ $HSMCA_API_URL == https://127.0.0.1:* ]] || fail "HSMCA_API_URL is $HSMCA_API_URL"
[[ -S $PGHOST/.s.PGSQL.$PGPORT ]] || fail "no PostgreSQL socket in $PGHOST"
[[ $(psql -X -tA -c "SHOW listen_addresses") == "" ]] || fail "PostgreSQL listens on TCP"
# Least privilege (docs/security.md): each daemon has a database session as its own login
# role, and hsmca-cad signs audit checkpoints with a key of its own, not the issuing CA's.
for r in hsmca-cad hsmca-ocspd hsmca-crld; do
	[[ $(psql -X -tA -c "SELECT count(*) > 0 FROM pg_stat_activity WHERE usename = '$r'") == t ]] ||
		fail "no database session of role $r"
done
[[ $(psql -X -tA -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'hsmca_app'") == 0 ]] ||
	fail "a daemon still connects as hsmca_app"
grep -q "checkpoint_key: keyd:label=audit-checkpoint-demo" "$state/cad/cad.yaml" ||
	fail "hsmca-cad does not sign audit checkpoints with audit-checkpoint-demo"
"$hsmca" keyd list | grep -q "^audit-checkpoint-demo	.*never-extractable" ||
	fail "key audit-checkpoint-demo missing or extractable"
psql -X -tA -c "SELECT count(*) FROM principals" | grep -qx 2 ||
	fail "the database does not hold the two quickstart principals"
[[ $(stat -c %a "$HSMCA_CLIENT_KEY") == 600 ]] || fail "the operator key is not mode 0600"
openssl verify -CAfile "$pki/demo-root.pem" -untrusted "$pki/demo-operator-ca.pem" \
	"$HSMCA_CLIENT_CERT" >/dev/null || fail "the ca-admin certificate does not verify"
"$hsmca" principal show ca-admin | grep -q '"ca-admin"' || fail "ca-admin cannot use the API"

# hsmca-cad's own TLS certificate was issued by its own path: the database knows it, and the
# audit log has its issuance by the local user.
tls_serial=$(openssl x509 -in "$state/cad/tls.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
"$hsmca" show "$tls_serial" | grep -q '"status": "issued"' ||
	fail "hsmca-cad's TLS certificate $tls_serial is not in the database"
# tls_audited SERIAL: the audit log records its successful issuance by the local user.
tls_audited() {
	[[ $(psql -X -tA -c "SELECT count(*) FROM audit_log WHERE action = 'certificate.issue'
		AND object = '$1' AND outcome = 'success' AND actor LIKE 'local:%'") == 1 ]]
}
tls_audited "$tls_serial" || fail "the audit log has no issuance of hsmca-cad's TLS certificate"

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
# The BR subscriber profile: the DV policy, and AIA naming this quickstart's hsmca-ocspd and
# demo-issuing's certificate at hsmca-crld, which serves exactly that certificate.
aia=$(openssl x509 -in "$state/www.pem" -noout -ext authorityInfoAccess)
grep -qF "OCSP - URI:$HSMCA_OCSP_URL" <<<"$aia" || fail "the leaf's AIA names no OCSP $HSMCA_OCSP_URL: $aia"
grep -qF "CA Issuers - URI:${HSMCA_CRL_URL}ca/demo-issuing.der" <<<"$aia" ||
	fail "the leaf's AIA names no caIssuers at hsmca-crld: $aia"
openssl x509 -in "$state/www.pem" -noout -ext certificatePolicies | grep -qF "2.23.140.1.2.1" ||
	fail "the tls-server leaf has no DV policy"
curl -fsS "${HSMCA_CRL_URL}ca/demo-issuing.der" -o "$state/issuer.der" || fail "caIssuers: fetch failed"
cmp -s "$state/issuer.der" <(openssl x509 -in "$pki/demo-issuing.pem" -outform DER) ||
	fail "caIssuers does not serve demo-issuing's certificate"
# The demo hierarchy as the BR want it: C in every CA subject, no AIA or CRL DP on the root,
# the issuing CA's CRL DP and caIssuers served by hsmca-crld (the root's CRL and certificate).
for ca in demo-root demo-issuing demo-operator-ca; do
	openssl x509 -in "$pki/$ca.pem" -noout -subject | grep -q "C = DE" || fail "$ca has no C"
done
if openssl x509 -in "$pki/demo-root.pem" -noout -ext authorityInfoAccess,crlDistributionPoints 2>/dev/null |
	grep -q URI; then
	fail "the demo root has AIA or a CRL DP"
fi
curl -fsS "${HSMCA_CRL_URL}demo-root.crl" -o "$state/root-crl.der" || fail "the root's CRL is not served"
openssl crl -inform DER -in "$state/root-crl.der" -CAfile "$pki/demo-root.pem" -noout 2>&1 |
	grep -q "verify OK" || fail "the root's CRL does not verify"
openssl x509 -in "$pki/demo-issuing.pem" -noout -ext crlDistributionPoints |
	grep -qF "${HSMCA_CRL_URL}demo-root.crl" || fail "demo-issuing names no root CRL"
curl -fsS "${HSMCA_CRL_URL}ca/demo-root.der" -o "$state/root.der" || fail "the root is not served"
cmp -s "$state/root.der" <(openssl x509 -in "$pki/demo-root.pem" -outform DER) ||
	fail "caIssuers does not serve the root's certificate"
grep -q "private-PKI exception to br_subca_eku" "$pki/demo-issuing.transcript.txt" ||
	fail "demo-issuing's transcript does not record its BR exception"
"$hsmca" show "$serial" | grep -q '"status": "issued"' || fail "hsmca show: not issued"
# hsmca-ocspd answers for it, signed by the delegated demo OCSP signer.
ocsp_ask() {
	openssl ocsp -url "$HSMCA_OCSP_URL" -issuer "$pki/demo-issuing.pem" -cert "$state/www.pem" \
		-CAfile "$HSMCA_CA_BUNDLE" -resp_text 2>&1
}
out=$(ocsp_ask)
grep -q "www.pem: good" <<<"$out" || fail "OCSP: not good: $out"
grep -q "Response verify OK" <<<"$out" || fail "OCSP: the response does not verify: $out"
grep -q "hsmca Demo OCSP Signer" <<<"$out" || fail "OCSP: not signed by the demo OCSP signer"
"$hsmca" revoke "$serial" --reason keyCompromise "${officer[@]}" >/dev/null ||
	fail "hsmca revoke failed"
"$hsmca" show "$serial" | grep -q '"status": "revoked"' || fail "hsmca show: not revoked"
"$hsmca" show "$serial" | grep -q '"revocation_reason": "keyCompromise"' ||
	fail "hsmca show: wrong revocation reason"
for ((i = 0; i < 20; i++)); do
	out=$(ocsp_ask)
	grep -q "www.pem: revoked" <<<"$out" && break
	sleep 0.1
done
grep -q "www.pem: revoked" <<<"$out" || fail "OCSP: not revoked 2 s after the revocation: $out"
grep -q "Reason: keyCompromise" <<<"$out" || fail "OCSP: wrong reason: $out"

# hsmca-crld: the certificate names its CRL, which lists it shortly after the revocation,
# verifies with the issuing CA's key, and makes openssl verify -crl_check refuse it.
[[ ${HSMCA_CRL_URL:-} == http://127.0.0.1:* ]] || fail "HSMCA_CRL_URL is ${HSMCA_CRL_URL:-unset}"
crl_url=${HSMCA_CRL_URL}demo-issuing.crl
openssl x509 -in "$state/www.pem" -noout -ext crlDistributionPoints | grep -qF "URI:$crl_url" ||
	fail "the issued certificate does not name $crl_url"
listed=0
for _ in $(seq 100); do
	if curl -fsS "$crl_url" -o "$state/crl.der" 2>/dev/null &&
		openssl crl -inform DER -in "$state/crl.der" -noout -text 2>/dev/null |
		grep -qi "Serial Number: $serial"; then
		listed=1
		break
	fi
	sleep 0.2
done
((listed)) || fail "the CRL at $crl_url does not list the revoked $serial"
openssl crl -inform DER -in "$state/crl.der" -CAfile "$pki/demo-issuing.pem" -noout 2>&1 |
	grep -q "verify OK" || fail "the CRL does not verify with the issuing CA"
openssl crl -inform DER -in "$state/crl.der" -out "$state/crl.pem" || fail "the CRL does not parse"
if openssl verify -crl_check -CAfile "$pki/demo-root.pem" -untrusted "$pki/demo-issuing.pem" \
	-CRLfile "$state/crl.pem" "$state/www.pem" >"$state/verify.out" 2>&1; then
	fail "openssl verify -crl_check accepts the revoked certificate"
fi
grep -q "certificate revoked" "$state/verify.out" || fail "verify -crl_check: $(cat "$state/verify.out")"

# ca-admin may not issue (docs/api.md's permission matrix).
if "$hsmca" issue --profile tls-server --csr "$state/www.csr" >/dev/null 2>&1; then
	fail "ca-admin could issue"
fi

# A device enrols over EST (docs/est.md) with a one-time provisioning token, curl and openssl
# being the device.
[[ ${HSMCA_EST_URL:-} == "$HSMCA_API_URL/.well-known/est" ]] ||
	fail "HSMCA_EST_URL is '${HSMCA_EST_URL:-}'"
ptoken=$("$hsmca" provision create --profile device --name smoke "${officer[@]}" 2>/dev/null) ||
	fail "hsmca provision create failed"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$state/dev.key" 	-subj /CN=smoke-device-1 -outform DER -out "$state/dev.der" 2>/dev/null ||
	fail "openssl req (device) failed"
openssl base64 -in "$state/dev.der" -out "$state/dev.b64"
code=$(curl -sS --cacert "$HSMCA_CA_BUNDLE" -u "smoke-device-1:$ptoken" 	-H "Content-Type: application/pkcs10" --data-binary @"$state/dev.b64" 	-o "$state/dev.p7" -w '%{http_code}' "$HSMCA_EST_URL/simpleenroll") ||
	fail "curl simpleenroll failed"
[[ $code == 200 ]] || fail "EST simpleenroll answered $code: $(cat "$state/dev.p7")"
openssl base64 -d -in "$state/dev.p7" | openssl pkcs7 -inform DER -print_certs 	-out "$state/dev.pem" || fail "the EST answer is not a PKCS#7 of certificates"
openssl verify -CAfile "$pki/demo-root.pem" -untrusted "$pki/demo-issuing.pem" 	"$state/dev.pem" >/dev/null || fail "the enrolled device certificate does not verify"
"$hsmca" device show smoke-device-1 | grep -q '"status": "active"' ||
	fail "hsmca device show: smoke-device-1 is not an active device"
# ... and re-enrols with that certificate (demo-issuing, an intermediate, is the anchor).
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$state/dev2.key" \
	-subj /CN=smoke-device-1 -outform DER 2>/dev/null | openssl base64 >"$state/dev2.b64"
code=$(curl -sS --cacert "$HSMCA_CA_BUNDLE" --cert "$state/dev.pem" --key "$state/dev.key" \
	-H "Content-Type: application/pkcs10" --data-binary @"$state/dev2.b64" \
	-o "$state/dev2.p7" -w '%{http_code}' "$HSMCA_EST_URL/simplereenroll") ||
	fail "curl simplereenroll failed"
[[ $code == 200 ]] || fail "EST simplereenroll answered $code: $(cat "$state/dev2.p7")"

# ACME (docs/acme.md): the directory at $HSMCA_ACME_URL, and the demo EAB credential.
[[ ${HSMCA_ACME_URL:-} == "$HSMCA_API_URL/acme/directory" ]] ||
	fail "HSMCA_ACME_URL is '${HSMCA_ACME_URL:-}'"
curl -fsS --cacert "$HSMCA_CA_BUNDLE" "$HSMCA_ACME_URL" | grep -q '"newAccount"' ||
	fail "the ACME directory does not answer at $HSMCA_ACME_URL"
grep -Eq '^kid=[A-Za-z0-9_-]+$' "$state/acme/eab" && grep -Eq '^hmac_key=[A-Za-z0-9_-]{43}$' \
	"$state/acme/eab" || fail "$state/acme/eab does not hold kid= and hmac_key="
[[ $(stat -c %a "$state/acme/eab") == 600 ]] || fail "$state/acme/eab is not mode 0600"

# Scale-out (issue 8): a streaming replica of the database, a second hsmca-ocspd reading from
# it alone, and a revocation on the primary reaching that responder.
"$repo/tests/integration/replica_ocsp.sh" "$state" >"$state/replica.out" 2>&1 ||
	fail "$(cat "$state/replica.out")"
cat "$state/replica.out"

# hsmca backup with the quickstart's wrapping key; restore checks the archive (files only).
"$hsmca" backup "$state/demo.hsmcabak" --key demo-backup --config "$state/cad/cad.yaml" \
	--ca-cert "$pki/demo-root.pem" --ca-cert "$pki/demo-issuing.pem" >/dev/null 2>&1 ||
	fail "hsmca backup failed"
"$hsmca" restore "$state/demo.hsmcabak" --into "$state/restored" --files-only >/dev/null 2>&1 ||
	fail "hsmca restore --files-only failed"
cmp -s "$pki/demo-root.pem" "$state/restored/certs/demo-root.pem" ||
	fail "the restored root certificate differs"

# Disaster and restore (issue 8): a full backup of the running service, then cad, ocspd and
# crld stop, the database's every object and their configuration files are gone (keyd's
# token and the PKI folder survive, as a hardware HSM and its CA certificates would; the
# files-only restore above covers the certificates), the archive is restored in place, and the next
# start must carry on: OCSP answers as before, CRL numbers keep growing, issuance works and
# the audit chain verifies across the restore.
crl_number() {
	curl -fsS "${HSMCA_CRL_URL}demo-issuing.crl" | openssl crl -inform DER -noout -crlnumber |
		sed -n 's/^crlNumber=0x//p'
}
n_before=$(crl_number) || fail "no CRL number before the backup"
[[ -n "$n_before" ]] || fail "the CRL has no number"
"$hsmca" backup "$state/full.hsmcabak" --key demo-backup --config "$state/cad/cad.yaml" \
	--config "$state/ocspd/ocspd.yaml" --config "$state/crld/crld.yaml" >"$state/backup.out" 2>&1 ||
	fail "hsmca backup (full) failed: $(cat "$state/backup.out")"
for d in cad ocspd crld; do
	pid=$(cat "$state/run/$d.pid")
	kill "$pid"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && fail "hsmca-$d did not stop"
	rm -f -- "$state/run/$d.pid"
done
psql -qAt -c "DROP OWNED BY hsmca" >/dev/null 2>&1 || fail "could not wipe the database"
[[ $(psql -qAt -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0 ]] ||
	fail "the database still has tables after the wipe"
rm -f -- "$state/cad/cad.yaml" "$state/ocspd/ocspd.yaml" "$state/crld/crld.yaml"
"$hsmca" restore "$state/full.hsmcabak" --in-place --root "$state" >"$state/restore.out" 2>&1 ||
	fail "hsmca restore --in-place failed: $(cat "$state/restore.out")"
[[ -s "$state/cad/cad.yaml" ]] || fail "restore did not bring cad.yaml back"
[[ $(psql -qAt -c "SELECT count(*) FROM certificates WHERE encode(serial, 'hex') = '$serial'") == 1 ]] ||
	fail "restore did not bring the revoked certificate back"

# A second start with the same state keeps the PKI (no second ceremony). It starts at a time
# when hsmca-cad's TLS certificate has a quarter of its life left, so it renews it.
before=$(sha256sum "$pki/demo-root.pem")
"$repo/deploy/quickstart" --state "$state" --stop >>"$log" 2>&1 || fail "--stop failed"
[[ ! -S $HSMCA_KEYD_SOCKET ]] || fail "keyd socket still there after --stop"
left=$(no_daemons_left) || fail "still running after --stop: $left"
tls_nb=$(date -u -d "$(openssl x509 -in "$state/cad/tls.pem" -noout -startdate | cut -d= -f2)" +%s)
tls_na=$(date -u -d "$(openssl x509 -in "$state/cad/tls.pem" -noout -enddate | cut -d= -f2)" +%s)
tls_key_before=$(openssl pkey -in "$state/cad/tls.key" -pubout | sha256sum)
second_log=$state/second-start.out
HSMCA_QUICKSTART_NOW=$((tls_na - (tls_na - tls_nb) / 4)) \
	"$repo/deploy/quickstart" --state "$state" "${ports[@]}" --detach >"$second_log" 2>&1 ||
	{ cat "$second_log" >>"$log"; fail "second start failed"; }
cat "$second_log" >>"$log"
# Every start rewrites the environment: the port may differ when another listener took it.
# shellcheck disable=SC1091
source "$state/env"
[[ $(sha256sum "$pki/demo-root.pem") == "$before" ]] || fail "second start changed the root"
# The renewal: a new key and certificate by cad's own path, served, listed and audited; the
# old certificate stays on record, and an officer can revoke it like any other.
grep -q "renewing hsmca-cad's TLS certificate: serial $tls_serial expires" "$second_log" ||
	fail "the second start did not renew the TLS certificate: $(cat "$second_log")"
tls_new=$(openssl x509 -in "$state/cad/tls.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
[[ $tls_new != "$tls_serial" ]] || fail "the renewed TLS certificate has the old serial"
[[ $(openssl pkey -in "$state/cad/tls.key" -pubout | sha256sum) != "$tls_key_before" ]] ||
	fail "the renewed TLS certificate kept the old key"
openssl x509 -in "$state/cad/tls.pem" -noout -checkend $((300 * 86400)) >/dev/null ||
	fail "the renewed TLS certificate is not fresh"
[[ $(stat -c %a "$state/cad/tls.key") == 600 ]] || fail "the renewed TLS key is not mode 0600"
served=$(openssl s_client -connect "${HSMCA_API_URL#https://}" -CAfile "$HSMCA_CA_BUNDLE" \
	</dev/null 2>/dev/null | openssl x509 -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
[[ $served == "$tls_new" ]] || fail "hsmca-cad serves serial '$served', not the renewed $tls_new"
"$hsmca" show "$tls_new" | grep -q '"status": "issued"' ||
	fail "the renewed TLS certificate $tls_new is not in the database"
tls_audited "$tls_new" || fail "the audit log has no issuance of the renewed TLS certificate"
"$hsmca" show "$tls_serial" | grep -q '"status": "issued"' ||
	fail "the replaced TLS certificate $tls_serial is no longer on record"
"$hsmca" revoke "$tls_serial" --reason superseded "${officer[@]}" >/dev/null ||
	fail "hsmca revoke of the replaced TLS certificate failed"
"$hsmca" show "$tls_serial" | grep -q '"status": "revoked"' ||
	fail "the replaced TLS certificate is not revoked"
"$hsmca" keyd status | grep -q "keys: 5" || fail "second start changed the keys"
"$hsmca" show "$serial" | grep -q '"status": "revoked"' ||
	fail "second start: the revoked certificate is not in the database"
# ... and after the restore: OCSP still knows both certificates, the next CRL has a higher
# number and still lists the revoked one, a new certificate is issued, the audit chain holds.
for _ in $(seq 50); do
	out=$(ocsp_ask)
	grep -q "www.pem: revoked" <<<"$out" && break
	sleep 0.2
done
grep -q "www.pem: revoked" <<<"$out" || fail "after restore, OCSP: not revoked: $out"
out=$(openssl ocsp -url "$HSMCA_OCSP_URL" -issuer "$pki/demo-issuing.pem" -cert "$state/dev.pem" \
	-CAfile "$HSMCA_CA_BUNDLE" 2>&1) || true
grep -q "dev.pem: \(good\|revoked\)" <<<"$out" || fail "after restore, OCSP for the device: $out"
n_after=
for _ in $(seq 50); do
	n_after=$(crl_number) || true
	[[ -n "$n_after" ]] && ((16#$n_after > 16#$n_before)) && break
	sleep 0.2
done
if [[ -z "$n_after" ]] || ((16#$n_after <= 16#$n_before)); then
	fail "after restore, the CRL number did not grow (before $n_before, now ${n_after:-none})"
fi
curl -fsS "${HSMCA_CRL_URL}demo-issuing.crl" | openssl crl -inform DER -noout -text |
	grep -qi "Serial Number: $serial" || fail "after restore, the CRL does not list $serial"
"$hsmca" issue --profile tls-server --csr "$state/www.csr" "${officer[@]}" >"$state/www2.pem" \
	2>"$state/issue2.err" || fail "after restore, hsmca issue failed: $(cat "$state/issue2.err")"
"$hsmca" audit verify >"$state/verify2.out" 2>&1 ||
	fail "after restore, hsmca audit verify: $(cat "$state/verify2.out")"
echo "restore: OCSP answers kept, CRL number 0x$n_before -> 0x$n_after, issuance and audit chain continue"
"$repo/deploy/quickstart" --state "$state" --stop >>"$log" 2>&1 || fail "second --stop failed"
left=$(no_daemons_left) || fail "still running after the second --stop: $left"
# The CRL port is the CA certificates': another one is refused by name, and nothing starts.
if "$repo/deploy/quickstart" --state "$state" --crl-port 1 --detach >"$state/crl-port.out" 2>&1; then
	fail "a start with another --crl-port was accepted"
fi
grep -q "cannot change" "$state/crl-port.out" || fail "--crl-port refused without saying why: $(cat "$state/crl-port.out")"
left=$(no_daemons_left) || fail "a refused --crl-port started: $left"
echo "quickstart smoke: ok"
