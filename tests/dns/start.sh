#!/usr/bin/env bash
# Start a private authoritative DNS server (Knot DNS) for tests: zone example.test on
# 127.0.0.1, accepting TSIG-signed dynamic updates (RFC 2136) of TXT records only, as
# certbot's dns-rfc2136 plugin and the dns-01 tests make them.
#
#   tests/dns/start.sh DIR [PORT]
#
# DIR (created if missing; emptied of a previous server's files) holds everything. PORT
# defaults to a free one. It never runs knotd as root: as root it runs as "nobody" (DIR is
# handed to that user). On success it prints, and writes into DIR:
#   port             the port (UDP and TCP) on 127.0.0.1
#   pid              knotd's process id (tests/dns/stop.sh DIR stops it)
#   tsig-name        the TSIG key's name ("acme-update.")
#   tsig-algorithm   "hmac-sha256"
#   tsig-secret      the key's secret, base64
#   tsig.key         the key for `nsupdate -k` / `knsupdate -k` (BIND format)
#   rfc2136.ini      credentials for certbot --dns-rfc2136-credentials (mode 0600)
#   knot.log         the server's log
# The zone has SOA, NS, ns and www (127.0.0.1). Exit status 0 once it answers, else 1.
set -euo pipefail

dir=${1:?usage: tests/dns/start.sh DIR [PORT]}
port=${2:-}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rm -f "$dir"/{knot.conf,example.test.zone,pid,port,tsig-*,tsig.key,rfc2136.ini,knot.log}
rm -rf "$dir"/journal "$dir"/timers "$dir"/catalog

if [[ -z $port ]]; then
	port=$(python3 -c '
import socket
for _ in range(50):
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        t.close(); continue
    print(p); break')
fi
secret=$(openssl rand -base64 32)

cat >"$dir/knot.conf" <<CONF
server:
    rundir: "$dir"
    pidfile: "$dir/knot.pid"
    listen: 127.0.0.1@$port
control:
    listen: "$dir/knot.sock"
database:
    storage: "$dir"
log:
  - target: stderr
    any: info
key:
  - id: acme-update.
    algorithm: hmac-sha256
    secret: $secret
acl:
  # The key may add and remove TXT records, nothing else.
  - id: txt-update
    key: acme-update.
    action: update
    update-type: [TXT]
zone:
  - domain: example.test
    storage: "$dir"
    file: "example.test.zone"
    acl: txt-update
    zonefile-sync: -1
    zonefile-load: difference-no-serial
    journal-content: all
CONF
cat >"$dir/example.test.zone" <<ZONE
\$ORIGIN example.test.
\$TTL 5
@    SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 5
@    NS  ns.example.test.
ns   A   127.0.0.1
www  A   127.0.0.1
ZONE
printf 'key "acme-update." {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n};\n' "$secret" >"$dir/tsig.key"
printf 'dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = %s\ndns_rfc2136_name = acme-update.\ndns_rfc2136_secret = %s\ndns_rfc2136_algorithm = HMAC-SHA256\n' \
	"$port" "$secret" >"$dir/rfc2136.ini"
chmod 600 "$dir/rfc2136.ini" "$dir/tsig.key"
echo "$port" >"$dir/port"
echo "acme-update." >"$dir/tsig-name"
echo "hmac-sha256" >"$dir/tsig-algorithm"
echo "$secret" >"$dir/tsig-secret"

run=()
if ((EUID == 0)); then
	chown -R nobody "$dir"
	run=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
fi
"${run[@]}" /usr/sbin/knotd --config "$dir/knot.conf" >>"$dir/knot.log" 2>&1 &
echo $! >"$dir/pid"

for _ in $(seq 100); do
	if kdig +short +time=1 +retry=0 @127.0.0.1 -p "$port" example.test SOA 2>/dev/null |
		grep -q hostmaster; then
		echo "port=$port"
		echo "pid=$(cat "$dir/pid")"
		echo "tsig-name=acme-update."
		echo "tsig-algorithm=hmac-sha256"
		echo "tsig-secret-file=$dir/tsig-secret"
		echo "rfc2136-ini=$dir/rfc2136.ini"
		exit 0
	fi
	if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
		echo "tests/dns/start.sh: knotd exited; its log:" >&2
		cat "$dir/knot.log" >&2
		exit 1
	fi
	sleep 0.1
done
echo "tests/dns/start.sh: knotd did not answer on 127.0.0.1:$port" >&2
kill "$(cat "$dir/pid")" 2>/dev/null || true
exit 1
