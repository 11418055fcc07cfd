// Certificates: search with the API's filters and paging, the detail of one (decoded fields,
// fingerprints, PEM/DER download), issue from a pasted or uploaded CSR, revoke, hold, release.
import { get, api, query } from "./api.js";
import { el, clear, table, field, confirmAction, download, fmtTime, action, showOk, showError, clearStatus } from "./ui.js";
import { may, me } from "./app.js";

const REASONS = ["unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
  "cessationOfOperation", "privilegeWithdrawn", "aACompromise"];
const STATUSES = ["", "issued", "revoked", "hold", "reserved", "failed"];
const CAN_LIST = ["ca-admin", "admin", "officer", "auditor"];

const badge = (s) => el("span", { class: `badge ${s}` }, s);
const serialLink = (s) => el("a", { href: `#/certificates/${encodeURIComponent(s)}`, class: "mono" }, s);

function select(name, values, current) {
  return el("select", { name }, values.map((v) => el("option", { value: v, selected: v === current }, v || "any")));
}

export async function certificates(root, rest) {
  if (rest[0]) return detail(root, rest[0]);
  root.append(el("h1", {}, "Certificates"));
  const lookup = el("input", { name: "serial", placeholder: "hex serial", spellcheck: "false" });
  root.append(
    el("form", {
      class: "card", onsubmit: (e) => {
        e.preventDefault();
        const s = lookup.value.trim();
        if (s) location.hash = `#/certificates/${encodeURIComponent(s)}`;
      },
    },
    el("h2", {}, "Open by serial"),
    el("div", { class: "filters" }, field("Serial", lookup), el("button", { type: "submit" }, "Open")))
  );
  if (!CAN_LIST.includes(me.role)) {
    root.append(el("p", { class: "notice" }, `Your role (${me.role}) may open certificates by serial but not list them.`));
    return;
  }
  let profiles = [];
  try {
    profiles = (await get("/api/v1/profiles")).profiles.map((p) => p.name);
  } catch (e) {
    showError(e);
  }
  const f = {
    subject: el("input", { name: "subject", placeholder: "CN=www.example.com" }),
    san: el("input", { name: "san", placeholder: "example.com" }),
    profile: select("profile", ["", ...profiles], ""),
    status: select("status", STATUSES, ""),
    authority: el("input", { name: "authority" }),
    requester: el("input", { name: "requester", placeholder: "principal name" }),
    expires_after: el("input", { name: "expires_after", type: "date" }),
    expires_before: el("input", { name: "expires_before", type: "date" }),
    limit: select("limit", ["25", "50", "100", "500"], "50"),
  };
  const results = el("div", { id: "cert-results", "aria-live": "polite" });
  const pages = [];
  async function load(after) {
    clearStatus();
    const q = {};
    for (const [k, input] of Object.entries(f)) {
      if (k === "requester") continue;
      let v = input.value.trim();
      if (v && (k === "expires_after" || k === "expires_before")) v = `${v}T00:00:00Z`;
      q[k] = v;
    }
    q.after = after;
    const data = await get(`/api/v1/certificates${query(q)}`);
    let rows = data.certificates;
    const who = f.requester.value.trim();
    if (who) rows = rows.filter((c) => (c.requester || "").includes(who));
    clear(results).append(
      table([
        { label: "Serial", value: (c) => serialLink(c.serial) },
        { label: "Subject", value: (c) => c.subject },
        { label: "Profile", value: (c) => c.profile },
        { label: "Authority", value: (c) => c.authority },
        { label: "Status", value: (c) => badge(c.status) },
        { label: "Not after", value: (c) => fmtTime(c.not_after) },
        { label: "Requester", value: (c) => c.requester },
      ], rows, `${rows.length} certificate(s)${who ? ` requested by "${who}" on this page` : ""}`),
      el("div", { class: "pager" },
        pages.length ? action("Previous page", () => { pages.pop(); return load(pages[pages.length - 1]); }) : null,
        data.next !== null && data.next !== undefined
          ? action("Next page", () => { pages.push(data.next); return load(data.next); }) : null)
    );
  }
  root.append(
    el("form", {
      class: "card", id: "cert-search", onsubmit: async (e) => {
        e.preventDefault();
        pages.length = 0;
        try { await load(undefined); } catch (err) { showError(err); }
      },
    },
    el("h2", {}, "Search"),
    el("div", { class: "filters" },
      field("Subject contains", f.subject), field("SAN contains", f.san), field("Profile", f.profile),
      field("Status", f.status), field("Authority", f.authority),
      field("Requester (on the page shown)", f.requester),
      field("Expires on or after", f.expires_after), field("Expires before", f.expires_before),
      field("Per page", f.limit), el("button", { type: "submit", class: "primary" }, "Search"))),
    results
  );
  await load(undefined);
}

