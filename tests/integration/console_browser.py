#!/usr/bin/python3
"""The web console in a real browser: Chromium headless through WebDriver (python3-selenium),
against hsmca-cad started by console_fixture (keyd, PostgreSQL, one principal per role).

console_browser.py FIXTURE OUTDIR

Covers: the console's headers (CSP and the others, ETag/304, Content-Types) and no inline
script; sign-in with a client certificate through the session endpoint (over TLS from Python:
the browser is not given the certificate) and with a token in the browser; the session cookie's
attributes; CSRF and Origin refusals; each role's pages (and not the others') working against
the API; TOTP enrolment on the MFA page (codes from oathtool) and the revocation through the
step-up dialog; issuing from a CSR and revoking it through the dialogs; the Dashboard, Reports
and Backups pages showing the fixture's real numbers (and a real backup run); an authority's
retirement waiting for, rejected by, then approved by a second ca-admin on the Approvals page;
client-certificate sign-in in Chromium itself (root only: a managed policy file, removed
afterwards); CSP enforced (an injected inline script is refused and reported); session
expiry; a screenshot of each main page in OUTDIR, checked to be non-blank. Prints "ok - NAME" per check; exit 1 on any failure; exit 77
with a SKIP line when Chromium or its WebDriver is not installed.
"""
import http.client
import json
import os
import re
import shutil
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not CHROMIUM or not DRIVER:
    print("SKIP: Chromium or chromedriver not found (Debian: chromium chromium-driver)")
    sys.exit(77)
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:
    print("SKIP: python3-selenium is not installed")
    sys.exit(77)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

FIXTURE, OUTDIR = sys.argv[1], sys.argv[2]
IDLE = 20  # the fixture's session_idle_seconds
os.environ["HSMCA_CONSOLE_IDLE_SECONDS"] = str(IDLE)

# What each role sees: the console's nav (app.js), which mirrors the API's matrix.
PAGES = {
    "ca-admin": ["dashboard", "certificates", "profiles", "authorities", "principals", "provisioning", "acme", "audit", "backups", "reports", "approvals", "mfa"],
    "admin": ["dashboard", "certificates", "profiles", "authorities", "principals", "provisioning", "acme", "approvals", "mfa"],
    "officer": ["dashboard", "certificates", "issue", "profiles", "authorities", "provisioning", "acme", "approvals", "mfa"],
    "auditor": ["dashboard", "certificates", "profiles", "authorities", "principals", "provisioning", "acme", "audit", "backups", "reports", "approvals", "mfa"],
    "operator": ["dashboard", "profiles", "backups", "mfa"],
    "ra": ["certificates", "issue", "profiles", "mfa"],
}
ALL_PAGES = sorted({p for v in PAGES.values() for p in v})

failures = []
browser_log = []  # every browser console message read so far


def read_log(d):
    entries = d.get_log("browser")
    browser_log.extend(entries)
    return entries


def check(name, cond, detail=""):
    if cond:
        print(f"ok - {name}")
    else:
        print(f"not ok - {name} {detail}")
        failures.append(name)


# ---- the fixture ----
# Its folder (keyd's socket, certificates, logs) inside one of this run's own, so that nothing
# that tidies the usual test folders away under /tmp can pull it out from under a long run.
TMP = tempfile.mkdtemp(prefix="hsmca-console-browser-", dir="/tmp")
os.chmod(TMP, 0o755)  # PostgreSQL runs as another user
fx = subprocess.Popen([FIXTURE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                      env={**os.environ, "TMPDIR": TMP})
info = json.loads(fx.stdout.readline())
URL, DIR, TOKENS = info["url"], info["dir"], info["tokens"]
HOST = URL[len("https://"):]
os.makedirs(OUTDIR, exist_ok=True)


def tls(role=None):
    ctx = ssl.create_default_context(cafile=f"{DIR}/opca.pem")
    if role:
        ctx.load_cert_chain(f"{DIR}/{role}.pem", f"{DIR}/{role}.key")
    host, port = HOST.split(":")
    return http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)


