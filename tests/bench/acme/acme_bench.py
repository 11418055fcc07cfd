#!/usr/bin/env python3
"""ACME load generator for tests/bench/acme/run: N concurrent ACME clients, each a process of
its own with its own account (registered once with an External Account Binding credential,
before the clock starts), each doing complete orders one after the other for --seconds per
round:

  newOrder (one new dns name, so every order needs a validation)
  challenge (http-01: the key authorization is put where this program's responder serves it,
             the challenge is answered, its authorization polled until valid)
  finalize (a fresh P-256 key and CSR; hsmca-cad answers once the certificate is issued)
  download (POST-as-GET of the certificate chain)

It prints, per round, the complete orders per second and p50/p99 of each step and of the whole
order, then the median over the rounds. JWS (ES256) and EAB (HS256) are made here with
python3-cryptography; HTTP is python3-requests with one keep-alive session per client.
"""
import argparse
import base64
import hashlib
import json
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.x509.oid import NameOID

STEPS = ("newOrder", "challenge", "finalize", "download", "order")


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class Client:
    def __init__(self, directory, cacert, poll):
        self.s = requests.Session()
        self.s.trust_env = False  # REQUESTS_CA_BUNDLE and proxies of the environment: not here
        self.s.verify = cacert
        self.poll = poll
        self.dir = self.s.get(directory, timeout=30).json()
        self.key = ec.generate_private_key(ec.SECP256R1())
        n = self.key.public_key().public_numbers()
        self.jwk = {"crv": "P-256", "kty": "EC", "x": b64(n.x.to_bytes(32, "big")),
                    "y": b64(n.y.to_bytes(32, "big"))}
        canon = json.dumps(self.jwk, sort_keys=True, separators=(",", ":")).encode()
        self.thumb = b64(hashlib.sha256(canon).digest())
        self.nonce = None
        self.kid = None

    def _nonce(self):
        if self.nonce:
            n, self.nonce = self.nonce, None
            return n
        return self.s.head(self.dir["newNonce"], timeout=30).headers["Replay-Nonce"]

    def post(self, url, payload):
        """POST a JWS (payload None: POST-as-GET); a badNonce is retried with its fresh nonce."""
        for _ in range(3):
            prot = {"alg": "ES256", "nonce": self._nonce(), "url": url}
            if self.kid:
                prot["kid"] = self.kid
            else:
                prot["jwk"] = self.jwk
            p64 = b64(json.dumps(prot).encode())
            pl64 = "" if payload is None else b64(json.dumps(payload).encode())
            der = self.key.sign(f"{p64}.{pl64}".encode(), ec.ECDSA(hashes.SHA256()))
            r_, s_ = utils.decode_dss_signature(der)
            body = json.dumps({"protected": p64, "payload": pl64,
                               "signature": b64(r_.to_bytes(32, "big") + s_.to_bytes(32, "big"))})
            r = self.s.post(url, data=body, timeout=60,
                            headers={"Content-Type": "application/jose+json"})
            self.nonce = r.headers.get("Replay-Nonce")
            if r.status_code == 400 and "badNonce" in r.text:
                continue
            return r
        return r

    def register(self, eab_kid, eab_key):
        url = self.dir["newAccount"]
        prot = b64(json.dumps({"alg": "HS256", "kid": eab_kid, "url": url}).encode())
        pl = b64(json.dumps(self.jwk).encode())
        mac = hmac.HMAC(unb64(eab_key), hashes.SHA256())
        mac.update(f"{prot}.{pl}".encode())
        eab = {"protected": prot, "payload": pl, "signature": b64(mac.finalize())}
        r = self.post(url, {"termsOfServiceAgreed": True, "externalAccountBinding": eab,
                            "contact": ["mailto:bench@example.com"]})
        if r.status_code not in (200, 201):
            raise RuntimeError(f"newAccount: {r.status_code} {r.text}")
        self.kid = r.headers["Location"]

    def order(self, name, tokens):
        """One complete order for name; its step times in seconds."""
        t0 = time.monotonic()
        r = self.post(self.dir["newOrder"], {"identifiers": [{"type": "dns", "value": name}]})
        if r.status_code != 201:
            raise RuntimeError(f"newOrder: {r.status_code} {r.text}")
        order = r.json()
        t1 = time.monotonic()
        authz = order["authorizations"][0]
        a = self.post(authz, None).json()
        ch = [c for c in a["challenges"] if c["type"] == "http-01"][0]
        path = os.path.join(tokens, ch["token"])
        with open(path + ".tmp", "w") as f:
            f.write(f"{ch['token']}.{self.thumb}")
        os.rename(path + ".tmp", path)
        r = self.post(ch["url"], {})
        if r.status_code != 200:
            raise RuntimeError(f"challenge: {r.status_code} {r.text}")
        while True:
            st = self.post(authz, None).json()["status"]
            if st != "pending":
                break
            time.sleep(self.poll)
        os.unlink(path)
        if st != "valid":
            raise RuntimeError(f"authorization {name}: {st}")
        t2 = time.monotonic()
        k = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
               .sign(k, hashes.SHA256()))
        r = self.post(order["finalize"],
                      {"csr": b64(csr.public_bytes(serialization.Encoding.DER))})
        if r.status_code != 200:
            raise RuntimeError(f"finalize: {r.status_code} {r.text}")
        o = r.json()
        while o["status"] == "processing":
            time.sleep(self.poll)
            o = self.post(r.headers["Location"], None).json()
        if o["status"] != "valid":
            raise RuntimeError(f"order {name}: {o['status']}")
        t3 = time.monotonic()
        r = self.post(o["certificate"], None)
        if r.status_code != 200 or "BEGIN CERTIFICATE" not in r.text:
            raise RuntimeError(f"download: {r.status_code}")
        t4 = time.monotonic()
        return (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)


