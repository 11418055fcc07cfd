#!/usr/bin/env bash
# Scale-out on PostgreSQL's own streaming replication (issue 8): given a running quickstart
# state folder, make a streaming replica of its database on loopback (a Unix socket of its
# own), start a second hsmca-ocspd that reads from the replica only, issue and then revoke a
# certificate through hsmca-cad on the primary, and see the replica's responder answer good,
# then revoked. Prints how long the revocation took to reach it.
#
#   tests/integration/replica_ocsp.sh STATE
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd -P)
state=${1:?usage: replica_ocsp.sh STATE}
pgbin=${HSMCA_PG_BIN:-/usr/lib/postgresql/15/bin}
rep=$state/replica
ocspd_pid=
fail() {
	echo "replica OCSP: $*" >&2
	[[ -f $rep/ocspd.log ]] && tail -n 20 "$rep/ocspd.log" >&2
	[[ -f $rep/pg.log ]] && tail -n 20 "$rep/pg.log" >&2
	exit 1
}
as_pg() {
	if ((EUID == 0)); then
		(cd "$rep" && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	if [[ -n "$ocspd_pid" ]]; then
		kill "$ocspd_pid" 2>/dev/null || true
		wait "$ocspd_pid" 2>/dev/null || true
	fi
	if [[ -f $rep/data/postmaster.pid ]]; then
		as_pg "$pgbin/pg_ctl" -D "$rep/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	fi
	rm -rf -- "$rep"
}
trap cleanup EXIT

# shellcheck disable=SC1091
source "$state/env"
hsmca=$repo/build/ca-core/cli/hsmca
ocspd_bin=$repo/build/ocsp/hsmca-ocspd
pki=$state/pki
officer=(--cert "$state/operator/demo-officer.pem" --key "$state/operator/demo-officer.key")

# The replica: a base backup of the primary with standby.signal (-R), streaming its WAL. Its
# socket is open to every local user as the primary's is when the quickstart runs as root:
# pg_hba.conf (copied from the primary: peer, map hsmca) decides who may be which role.
rm -rf -- "$rep"
mkdir -p -- "$rep"
chmod 0700 "$rep"
((EUID == 0)) && chown postgres: "$rep"
as_pg "$pgbin/pg_basebackup" -h "$PGHOST" -p "${PGPORT:-5432}" -U postgres -D "$rep/data" -R \
	-X stream -c fast >"$rep/basebackup.log" 2>&1 || fail "pg_basebackup: $(cat "$rep/basebackup.log")"
as_pg "$pgbin/pg_ctl" -D "$rep/data" -l "$rep/pg.log" -w -t 60 \
	-o "-c unix_socket_directories='$rep' -c listen_addresses='' -c port=5432 -c hot_standby=on -c unix_socket_permissions=0777" \
	start >/dev/null || fail "the replica did not start"
recovering=$(PGHOST=$rep psql -At -U postgres -d hsmca -c 'SELECT pg_is_in_recovery()') ||
	fail "cannot query the replica"
[[ $recovering == t ]] || fail "the replica is not a standby (pg_is_in_recovery: $recovering)"

# A second responder that reads from the replica alone (no primary connection at all).
# shellcheck source=tests/ports.sh
source "$repo/tests/ports.sh"
port=
pick_port port || fail "no free port for the replica's responder"
# It runs as the quickstart's hsmca-ocspd does: as root, as user hsmca-ocspd (keyd grants that
# user the OCSP signer; PostgreSQL lets it in as role hsmca-ocspd only), its configuration in
# a folder of its own; otherwise as the invoking user.
conf_dir=$rep/ocspd
as_ocspd=()
mkdir -p -- "$conf_dir"
sed -e "s|^listen:.*|listen: {address: 127.0.0.1, port: $port}|" \
	-e "s|^database:.*|database: \"host=$rep port=5432 dbname=hsmca user=hsmca-ocspd connect_timeout=3\"|" \
	"$state/ocspd/ocspd.yaml" >"$conf_dir/ocspd.yaml"
grep -q "host=$rep " "$conf_dir/ocspd.yaml" || fail "could not point the responder at the replica"
if ((EUID == 0)); then
	chmod 0711 -- "$rep"
	chown -R hsmca-ocspd: -- "$conf_dir"
	as_ocspd=(setpriv --reuid=hsmca-ocspd --regid=hsmca-ocspd --init-groups --)
fi
(cd / && exec setsid "${as_ocspd[@]}" "$ocspd_bin" --config "$conf_dir/ocspd.yaml" \
	</dev/null >"$rep/ocspd.log" 2>&1) &
ocspd_pid=$!
url=http://127.0.0.1:$port/

# A certificate issued on the primary...
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$rep/r.key" \
	-subj /CN=replica.example.com -addext subjectAltName=DNS:replica.example.com \
	-out "$rep/r.csr" 2>/dev/null || fail "openssl req failed"
"$hsmca" issue --profile tls-server --csr "$rep/r.csr" "${officer[@]}" >"$rep/r.pem" \
	2>"$rep/issue.err" || fail "hsmca issue failed: $(cat "$rep/issue.err")"
serial=$(openssl x509 -in "$rep/r.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
ask() {
	openssl ocsp -url "$url" -issuer "$pki/demo-issuing.pem" -cert "$rep/r.pem" \
		-CAfile "$HSMCA_CA_BUNDLE" -no_nonce -timeout 5 2>&1 || true
}
# ... answered good by the replica's responder once replication brought it...
out=
for _ in $(seq 150); do
	out=$(ask)
	grep -q "r.pem: good" <<<"$out" && grep -q "Response verify OK" <<<"$out" && break
	sleep 0.2
done
grep -q "r.pem: good" <<<"$out" || fail "not good from the replica's responder: $out"
# ... and revoked once hsmca-cad revoked it on the primary.
"$hsmca" revoke "$serial" --reason keyCompromise "${officer[@]}" >/dev/null ||
	fail "hsmca revoke failed"
t0=$(date +%s.%N)
for _ in $(seq 150); do
	out=$(ask)
	grep -q "r.pem: revoked" <<<"$out" && break
	sleep 0.1
done
t1=$(date +%s.%N)
grep -q "r.pem: revoked" <<<"$out" || fail "still not revoked at the replica's responder: $out"
grep -q "Reason: keyCompromise" <<<"$out" || fail "wrong reason from the replica: $out"
grep -q "Response verify OK" <<<"$out" || fail "the replica's answer does not verify: $out"
awk -v a="$t0" -v b="$t1" \
	'BEGIN { printf "replica OCSP: ok (revocation served by the replica'"'"'s responder after %.2f s)\n", b - a }'