def request(method, path, role=None, headers=None, body=None):
    c = tls(role)
    h = dict(headers or {})
    if body is not None:
        body = json.dumps(body)
        h["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        j = json.loads(data)
    except ValueError:
        j = None
    return r.status, r.headers, data, j


# ---- headers, without a browser ----
def test_headers():
    st, h, body, _ = request("GET", "/console/")
    check("console index served", st == 200 and h["Content-Type"].startswith("text/html"), st)
    csp = h.get("Content-Security-Policy", "")
    check("CSP default-src 'self', frame-ancestors 'none', no unsafe-inline",
          "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp, csp)
    check("X-Frame-Options DENY", h.get("X-Frame-Options") == "DENY")
    check("Referrer-Policy no-referrer", h.get("Referrer-Policy") == "no-referrer")
    check("X-Content-Type-Options nosniff", h.get("X-Content-Type-Options") == "nosniff")
    html = body.decode()
    inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) + re.findall(r"\sstyle=|\son[a-z]+=", html)
    check("index.html has no inline script or style", not inline, inline)
    etag = h.get("ETag")
    st2, h2, _, _ = request("GET", "/console/index.html", headers={"If-None-Match": etag})
    check("ETag revalidates to 304", etag and st2 == 304 and h2.get("Content-Security-Policy"), (etag, st2))
    st, h, _, _ = request("GET", "/console/app.js")
    check("app.js is text/javascript", st == 200 and h["Content-Type"].startswith("text/javascript"))
    st, h, _, _ = request("GET", "/console/console.css")
    check("console.css is text/css", st == 200 and h["Content-Type"].startswith("text/css"))
    st, h, _, _ = request("GET", "/console/nope.js")
    check("unknown console file 404 with the headers", st == 404 and h.get("X-Frame-Options") == "DENY")
    st, _, _, _ = request("POST", "/console/index.html")
    check("console files refuse POST", st == 405)


def cookie_of(h):
    sc = h.get("Set-Cookie", "")
    return sc, sc.split(";")[0]


# ---- mTLS sign-in, CSRF and Origin, over the API ----
def test_mtls_session():
    st, h, _, j = request("POST", "/api/v1/session", role="officer")
    check("client certificate exchanged for a session", st == 201 and j and j["via"] == "certificate" and j["role"] == "officer", (st, j))
    sc, cookie = cookie_of(h)
    attrs = [a.strip() for a in sc.split(";")]
    check("cookie is __Host-, Secure, HttpOnly, SameSite=Strict, Path=/",
          cookie.startswith("__Host-hsmca_session=") and {"Secure", "HttpOnly", "SameSite=Strict", "Path=/"} <= set(attrs), sc)
    csrf = j["csrf_token"]
    st, _, _, j = request("GET", "/api/v1/session", role="officer", headers={"Cookie": cookie})
    check("GET /session with the cookie and the certificate", st == 200 and j["csrf_token"] == csrf, (st, j))
    st, _, _, j = request("GET", "/api/v1/whoami", headers={"Cookie": cookie})
    check("a certificate session needs its certificate", st == 401 and j["error"] == "session-certificate-mismatch", (st, j))
    st, _, _, j = request("GET", "/api/v1/whoami", role="auditor", headers={"Cookie": cookie})
    check("a certificate session refuses another certificate", st == 401 and j["error"] == "session-certificate-mismatch", (st, j))
    path = "/api/v1/certificates/01/hold"
    st, _, _, j = request("POST", path, role="officer", headers={"Cookie": cookie, "Origin": URL})
    check("CSRF: no X-CSRF-Token: 403 csrf-token-missing", st == 403 and j["error"] == "csrf-token-missing", (st, j))
    st, _, _, j = request("POST", path, role="officer", headers={"Cookie": cookie, "Origin": URL, "X-CSRF-Token": "x" * 43})
    check("CSRF: wrong X-CSRF-Token: 403", st == 403 and j["error"] == "csrf-token-mismatch", (st, j))
    st, _, _, j = request("POST", path, role="officer", headers={"Cookie": cookie, "X-CSRF-Token": csrf})
    check("CSRF: no Origin: 403 origin-missing", st == 403 and j["error"] == "origin-missing", (st, j))
    st, _, _, j = request("POST", path, role="officer", headers={"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": "https://evil.example"})
    check("CSRF: foreign Origin: 403 origin-mismatch", st == 403 and j["error"] == "origin-mismatch", (st, j))
    st, _, _, j = request("POST", path, role="officer", headers={"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": URL})
    check("with token and Origin the request reaches its handler", st in (400, 404) and j["error"] not in ("csrf-token-missing", "origin-mismatch"), (st, j))
    st, _, _, j = request("POST", path, role="officer", headers={"Origin": "https://evil.example"})
    check("certificate without session, foreign Origin: 403", st == 403 and j["error"] == "origin-mismatch", (st, j))
    st, _, _, j = request("POST", "/api/v1/session", headers={"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": URL}, role="officer")
    check("a session cannot make another", st == 400, (st, j))
    st, h, _, j = request("DELETE", "/api/v1/session", role="officer", headers={"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": URL})
    check("logout ends the session and clears the cookie", st == 200 and "Max-Age=0" in h.get("Set-Cookie", ""), (st, j))
    st, h, _, j = request("GET", "/api/v1/whoami", role="officer", headers={"Cookie": cookie})
    check("the ended session is refused, its cookie cleared",
          st == 401 and j["error"] == "session-expired" and "Max-Age=0" in h.get("Set-Cookie", ""), (st, j))
    st, _, _, j = request("POST", "/api/v1/session", headers={"Authorization": "Bearer hsmca_nope"})
    check("a bad token makes no session", st == 401, (st, j))


# What the API answers each role for the read behind each page: hidden pages are refused too.
PAGE_ENDPOINT = {
    "certificates": "/api/v1/certificates", "authorities": "/api/v1/authorities",
    "principals": "/api/v1/principals", "provisioning": "/api/v1/devices",
    "acme": "/api/v1/acme/eab", "audit": "/api/v1/audit?limit=1",
    "backups": "/api/v1/backups", "reports": "/api/v1/reports/principals",
    "approvals": "/api/v1/approvals",
}


def test_api_enforces_what_is_hidden():
    for role, pages in PAGES.items():
        for page, path in PAGE_ENDPOINT.items():
            if page in pages or (role == "ra" and page == "certificates"):
                continue
            st, _, _, j = request("GET", path, headers={"Authorization": f"Bearer {TOKENS[role]}"})
            check(f"{role}: the API refuses {path} too (page {page} hidden)",
                  st == 403 and j["error"] == "role-not-permitted", (st, j))
    st, _, _, j = request("GET", "/api/v1/audit?limit=1000", role="auditor")
    actions = [e["action"] for e in j["entries"]]
    check("sign-ins and sign-outs are in the audit log",
          "session.create" in actions and "session.end" in actions, actions[-20:])


# ---- the browser ----
def browser(profile="chromium-profile", env=None):
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,900", "--ignore-certificate-errors", "--no-first-run",
              "--disable-extensions", f"--user-data-dir={OUTDIR}/{profile}"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER, env=env), options=o)