function pemToDer(pem) {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function fingerprint(der, alg) {
  const h = new Uint8Array(await crypto.subtle.digest(alg, der));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join(":");
}

async function detail(root, serial) {
  const c = await get(`/api/v1/certificates/${encodeURIComponent(serial)}`);
  root.append(el("p", {}, el("a", { href: "#/certificates" }, "← All certificates")),
    el("h1", {}, "Certificate ", el("span", { class: "mono" }, c.serial)));
  const rows = [
    ["Status", badge(c.status)], ["Subject", c.subject], ["Serial", el("span", { class: "mono" }, c.serial)],
    ["Authority", c.authority], ["Profile", c.profile],
    ["Subject alternative names", (c.sans || []).map((s) => `${s.type}:${s.value}`).join(", ") || "none"],
    ["Not before", fmtTime(c.not_before)], ["Not after", fmtTime(c.not_after)],
    ["Requester", c.requester], ["Reserved", fmtTime(c.created_at)], ["Issued", fmtTime(c.issued_at)],
  ];
  if (c.revoked_at) rows.push(["Revoked / held", fmtTime(c.revoked_at)], ["Reason", c.revocation_reason || ""]);
  if (c.invalidity_date) rows.push(["Invalidity date", fmtTime(c.invalidity_date)]);
  const d = c.decoded;
  const list = (a) => (a && a.length ? a.join(", ") : "none");
  if (d) {
    rows.push(["Issuer", d.issuer], ["Public key", d.public_key], ["Signature algorithm", d.signature_algorithm],
      ["CA", d.ca ? "yes" : "no"], ["Key usage", list(d.key_usage)], ["Extended key usage", list(d.extended_key_usage)],
      ["Policies", list(d.policies)], ["CRL distribution points", list(d.crl_distribution_points)],
      ["OCSP", list(d.ocsp)], ["CA issuers", list(d.ca_issuers)],
      ["Subject key id", el("span", { class: "mono" }, d.subject_key_id || "none")],
      ["Authority key id", el("span", { class: "mono" }, d.authority_key_id || "none")],
      ["SHA-1 fingerprint", el("span", { class: "mono" }, d.sha1_fingerprint || "")]);
  }
  let der = null;
  if (c.certificate) {
    der = pemToDer(c.certificate);
    rows.push(["SHA-256 fingerprint", el("span", { class: "mono" }, await fingerprint(der, "SHA-256"))]);
    rows.push(["Size", `${der.length} bytes DER`]);
  }
  root.append(el("dl", { class: "kv", id: "cert-detail" }, rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])));
  const acts = el("div", { class: "actions" });
  if (c.certificate) {
    acts.append(
      action("Download PEM", () => download(`${c.serial}.pem`, c.certificate, "application/x-pem-file")),
      action("Download DER", () => download(`${c.serial}.der`, der, "application/pkix-cert"))
    );
    if (c.chain && c.chain.length)
      acts.append(action("Download chain (PEM)", () => download(`${c.serial}-chain.pem`, c.chain.join(""), "application/x-pem-file")));
  }
  root.append(acts);
  if (c.certificate) root.append(el("details", {}, el("summary", {}, "PEM"), el("pre", {}, c.certificate)));
  if (c.chain && c.chain.length)
    root.append(el("details", {}, el("summary", {}, `Chain (${c.chain.length})`), el("pre", {}, c.chain.join(""))));
  else root.append(el("p", { class: "hint" }, `The chain of authority ${c.authority} is not configured on this hsmca-cad.`));

  const reload = async () => {
    const page = clear(root);
    await detail(page, c.serial);
  };
  if ((c.status === "issued" || c.status === "hold" || c.status === "reserved") && may("revoke")) {
    const reason = select("reason", REASONS, "unspecified");
    const inval = el("input", { name: "invalidity_date", type: "datetime-local" });
    root.append(el("form", {
      class: "card", id: "revoke-form", onsubmit: async (e) => {
        e.preventDefault();
        const body = { reason: reason.value };
        if (inval.value) body.invalidity_date = `${inval.value.length === 16 ? `${inval.value}:00` : inval.value}Z`;
        if (!(await confirmAction("Revoke this certificate?",
          `Certificate ${c.serial} (${c.subject}) will be revoked for good with reason ${reason.value}. OCSP and the CRL will announce it. This cannot be undone.`,
          "Revoke"))) return;
        try {
          const r = await api("POST", `/api/v1/certificates/${c.serial}/revoke`, body);
          await reload();
          // A CA certificate under a threshold above 1: 202 with an approval request.
          if (r && r.approval) showOk(`Waiting for approval: request ${r.approval.id} asks to revoke this CA certificate; it needs ${r.approval.required_approvals - 1} approver(s) (Approvals page).`);
          else showOk(`Certificate ${c.serial} is revoked (${reason.value}).`);
        } catch (err) { showError(err); }
      },
    }, el("h2", {}, "Revoke"), el("div", { class: "filters" }, field("Reason", reason),
      field("Invalidity date (UTC, optional)", inval),
      el("button", { type: "submit", class: "danger", id: "revoke-button" }, "Revoke…"))));
  }
  if (may("hold") && (c.status === "issued" || c.status === "hold")) {
    const hold = c.status === "issued";
    root.append(el("div", { class: "card" }, el("h2", {}, hold ? "Hold" : "Release"),
      action(hold ? "Put on hold…" : "Release from hold…", async () => {
        if (!(await confirmAction(hold ? "Put on hold?" : "Release?", hold
          ? `Certificate ${c.serial} will be suspended (certificateHold) until released; relying parties will see it revoked meanwhile.`
          : `Certificate ${c.serial} will be valid again; the hold is lifted in OCSP and the CRL.`, hold ? "Hold" : "Release"))) return;
        await api("POST", `/api/v1/certificates/${c.serial}/${hold ? "hold" : "release"}`);
        await reload();
        showOk(`Certificate ${c.serial} is ${hold ? "on hold" : "released"}.`);
      })));
  }
}

