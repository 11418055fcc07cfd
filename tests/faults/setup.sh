# The system under test for tests/faults/run and tests/bench/soak/run: sourced, not run.
# Expects root (the repository), prog, build (a build folder with every daemon and
# tests/faults/fault_load) and keep (1: leave the temporary folder); defines die and the
# start_*/stop helpers and leaves running, healthy: a private PostgreSQL cluster, a throwaway
# SoftHSM token (keys fault-issuing, fault-ocsp, fault-audit), hsmca-keyd, hsmca-cad (an
# officer's API token in $tmp/token), hsmca-crld and hsmca-ocspd (delegated signer). The EXIT
# trap stops everything and removes $tmp.
# shellcheck shell=bash disable=SC2154 # root, prog, build, keep come from the caller

die() {
	echo "$prog: $*" >&2
	exit 2
}
[[ "$build" == /* ]] || build=$root/$build
keyd_bin=$build/hsm/keyd/hsmca-keyd
cad_bin=$build/ca-core/cad/hsmca-cad
crld_bin=$build/crl/hsmca-crld
ocspd_bin=$build/ocsp/hsmca-ocspd
load_bin=$build/tests/faults/fault_load
provdir=$build/hsm/provider
cli=$build/ca-core/cli/hsmca
for f in "$keyd_bin" "$cad_bin" "$crld_bin" "$ocspd_bin" "$load_bin" "$cli"; do
	[[ -x "$f" ]] || die "$f is not built"
done
# kopenssl ARGS...: the openssl command with the keyd provider; a sanitizer build's provider
# needs its runtimes preloaded into the (uninstrumented) openssl binary.
san_libs=$(ldd "$provdir/keyd.so" 2>/dev/null | awk '/lib(a|ub)san/ { printf "%s%s", sep, $3; sep = ":" }')
kopenssl() {
	if [[ -n "$san_libs" ]]; then
		LD_PRELOAD=$san_libs ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0 openssl "$@"
	else
		openssl "$@"
	fi
}
module=/usr/lib/softhsm/libsofthsm2.so
pgbin=${HSMCA_PG_BIN:-/usr/lib/postgresql/15/bin}
token=hsmca-faults
ca=fault-issuing

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hsmca-${tmp_prefix:-faults}.XXXXXX")
chmod 0755 "$tmp" # the cluster's owner (postgres, when run as root) must reach $tmp/pg
pgdir=$tmp/pg
mkdir "$pgdir" "$tmp/log" "$tmp/crl"
declare -A pid=()
sampler_pid='' load_pid='' killer_pid='' wrk_pid=''

as_pg() { if ((EUID == 0)); then (cd "$pgdir" && runuser -u postgres -- "$@"); else "$@"; fi; }
pg_main() { head -n1 "$pgdir/data/postmaster.pid" 2>/dev/null | tr -dc '0-9'; }
alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

stop_pid() { # PID: TERM, wait up to 10 s, KILL
	local p=$1
	alive "$p" || return 0
	kill -TERM "$p" 2>/dev/null || true
	for _ in $(seq 100); do
		alive "$p" || break
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local p
	for p in "$killer_pid" "$load_pid" "$sampler_pid" "$wrk_pid"; do
		[[ -n "$p" ]] && { kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; }
	done
	for d in cad ocspd crld; do stop_pid "${pid[$d]:-}"; done
	if [[ -f "$pgdir/data/PG_VERSION" ]]; then
		as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	stop_pid "${pid[keyd]:-}"
	if ((keep)); then echo "kept $tmp"; else rm -rf -- "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=tests/ports.sh
source "$root/tests/ports.sh"
# wait_for SECONDS CMD...: poll CMD every 0.2 s until it succeeds; 1 on timeout.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < end)) || return 1
		sleep 0.2
	done
}

# up NAME CMD...: wait up to 60 s for CMD to succeed while daemon NAME lives; 1 if it exits.
up() {
	local name=$1 end=$((SECONDS + 60))
	shift
	until "$@" >/dev/null 2>&1; do
		alive "${pid[$name]}" || { wait "${pid[$name]}" 2>/dev/null || true; return 1; }
		((SECONDS < end)) || return 1
		sleep 0.1
	done
}

# --- token, keys, certificates ---------------------------------------------------------------
umask 077
export SOFTHSM2_CONF=$tmp/softhsm2.conf
mkdir "$tmp/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$tmp" >"$SOFTHSM2_CONF"
pin=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
so_pin=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
printf '%s' "$pin" >"$tmp/pin"
softhsm2-util --init-token --free --label "$token" --so-pin "$so_pin" --pin "$pin" \
	>"$tmp/log/token.log" 2>&1 || { cat "$tmp/log/token.log" >&2; die "creating the token failed"; }
id=1
for label in "$ca" fault-ocsp fault-audit; do
	pkcs11-tool --module "$module" --login --pin "$pin" --keypairgen --key-type EC:prime256v1 \
		--label "$label" --id "0$id" --usage-sign >>"$tmp/log/token.log" 2>&1 ||
		{ cat "$tmp/log/token.log" >&2; die "generating key $label failed"; }
	id=$((id + 1))
done

socket=$tmp/keyd.sock
cat >"$tmp/keyd.yaml" <<EOC
module: $module
token: $token
pin_file: $tmp/pin
socket: $socket
socket_mode: "0600"
workers: 2
queue: 1024
log_requests: true
clients:
  - name: faults
    uid: $(id -u)
    grants:
      - keys: ["*"]
        operations: ["*"]
        kinds: ["*"]
EOC
keyd_log=$tmp/log/keyd.log
: >"$tmp/cad.pids"
start_keyd() {
	rm -f -- "$socket"
	"$keyd_bin" --config "$tmp/keyd.yaml" </dev/null >>"$keyd_log" 2>&1 &
	pid[keyd]=$!
	up keyd test -S "$socket"
}
start_keyd || { tail -n 20 "$keyd_log" >&2; die "hsmca-keyd did not open $socket"; }
export HSMCA_KEYD_SOCKET=$socket OPENSSL_MODULES=$provdir

kopenssl req -x509 -new -provider keyd -provider default -key "keyd:label=$ca" \
	-subj "/O=hsmca faults/CN=hsmca faults issuing CA" -days 3650 -sha256 \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	-addext "subjectKeyIdentifier=hash" -out "$tmp/issuing.pem" 2>"$tmp/log/ca.log" ||
	{ cat "$tmp/log/ca.log" >&2; die "making the issuing CA certificate through keyd failed"; }
kopenssl req -new -provider keyd -provider default -key keyd:label=fault-ocsp \
	-subj "/O=hsmca faults/CN=hsmca faults OCSP signer" -out "$tmp/ocsp.csr" \
	2>>"$tmp/log/ca.log" || { cat "$tmp/log/ca.log" >&2; die "the OCSP signer's CSR failed"; }
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
	"extendedKeyUsage=OCSPSigning" "noCheck=ignored" "authorityKeyIdentifier=keyid" \
	>"$tmp/ocsp.ext"
kopenssl x509 -req -provider keyd -provider default -in "$tmp/ocsp.csr" -CA "$tmp/issuing.pem" \
	-CAkey "keyd:label=$ca" -set_serial "0x$(openssl rand -hex 16)" -days 365 -sha256 \
	-extfile "$tmp/ocsp.ext" -out "$tmp/ocsp.pem" 2>>"$tmp/log/ca.log" ||
	{ cat "$tmp/log/ca.log" >&2; die "signing the OCSP signer's certificate failed"; }

# Operator-auth CA, hsmca-cad's TLS certificate, the bootstrap ca-admin: software keys.
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$tmp/opca.key" -subj "/O=hsmca faults/CN=operator CA" -days 3650 -sha256 \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	-out "$tmp/opca.pem" 2>>"$tmp/log/ca.log" || die "making the operator CA failed"
leaf() { # NAME CN EXT...
	local name=$1 cn=$2
	shift 2
	printf '%s\n' "basicConstraints=critical,CA:FALSE" "$@" >"$tmp/$name.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/$name.key" \
		-subj "/O=hsmca faults/CN=$cn" -out "$tmp/$name.csr" 2>>"$tmp/log/ca.log" ||
		die "making $name's key failed"
	openssl x509 -req -in "$tmp/$name.csr" -CA "$tmp/opca.pem" -CAkey "$tmp/opca.key" \
		-set_serial "0x$(openssl rand -hex 16)" -days 30 -sha256 -extfile "$tmp/$name.ext" \
		-out "$tmp/$name.pem" 2>>"$tmp/log/ca.log" || die "signing $name failed"
}
leaf server localhost "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
	"subjectAltName=DNS:localhost,IP:127.0.0.1"
leaf admin fault-admin "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth"
# The officer holds its own certificate: a token is only made by a principal of its role.
leaf officer fault-officer "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth"

# --- PostgreSQL --------------------------------------------------------------------------------
tests/pg/pgtest start "$pgdir" >"$tmp/pg.env" 2>"$tmp/log/pg-start.log" ||
	{ cat "$tmp/log/pg-start.log" >&2; die "starting PostgreSQL failed"; }
psql_app() {
	as_pg "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$pgdir" -p 5432 -U hsmca -d hsmca "$@"
}
PGHOST=$pgdir PGPORT=5432 PGDATABASE=hsmca PGUSER=hsmca "$cli" db migrate \
	>"$tmp/log/migrate.log" 2>&1 || { cat "$tmp/log/migrate.log" >&2; die "hsmca db migrate failed"; }
as_pg "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$pgdir" -p 5432 -U postgres -d hsmca \
	-c "ALTER ROLE hsmca_app LOGIN" >/dev/null || die "ALTER ROLE hsmca_app failed"
start_pg() {
	as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w -t 60 start >/dev/null 2>&1
}
pg_ok() { as_pg "$pgbin/pg_isready" -q -h "$pgdir" -p 5432; }

# --- hsmca-cad, hsmca-crld, hsmca-ocspd --------------------------------------------------------
pick_port cad_port || die "no port for hsmca-cad"
pick_port crl_port || die "no port for hsmca-crld"
pick_port ocsp_port || die "no port for hsmca-ocspd"
url=https://127.0.0.1:$cad_port
crl_url=http://127.0.0.1:$crl_port/
ocsp_url=http://127.0.0.1:$ocsp_port/
dbconn="host=$pgdir port=5432 dbname=hsmca user=hsmca_app connect_timeout=3"
cat >"$tmp/cad.yaml" <<EOC
listen: {address: 127.0.0.1, port: $cad_port}
tls: {certificate: "$tmp/server.pem", key: "$tmp/server.key", client_ca: "$tmp/opca.pem"}
database: "$dbconn"
limits: {max_body_bytes: 65536, timeout_seconds: 60}
audit: {checkpoint_key: "keyd:label=fault-audit", checkpoint_interval_seconds: 5}
authorities:
  - {name: $ca, certificate: "$tmp/issuing.pem", key: "keyd:label=$ca", crl_base_url: "$crl_url"}
key_profiles:
  - {name: ec-only, ec_curves: [P-256, P-384]}
profiles:
  - name: tls-server
    authority: $ca
    key_profile: ec-only
    max_validity_days: 397
    key_usage: [digitalSignature]
    extended_key_usage: [serverAuth]
    subject_fields: [CN, O]
    san: {dns: ["*.example.com"]}
    san_required: true
EOC
cat >"$tmp/crld.yaml" <<EOC
database: "$dbconn"
publish: {folder: "$tmp/crl", base_url: "$crl_url", pem: false}
listen: {address: 127.0.0.1, port: $crl_port}
schedule: {debounce_ms: 500, retry_seconds: 2, expired_grace_seconds: 86400}
authorities:
  - {name: $ca, idp: true, delta_seconds: -1}
EOC
cat >"$tmp/ocspd.yaml" <<EOC
listen: {address: 127.0.0.1, port: $ocsp_port}
database: "$dbconn"
responder_certificates: ["$tmp/ocsp.pem"]
EOC
"$cad_bin" --config "$tmp/cad.yaml" --bootstrap-admin fault-admin --admin-cert "$tmp/admin.pem" \
	>"$tmp/log/bootstrap.log" 2>&1 || { cat "$tmp/log/bootstrap.log" >&2; die "--bootstrap-admin failed"; }

http_ok() { curl -fsS -m 5 "$@" >/dev/null 2>&1; }
cad_listening() { ! port_free "$cad_port"; }
cad_healthy() { http_ok --cacert "$tmp/opca.pem" "$url/api/v1/health"; }
crld_healthy() { http_ok "${crl_url}health"; }
ocspd_healthy() { curl -sS -m 5 "${ocsp_url}health" 2>/dev/null | grep -q '"status": *"ok"'; }
start_cad() {
	"$cad_bin" --config "$tmp/cad.yaml" </dev/null >>"$tmp/log/cad.log" 2>&1 &
	pid[cad]=$!
	echo "${pid[cad]}" >>"$tmp/cad.pids"
	up cad cad_listening
}
start_crld() {
	"$crld_bin" --config "$tmp/crld.yaml" </dev/null >>"$tmp/log/crld.log" 2>&1 &
	pid[crld]=$!
	up crld port_listening "$crl_port"
}
start_ocspd() {
	"$ocspd_bin" --config "$tmp/ocspd.yaml" </dev/null >>"$tmp/log/ocspd.log" 2>&1 &
	pid[ocspd]=$!
	up ocspd port_listening "$ocsp_port"
}
port_listening() { ! port_free "$1"; }

start_cad || { tail -n 20 "$tmp/log/cad.log" >&2; die "hsmca-cad did not start"; }
wait_for 60 cad_healthy || { tail -n 20 "$tmp/log/cad.log" >&2; die "hsmca-cad is not healthy"; }
admin=(-fsS -m 30 --cacert "$tmp/opca.pem" --cert "$tmp/admin.pem" --key "$tmp/admin.key"
	-H "Content-Type: application/json")
curl "${admin[@]}" -X POST "$url/api/v1/principals" \
	-d "$(jq -n --arg pem "$(cat "$tmp/officer.pem")" '{name:"fault-officer", role:"officer", certificate:$pem}')" \
	>/dev/null || die "adding principal fault-officer failed"
curl -fsS -m 30 --cacert "$tmp/opca.pem" --cert "$tmp/officer.pem" --key "$tmp/officer.key" \
	-H "Content-Type: application/json" -X POST "$url/api/v1/principals/fault-officer/tokens" \
	-d '{"name":"faults","expires_days":1}' | jq -r .token >"$tmp/token" ||
	die "making the API token failed"
[[ -s "$tmp/token" ]] || die "no API token"
officer=(-sS -m 30 --cacert "$tmp/opca.pem" -H "Authorization: Bearer $(cat "$tmp/token")"
	-H "Content-Type: application/json")
curl "${officer[@]}" -f -X PUT "$url/api/v1/authorities/$ca/settings" \
	-d '{"ocsp_signer_key_label":"fault-ocsp"}' >/dev/null || die "setting the OCSP signer failed"
start_crld || { tail -n 20 "$tmp/log/crld.log" >&2; die "hsmca-crld did not start"; }
start_ocspd || { tail -n 20 "$tmp/log/ocspd.log" >&2; die "hsmca-ocspd did not start"; }
wait_for 120 crld_healthy || { tail -n 20 "$tmp/log/crld.log" >&2; die "hsmca-crld is not healthy"; }
wait_for 120 ocspd_healthy || { tail -n 20 "$tmp/log/ocspd.log" >&2; die "hsmca-ocspd is not healthy"; }