def wait(d, cond, t=30):
    return WebDriverWait(d, t).until(cond)


def status_text(d):
    return d.find_element(By.ID, "status").text


def sign_in_token(d, role, name=None):
    d.get(f"{URL}/console/")
    wait(d, EC.visibility_of_element_located((By.ID, "signin-token")))
    d.find_element(By.ID, "signin-token").send_keys(TOKENS[name or role])
    d.find_element(By.ID, "signin-token-submit").click()
    wait(d, EC.text_to_be_present_in_element((By.ID, "who-role"), role))


def sign_out(d):
    d.find_element(By.ID, "signout").click()
    wait(d, EC.visibility_of_element_located((By.ID, "signin")))


def page_loaded(d, page):
    def ok(drv):
        el = drv.find_element(By.ID, "page")
        return el.get_attribute("data-page") == page and el.find_elements(By.TAG_NAME, "h1") and (
            el.find_elements(By.TAG_NAME, "table") or el.find_elements(By.TAG_NAME, "form")
            or el.find_elements(By.CLASS_NAME, "notice") or el.find_elements(By.TAG_NAME, "dl")
            or el.find_elements(By.CLASS_NAME, "empty") or el.find_elements(By.TAG_NAME, "button"))
    wait(d, ok)
    time.sleep(0.3)