export async function issue(root) {
  root.append(el("h1", {}, "Issue a certificate"));
  const profs = (await get("/api/v1/profiles")).profiles.filter((p) => p.enabled !== false);
  const profile = el("select", { name: "profile", required: true },
    profs.map((p) => el("option", { value: p.name }, `${p.name} (${p.authority}, up to ${p.max_validity_days} days)`)));
  const csr = el("textarea", { name: "csr", required: true, spellcheck: "false", placeholder: "-----BEGIN CERTIFICATE REQUEST-----" });
  const file = el("input", { type: "file", name: "csr-file", accept: ".csr,.pem,.req,text/plain" });
  file.addEventListener("change", async () => {
    if (file.files[0]) {
      if (file.files[0].size > 65536) return showError("the CSR file is larger than 64 KiB");
      csr.value = await file.files[0].text();
    }
  });
  const days = el("input", { name: "validity_days", type: "number", min: "1", max: "3650" });
  const out = el("div", { id: "issue-result", "aria-live": "polite" });
  root.append(el("form", {
    class: "card", id: "issue-form", onsubmit: async (e) => {
      e.preventDefault();
      clearStatus();
      const text = csr.value.trim();
      if (!text.includes("BEGIN CERTIFICATE REQUEST")) return showError("the CSR must be a PEM PKCS#10 request (-----BEGIN CERTIFICATE REQUEST-----)");
      const body = { profile: profile.value, csr: `${text}\n` };
      if (days.value) body.validity_days = Number(days.value);
      if (!(await confirmAction("Issue this certificate?",
        `hsmca-cad will check the CSR against profile ${profile.value} and, if it passes, sign a certificate valid for ${days.value ? `${days.value} days` : "the profile's longest validity"}. It is recorded in the audit log under your name.`,
        "Issue"))) return;
      try {
        const c = await api("POST", "/api/v1/certificates", body);
        clear(out).append(el("div", { class: "card" }, el("h2", {}, "Issued"),
          el("p", {}, "Serial ", serialLink(c.serial), ` · ${c.subject} · valid until ${fmtTime(c.not_after)}`),
          el("div", { class: "actions" },
            action("Download certificate (PEM)", () => download(`${c.serial}.pem`, c.certificate, "application/x-pem-file")),
            action("Download with chain (PEM)", () => download(`${c.serial}-fullchain.pem`, c.certificate + (c.chain || []).join(""), "application/x-pem-file"))),
          el("pre", {}, c.certificate)));
        showOk(`Certificate ${c.serial} issued.`);
      } catch (err) { showError(err); }
    },
  }, field("Profile", profile), field("CSR (PEM)", csr, "Paste it, or choose a file below."),
  field("…or CSR file", file), field("Validity in days (optional)", days, "Empty: the profile's longest."),
  el("button", { type: "submit", class: "primary", id: "issue-button" }, "Issue…")), out);
}