def worker(idx, args, eab, start, results):
    try:
        c = Client(args.directory, args.cacert, args.poll_ms / 1000.0)
        c.register(*eab)
    except Exception as e:  # reported, and the round counts it as failed
        results.put((idx, -1, f"client {idx}: {e}", []))
        return
    n = 0
    for rnd in range(args.rounds):
        start.wait()
        times, err = [], ""
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            n += 1
            try:
                times.append(c.order(f"b{idx}-{rnd}-{n}.{args.domain}", args.tokens))
            except Exception as e:
                err = f"client {idx}: {e}"
                break
        results.put((idx, rnd, err, times))


class Responder(BaseHTTPRequestHandler):
    tokens = "."

    def do_GET(self):
        prefix = "/.well-known/acme-challenge/"
        tok = self.path[len(prefix):] if self.path.startswith(prefix) else ""
        try:
            if not tok or "/" in tok or tok.startswith("."):
                raise FileNotFoundError
            with open(os.path.join(self.tokens, tok), "rb") as f:
                body = f.read()
            self.send_response(200)
        except OSError:
            body = b"no such token\n"
            self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--directory", required=True)
    ap.add_argument("--cacert", required=True)
    ap.add_argument("--eab", required=True, help="file of 'kid hmac_key' lines, one per client")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--http-port", type=int, required=True, help="the http-01 responder's port")
    ap.add_argument("--tokens", required=True, help="a directory for the key authorizations")
    ap.add_argument("--domain", default="example.com")
    ap.add_argument("--poll-ms", type=float, default=20)
    args = ap.parse_args()
    eabs = [line.split() for line in open(args.eab) if line.strip()]
    if len(eabs) < args.clients:
        sys.exit(f"acme_bench: {args.clients} clients need {args.clients} EAB credentials")

    Responder.tokens = args.tokens
    srv = ThreadingHTTPServer(("127.0.0.1", args.http_port), Responder)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    start = mp.Barrier(args.clients + 1)
    results = mp.Queue()
    procs = [mp.Process(target=worker, args=(i, args, eabs[i], start, results))
             for i in range(args.clients)]
    for p in procs:
        p.start()
    print(f"{args.clients} clients, {args.rounds} rounds of {args.seconds:g} s, polling every "
          f"{args.poll_ms:g} ms; accounts registered before the clock starts")
    print(f"{'round':>5} {'orders':>7} {'orders/s':>9}  " +
          "  ".join(f"{s + ' p50/p99 ms':>24}" for s in STEPS))
    rates, failed = [], 0
    per_step = {s: [] for s in STEPS}
    for rnd in range(args.rounds):
        try:
            start.wait(timeout=120)
        except Exception:
            sys.exit("acme_bench: the clients did not start (a registration failed?): " +
                     "; ".join(str(results.get()[2]) for _ in range(results.qsize())))
        t0 = time.monotonic()
        times, errs = [], []
        for _ in range(args.clients):
            idx, r, err, t = results.get(timeout=args.seconds + 300)
            if err:
                errs.append(err)
            times.extend(t)
        wall = time.monotonic() - t0
        rate = len(times) / wall
        rates.append(rate)
        row = f"{rnd + 1:>5} {len(times):>7} {rate:>9.1f}  "
        for k, s in enumerate(STEPS):
            xs = [t[k] * 1000 for t in times]
            per_step[s].append((pct(xs, 50), pct(xs, 99)))
            row += f"{pct(xs, 50):>12.1f} / {pct(xs, 99):>9.1f}  "
        print(row, flush=True)
        for e in errs[:5]:
            print(f"  failed: {e}", flush=True)
        failed += len(errs)
    med = statistics.median
    print(f"{'median':>5} {'':>7} {med(rates):>9.1f}  " +
          "  ".join(f"{med(a for a, _ in per_step[s]):>12.1f} / {med(b for _, b in per_step[s]):>9.1f}"
                    for s in STEPS))
    for p in procs:
        p.join(timeout=30)
    srv.shutdown()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