def png_colours(path):
    """Distinct colours of an 8-bit RGB(A) non-interlaced PNG (what Chromium writes)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, hgt, depth, ctype = struct.unpack(">IIBB", chunk[:10])
            bpp = {2: 3, 6: 4}[ctype]
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    colours = set()
    for y in range(hgt):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 4 == 0:
            for x in range(0, stride, bpp * 4):
                colours.add(bytes(line[x:x + 3]))
        prev = line
    return len(colours)


def screenshot(d, name):
    path = f"{OUTDIR}/{name}.png"
    d.save_screenshot(path)
    n = png_colours(path)
    check(f"screenshot {name}.png is not blank ({n} colours)", n >= 8, n)


def make_csr(cn):
    k = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
           .sign(k, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def confirm(d):
    wait(d, EC.visibility_of_element_located((By.CSS_SELECTOR, "#dialog button.primary")))
    d.find_element(By.CSS_SELECTOR, "#dialog button.primary").click()


def test_roles(d):
    for role, expected in PAGES.items():
        sign_in_token(d, role)
        nav = [a.get_attribute("data-page") for a in d.find_elements(By.CSS_SELECTOR, "#nav a")]
        check(f"{role} sees exactly its pages", nav == expected, nav)
        for page in expected:
            d.get(f"{URL}/console/#/{page}")
            page_loaded(d, page)
            st = status_text(d)
            check(f"{role}: page {page} works against the API", st == "", st)
            if role in ("officer", "auditor", "operator") and page not in ("issue",) or (role == "ca-admin" and page == "principals"):
                screenshot(d, f"{page}-{role}")
        hidden = [p for p in ALL_PAGES if p not in expected]
        if hidden:
            d.get(f"{URL}/console/#/{hidden[0]}")
            wait(d, lambda drv: "no-such-page" in status_text(drv))
            check(f"{role}: a page of another role ({hidden[0]}) is not shown", d.find_element(By.ID, "page").get_attribute("data-page") != hidden[0])
        sign_out(d)


def issue_one(d, cn, days=None):
    d.get(f"{URL}/console/#/profiles")  # a hash change, so that the issue page is drawn afresh
    page_loaded(d, "profiles")
    d.get(f"{URL}/console/#/issue")
    page_loaded(d, "issue")
    Select(d.find_element(By.NAME, "profile")).select_by_value("tls-server")
    d.find_element(By.NAME, "csr").send_keys(make_csr(cn))
    if days:
        d.find_element(By.NAME, "validity_days").send_keys(str(days))
    d.find_element(By.ID, "issue-button").click()
    confirm(d)
    wait(d, EC.text_to_be_present_in_element((By.ID, "status"), "issued"))
    return d.find_element(By.CSS_SELECTOR, "#issue-result a.mono").text


def totp(secret, offset=0):
    return subprocess.run(["oathtool", "--totp", "-b", secret, "--now", f"@{int(time.time()) + offset}"],
                          check=True, capture_output=True, text=True).stdout.strip()


def test_mfa_enrol(d):
    """The officer enrols through the MFA page; returns the secret (base32) for test_issue_revoke."""
    sign_in_token(d, "officer")
    d.get(f"{URL}/console/#/mfa")
    page_loaded(d, "mfa")
    check("MFA page: not enrolled yet", d.find_element(By.ID, "mfa-state-value").text == "none")
    d.find_element(By.ID, "mfa-enrol").click()
    confirm(d)
    wait(d, EC.presence_of_element_located((By.ID, "mfa-secret")))
    secret = d.find_element(By.ID, "mfa-secret").text
    qr = d.execute_script("""const q = document.getElementById('mfa-qr');
        return q && [q.namespaceURI, q.querySelectorAll('path').length, q.querySelectorAll('script').length,
                     q.getBoundingClientRect().width];""")
    check("MFA page: the server's QR code shown as SVG (a path, no script)",
          qr and qr[0] == "http://www.w3.org/2000/svg" and qr[1] == 1 and qr[2] == 0 and qr[3] > 100, qr)
    check("MFA page: the secret shown for typing in", re.fullmatch(r"[A-Z2-7]{32}", secret) is not None, secret)
    screenshot(d, "mfa-enrol-officer")
    d.find_element(By.ID, "mfa-confirm-code").send_keys("000000" if totp(secret) != "000000" else "111111")
    d.find_element(By.ID, "mfa-confirm-button").click()
    wait(d, lambda drv: "invalid" in status_text(drv) or "code" in status_text(drv))
    check("MFA page: a wrong first code is refused, with the error shown", "Error" in status_text(d), status_text(d))
    d.find_element(By.ID, "mfa-confirm-code").clear()
    d.find_element(By.ID, "mfa-confirm-code").send_keys(totp(secret))
    d.find_element(By.ID, "mfa-confirm-button").click()
    wait(d, EC.presence_of_element_located((By.ID, "mfa-recovery")))
    codes = d.find_element(By.CSS_SELECTOR, "#mfa-recovery pre").text.split()
    check("MFA page: ten recovery codes shown once", len(codes) == 10 and all(re.fullmatch(r"[a-z0-9]{4}(-[a-z0-9]{4}){3}", c) for c in codes), codes)
    check("MFA page: state active", d.find_element(By.ID, "mfa-state-value").text == "active")
    st, _, _, j = request("GET", "/api/v1/mfa", role="officer")
    check("the API has the officer's TOTP active, step-up on revoke", j["state"] == "active" and j["step_up"] == ["certificate.revoke"], j)
    screenshot(d, "mfa-officer")
    d.get(f"{URL}/console/#/profiles")
    page_loaded(d, "profiles")
    d.get(f"{URL}/console/#/mfa")
    page_loaded(d, "mfa")
    check("MFA page: the recovery codes are not shown again", not d.find_elements(By.ID, "mfa-recovery") and codes[0] not in d.page_source)
    sign_out(d)
    return secret


def test_issue_revoke(d, secret):
    sign_in_token(d, "officer")
    first = issue_one(d, "api.example.com", 30)
    serial = issue_one(d, "www.example.com")
    check("two issuances, two serials", first != serial, (first, serial))
    check("issued from a CSR through the console", re.fullmatch(r"[0-9a-f]+", serial) is not None, serial)
    screenshot(d, "issue-officer")
    d.get(f"{URL}/console/#/certificates/{serial}")
    wait(d, EC.presence_of_element_located((By.ID, "cert-detail")))
    text = d.find_element(By.ID, "cert-detail").text
    check("detail shows the decoded fields", all(t in text for t in (
        "CN=www.example.com", "EC P-256", "serverAuth", "digitalSignature", "CN=hsmca console test issuing CA")), text)
    check("detail offers PEM, DER and chain downloads", all(
        d.find_elements(By.XPATH, f"//button[text()='{b}']") for b in ("Download PEM", "Download DER", "Download chain (PEM)")))
    st, _, _, j = request("GET", f"/api/v1/certificates/{serial}", role="auditor")
    issuing = open(f"{DIR}/issuing.pem").read()
    check("the API's detail has the chain and the decoded key", st == 200 and j["chain"] == [issuing]
          and j["decoded"]["public_key"] == "EC P-256" and j["decoded"]["extended_key_usage"] == ["serverAuth"], j)
    screenshot(d, "certificate-detail-officer")
    Select(d.find_element(By.NAME, "reason")).select_by_value("keyCompromise")
    # Step-up: the revocation answers 401 step-up, the dialog asks; a wrong code is refused.
    d.find_element(By.ID, "revoke-button").click()
    confirm(d)
    wait(d, EC.visibility_of_element_located((By.ID, "totp-code")))
    screenshot(d, "step-up-officer")
    wrong = totp(secret, 3600)
    d.find_element(By.ID, "totp-code").send_keys(wrong if wrong not in (totp(secret, -30), totp(secret), totp(secret, 30)) else "000000")
    d.find_element(By.CSS_SELECTOR, "#dialog button.primary").click()
    wait(d, lambda drv: "step-up" in status_text(drv))
    check("step-up: a wrong code shows the error", "step-up" in status_text(d) and "Error" in status_text(d), status_text(d))
    st, _, _, j = request("GET", f"/api/v1/certificates/{serial}", role="auditor")
    check("step-up: after the wrong code the certificate is still valid", j["status"] == "issued", j)
    d.find_element(By.ID, "revoke-button").click()
    confirm(d)
    wait(d, EC.visibility_of_element_located((By.ID, "totp-code")))
    d.find_element(By.ID, "totp-code").send_keys(totp(secret, 30))  # a step after the confirmation's
    d.find_element(By.CSS_SELECTOR, "#dialog button.primary").click()
    wait(d, EC.text_to_be_present_in_element((By.ID, "status"), "revoked"))
    st, _, _, j = request("GET", "/api/v1/audit?limit=1000", role="auditor")
    ups = [e for e in j["entries"] if e["action"] == "mfa.step-up" and e["actor"] == "officer"]
    check("step-up: the revocation went through a step-up, audited", len(ups) == 1, ups)
    st, _, _, j = request("GET", f"/api/v1/certificates/{serial}", role="auditor")
    check("the API has it revoked, keyCompromise", j["status"] == "revoked" and j.get("revocation_reason") == "keyCompromise", j)
    # CSRF from the page itself: a fetch without the header is refused.
    res = d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/api/v1/certificates/""" + serial + """/hold', {method: 'POST', credentials: 'same-origin'})
          .then(r => r.json().then(j => done([r.status, j.error]))).catch(e => done([0, String(e)]));""")
    check("browser fetch without X-CSRF-Token: 403 csrf-token-missing", res == [403, "csrf-token-missing"], res)
    read_log(d)
    d.execute_script("const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; document.body.append(s);")
    time.sleep(0.5)
    ran = d.execute_script("return window.__inline === 1")
    logs = d.get_log("browser")  # kept apart: this violation is the test's own
    check("CSP blocks an injected inline script", not ran and any("Content Security Policy" in l["message"] for l in logs), logs)
    sign_out(d)


def metric(d, key):
    return d.find_element(By.CSS_SELECTOR, f'[data-metric="{key}"] .value').text


def fetch(d, href):
    """GET href from the page (its session cookie): [status, Content-Type, first line]."""
    return d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.text().then(t =>
          done([r.status, r.headers.get('Content-Type'), t.split('\\r\\n')[0].split('\\n')[0]])))
          .catch(e => done([0, '', String(e)]));""", href)


def test_reports_pages(d):
    """After test_issue_revoke: two certificates issued, one of them revoked; one backup run."""
    sign_in_token(d, "auditor")
    d.get(f"{URL}/console/#/dashboard")
    page_loaded(d, "dashboard")
    got = {k: metric(d, k) for k in ("issued", "revoked", "on_hold", "expired", "issued_last_hour", "issued_last_24_hours", "keyd")}
    check("dashboard: real counts (1 valid, 1 revoked, 2 issued in the hour), keyd online",
          got == {"issued": "1", "revoked": "1", "on_hold": "0", "expired": "0", "issued_last_hour": "2",
                  "issued_last_24_hours": "2", "keyd": "online"}, got)
    _, _, _, j = request("GET", "/api/v1/dashboard", role="auditor")
    row = d.find_element(By.XPATH, "//table[caption='Authorities']//tr[td[1]='issuing']").text
    check("dashboard: the authority with its validity, not retired",
          "active" in row and j["authorities"][0]["not_after"].replace("T", " ").replace("Z", " UTC") in row, row)
    check("dashboard: the last audit checkpoint", re.fullmatch(r"#\d+|none", metric(d, "checkpoint")) is not None, metric(d, "checkpoint"))
    screenshot(d, "dashboard-auditor")

    d.get(f"{URL}/console/#/reports")
    page_loaded(d, "reports")
    wait(d, EC.presence_of_element_located((By.ID, "issuance-totals")))
    tot = {k: d.find_element(By.CSS_SELECTOR, f'#issuance-totals [data-metric="{k}"] .value').text for k in ("issued", "revoked", "expired")}
    check("issuance report: totals from the fixture's data", tot == {"issued": "2", "revoked": "1", "expired": "0"}, tot)
    row = d.find_element(By.XPATH, "//table[caption='Per authority and profile']//tr[td[1]='issuing']").text
    check("issuance report: the row of issuing/tls-server", row.split() == ["issuing", "tls-server", "2", "1", "0"], row)
    bars = d.find_elements(By.CSS_SELECTOR, "#issuance-chart rect.bar")
    titles = sorted(b.find_element(By.TAG_NAME, "title").get_attribute("textContent").split(": ")[1] for b in bars)
    check("issuance report: an SVG chart with today's bars", titles == ["1 revoked", "2 issued"], titles)
    links = {a.text: a.get_attribute("href") for a in d.find_elements(By.CSS_SELECTOR, ".downloads a")}
    res = fetch(d, links.get("Download CSV", "/nope"))
    check("issuance CSV link answers the CSV", res[0] == 200 and res[1].startswith("text/csv") and res[2] == "authority,profile,issued,revoked,expired", res)
    res = fetch(d, links.get("Download CSV by day", "/nope"))
    check("issuance by-day CSV link", res[0] == 200 and res[2] == "day,issued,revoked,expired", res)
    res = fetch(d, links.get("Download JSON", "/nope"))
    check("issuance JSON link", res[0] == 200 and res[1].startswith("application/json") and '"totals"' in res[2], res)
    screenshot(d, "reports-issuance-auditor")

    Select(d.find_element(By.NAME, "report")).select_by_value("expiring")
    days = d.find_element(By.NAME, "days")
    days.clear()
    days.send_keys("31")
    d.find_element(By.ID, "report-run").click()
    wait(d, EC.text_to_be_present_in_element((By.ID, "report-result"), "expire within 31"))
    text = d.find_element(By.ID, "report-result").text
    check("expiring report: the one valid certificate, requested by officer",
          "1 valid certificate(s) expire within 31 day(s)" in text and "CN=api.example.com" in text and "officer" in text
          and "www.example.com" not in text, text)
    res = fetch(d, d.find_element(By.CSS_SELECTOR, ".downloads a").get_attribute("href"))
    check("expiring CSV link", res[0] == 200 and res[2] == "serial,authority,profile,subject,requester,not_after,days_left", res)
    screenshot(d, "reports-expiring-auditor")

    Select(d.find_element(By.NAME, "report")).select_by_value("principals")
    d.find_element(By.ID, "report-run").click()
    wait(d, EC.presence_of_element_located((By.XPATH, "//table[caption='Principals']")))
    row = d.find_element(By.XPATH, "//table[caption='Principals']//tr[td[1]='officer']").text
    check("principals report: officer, enabled, used", "enabled" in row and "never" not in row, row)
    rows = [r.text for r in d.find_elements(By.XPATH, "//table[caption='API tokens']//tr[td[2]='officer']")]
    check("principals report: officer's API token, active, with its last use",
          len(rows) == 1 and "console-test" in rows[0] and "active" in rows[0] and "never" not in rows[0], rows)
    check("principals report: no provisioning token made", "Nothing to show" in d.find_element(By.ID, "report-result").text)
    res = fetch(d, d.find_element(By.CSS_SELECTOR, ".downloads a").get_attribute("href"))
    check("principals CSV link", res[0] == 200 and res[2] == "kind,name,principal,role,profile,state,created_at,expires_at,last_used_at", res)
    screenshot(d, "reports-principals-auditor")
    sign_out(d)

    sign_in_token(d, "operator")
    d.get(f"{URL}/console/#/backups")
    page_loaded(d, "backups")
    last = d.find_element(By.ID, "backup-last").text
    check("backups: the last success is the fixture's real hsmca backup", last.startswith("Last successful backup: run 1") and "console.hsmcabk" in last, last)
    row = d.find_element(By.XPATH, "//table[caption='Backup runs, newest first']//tbody/tr").text
    check("backups: the run listed, ok, with its size", "ok" in row and "bytes" in row and "console.hsmcabk" in row, row)
    screenshot(d, "backups-operator")
    sign_out(d)


def test_dashboard_and_own_token(d):
    sign_in_token(d, "ca-admin")
    d.get(f"{URL}/console/#/dashboard")
    page_loaded(d, "dashboard")
    text = d.find_element(By.ID, "page").text
    check("dashboard: the summary and the authorities shown", "certificates revoked" in text and "issuing" in text, text)
    d.get(f"{URL}/console/#/principals")
    page_loaded(d, "principals")
    d.find_element(By.NAME, "token-name").send_keys("from-console")
    d.find_element(By.XPATH, "//button[text()='Make token…']").click()
    confirm(d)
    wait(d, EC.text_to_be_present_in_element((By.ID, "page"), "not shown again"))
    token = d.find_element(By.XPATH, "//h2[contains(text(),'not shown again')]/following-sibling::pre").text
    st, _, _, j = request("GET", "/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    check("a token made in the console works", st == 200 and j["name"] == "ca-admin", (st, j))
    sign_out(d)


def retire_from_console(d, reason):
    d.get(f"{URL}/console/#/authorities")
    page_loaded(d, "authorities")
    d.find_element(By.XPATH, "//tr[td[1]='issuing']//button[text()='Retire…']").click()
    wait(d, EC.visibility_of_element_located((By.ID, "dialog-reason")))
    d.find_element(By.ID, "dialog-reason").send_keys(reason)
    confirm(d)
    wait(d, EC.text_to_be_present_in_element((By.ID, "status"), "Waiting for approval"))
    return int(re.search(r"request (\d+)", status_text(d)).group(1))


def open_approval(d, aid):
    d.get(f"{URL}/console/#/profiles")
    page_loaded(d, "profiles")
    d.get(f"{URL}/console/#/approvals")
    page_loaded(d, "approvals")
    d.find_element(By.CSS_SELECTOR, f'button[data-approval="{aid}"]').click()
    wait(d, EC.presence_of_element_located((By.ID, "approval-detail")))
    return d.find_element(By.ID, "approval-detail").text


def authority_status():
    _, _, _, j = request("GET", "/api/v1/authorities", role="auditor")
    return [a["status"] for a in j["authorities"] if a["name"] == "issuing"][0]


def test_approvals(d):
    """Retire under a threshold-2 policy: 202 'waiting for approval'; a second ca-admin rejects
    (a reason is required), then, asked again, approves; the officer may only look."""
    sign_in_token(d, "ca-admin")
    first = retire_from_console(d, "replaced by issuing-2027")
    check("retire under threshold 2: waiting for approval, the authority still active", authority_status() == "active", status_text(d))
    text = open_approval(d, first)
    check("approvals: the requester sees the request (with the reason typed) and may not approve it",
          "ca-admin (ca-admin) asks to retire authority issuing" in text and "replaced by issuing-2027" in text and not d.find_elements(By.ID, "approve-button")
          and d.find_elements(By.ID, "reject-button"), text)
    sign_out(d)

    sign_in_token(d, "officer")
    text = open_approval(d, first)
    check("approvals: an officer sees it but has no vote", "Only ca-admin may vote" in text and not d.find_elements(By.ID, "approve-button"), text)
    st, _, _, j = request("POST", f"/api/v1/approvals/{first}/approve", headers={"Authorization": f"Bearer {TOKENS['officer']}"})
    check("approvals: the API refuses the officer's vote too", st == 403 and j["error"] == "role-not-permitted", (st, j))
    sign_out(d)

    sign_in_token(d, "ca-admin", "ca-admin-2")
    open_approval(d, first)
    d.find_element(By.ID, "reject-button").click()
    wait(d, EC.text_to_be_present_in_element((By.ID, "status"), "needs a reason"))
    d.find_element(By.ID, "vote-reason").send_keys("not during the change freeze")
    d.find_element(By.ID, "reject-button").click()
    confirm(d)
    wait(d, EC.text_to_be_present_in_element((By.ID, "status"), "is now rejected"))
    check("approvals: rejected with a reason, nothing ran", authority_status() == "active" and "not during the change freeze" in d.find_element(By.ID, "approval-detail").text)
    sign_out(d)

    sign_in_token(d, "ca-admin")
    second = retire_from_console(d, "replaced by issuing-2027, after the freeze")
    sign_out(d)
    sign_in_token(d, "ca-admin", "ca-admin-2")
    text = open_approval(d, second)
    check("approvals: the second ca-admin may approve", "ca-admin (ca-admin) asks to retire authority issuing" in text
          and d.find_elements(By.ID, "approve-button"), text)
    screenshot(d, "approvals-ca-admin")
    d.find_element(By.ID, "approve-button").click()
    wait(d, EC.visibility_of_element_located((By.CSS_SELECTOR, "#dialog button.primary")))
    dialog = d.find_element(By.ID, "dialog").text
    check("approvals: the dialog says the retirement runs now", "last approval needed" in dialog, dialog)
    confirm(d)
    wait(d, EC.text_to_be_present_in_element((By.ID, "status"), "is now executed"))
    _, _, _, j = request("GET", f"/api/v1/approvals/{second}", role="auditor")
    check("approvals: approved by the second ca-admin, executed, the authority retired",
          j["approval"]["state"] == "executed" and authority_status() == "retired"
          and [v["approver"] for v in j["approval"]["votes"]] == ["ca-admin-2"], j)
    sign_out(d)


def test_expiry(d):
    sign_in_token(d, "auditor")
    d.get(f"{URL}/console/#/profiles")
    page_loaded(d, "profiles")
    time.sleep(IDLE + 2)
    d.find_element(By.CSS_SELECTOR, '#nav a[data-page="authorities"]').click()
    wait(d, EC.visibility_of_element_located((By.ID, "signin")))
    check("an idle session ends: sign-in shown with session-expired", "session-expired" in status_text(d), status_text(d))


POLICY_DIR = "/etc/chromium/policies/managed"


def test_cert_signin():
    """Client-certificate sign-in in the browser itself: the officer's certificate and key in an
    NSS database under a throwaway $HOME (where Chromium on Linux reads client certificates),
    and a managed policy AutoSelectCertificateForUrls for this server's URL only, so that
    Chromium headless presents it without a prompt. The policy folder is the machine's: root
    only, and the file is removed whatever happens."""
    if os.geteuid() != 0:
        print(f"SKIP: client-certificate sign-in in the browser needs root (a managed policy in {POLICY_DIR})")
        return
    if not shutil.which("pk12util") or not shutil.which("certutil"):
        print("SKIP: client-certificate sign-in in the browser needs pk12util and certutil (Debian: libnss3-tools)")
        return
    home = f"{DIR}/browser-home"
    nssdb = f"{home}/.pki/nssdb"
    os.makedirs(nssdb, exist_ok=True)
    p12 = f"{DIR}/officer.p12"
    subprocess.run(["openssl", "pkcs12", "-export", "-in", f"{DIR}/officer.pem", "-inkey", f"{DIR}/officer.key",
                    "-out", p12, "-passout", "pass:console-test", "-name", "officer"], check=True, capture_output=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["pk12util", "-i", p12, "-d", f"sql:{nssdb}", "-W", "console-test"], check=True, capture_output=True)
    policy = f"{POLICY_DIR}/hsmca-console-test-{os.getpid()}.json"
    rule = json.dumps({"pattern": URL, "filter": {"ISSUER": {"CN": "hsmca console test operator CA"}}})
    made_dir = not os.path.isdir(POLICY_DIR)
    d = None
    try:
        os.makedirs(POLICY_DIR, exist_ok=True)
        with open(policy, "w") as f:
            json.dump({"AutoSelectCertificateForUrls": [rule]}, f)
        d = browser("chromium-profile-cert", {**os.environ, "HOME": home})
        d.get(f"{URL}/console/")
        wait(d, EC.visibility_of_element_located((By.ID, "signin-cert")))
        d.find_element(By.ID, "signin-cert").click()
        wait(d, EC.text_to_be_present_in_element((By.ID, "who-role"), "officer"))
        check("client certificate sign-in in the browser: officer, via certificate",
              d.find_element(By.ID, "who-name").text == "officer"
              and "client certificate" in d.find_element(By.ID, "who").get_attribute("title"),
              d.find_element(By.ID, "who").get_attribute("title"))
        page_loaded(d, d.find_element(By.ID, "page").get_attribute("data-page"))
        check("certificate session: a page works against the API", status_text(d) == "", status_text(d))
        screenshot(d, "signed-in-certificate-officer")
        sign_out(d)
    finally:
        if d:
            d.quit()
        os.remove(policy)
        if made_dir:
            for p in (POLICY_DIR, os.path.dirname(POLICY_DIR), os.path.dirname(os.path.dirname(POLICY_DIR))):
                try:
                    os.rmdir(p)
                except OSError:
                    break
    check("the managed policy file is removed", not os.path.exists(policy))


def main():
    d = None
    try:
        test_headers()
        test_mtls_session()
        test_api_enforces_what_is_hidden()
        d = browser()
        d.get(f"{URL}/console/")
        wait(d, EC.visibility_of_element_located((By.ID, "signin")))
        screenshot(d, "signin")
        secret = test_mfa_enrol(d)
        test_issue_revoke(d, secret)
        test_reports_pages(d)
        test_roles(d)
        test_dashboard_and_own_token(d)
        test_approvals(d)
        test_expiry(d)
        read_log(d)
        test_cert_signin()
        logs = [l for l in browser_log if "Content Security Policy" in l["message"]]
        check("no CSP violations in the console's own pages", not logs, logs)
    except Exception as e:  # a failure to reach a state is a failure, with what was on screen
        failures.append(repr(e))
        print(f"not ok - {e!r}")
        traceback.print_exc(file=sys.stdout)
        if d:
            d.save_screenshot(f"{OUTDIR}/failure.png")
            print("status line:", status_text(d))
            for l in browser_log + d.get_log("browser"):
                print("browser:", l["message"])
    finally:
        if d:
            d.quit()
        fx.stdin.close()
        rc = fx.wait(timeout=120)
        check("fixture stopped cleanly (no sanitizer report from hsmca-cad)", rc == 0, rc)
        shutil.rmtree(TMP, ignore_errors=True)
    print(f"{len(failures)} failed")
    sys.exit(1 if failures else 0)


main()
