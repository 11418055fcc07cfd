// The other pages: profiles, authorities, principals and tokens, provisioning tokens and
// devices, ACME EAB credentials and audit (the dashboard, backups and reports are in
// reports.js). Each reads and changes only through the API.
import { get, api, query } from "./api.js";
import { el, clear, table, field, confirmAction, confirmWithReason, download, fmtTime, action, showOk, showError, clearStatus } from "./ui.js";
import { may, me } from "./app.js";

const badge = (s) => el("span", { class: `badge ${s}` }, String(s));
const yes = (b) => badge(b ? "true" : "false");

function kv(obj) {
  return el("dl", { class: "kv" }, Object.entries(obj).flatMap(([k, v]) => [
    el("dt", {}, k), el("dd", {}, typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)),
  ]));
}

export async function profiles(root) {
  root.append(el("h1", {}, "Profiles"));
  const ps = (await get("/api/v1/profiles")).profiles;
  root.append(table([
    { label: "Name", value: (p) => p.name },
    { label: "Authority", value: (p) => p.authority },
    { label: "Key profile", value: (p) => p.key_profile },
    { label: "Max days", value: (p) => p.max_validity_days },
    { label: "SANs", value: (p) => Object.entries(p.san || {}).filter(([, v]) => v.length).map(([k, v]) => `${k}: ${v.join(", ")}`).join("; ") },
    { label: "Enabled", value: (p) => yes(p.enabled !== false) },
    { label: "", value: (p) => may("profile.toggle") ? action(p.enabled === false ? "Enable…" : "Disable…", async () => {
      const on = p.enabled === false;
      if (!(await confirmAction(`${on ? "Enable" : "Disable"} profile ${p.name}?`, on
        ? `Profile ${p.name} will issue again, for officers and RA clients.`
        : `Profile ${p.name} will refuse every new issuance (409 profile-disabled) until enabled; certificates already issued stay valid.`, on ? "Enable" : "Disable"))) return;
      await api("POST", `/api/v1/profiles/${encodeURIComponent(p.name)}/${on ? "enable" : "disable"}`);
      await profiles(clear(root));
      showOk(`Profile ${p.name} ${on ? "enabled" : "disabled"}.`);
    }) : "" },
  ], ps));
}

const SETTINGS = [
  ["crl_next_update_seconds", "number"], ["delta_crl_seconds", "number"], ["ocsp_validity_seconds", "number"],
  ["ocsp_nonce_rate_limit", "number"], ["ocsp_signer_key_label", "text"], ["crl_base_url", "text"],
  ["crl_shards", "number"], ["ocsp_urls", "list"], ["ca_issuers_url", "text"],
];

async function settingsForm(box, name) {
  const s = await get(`/api/v1/authorities/${encodeURIComponent(name)}/settings`);
  clear(box).append(el("h2", {}, `CRL and OCSP settings of ${name}`), kv(s));
  if (!may("authority.settings")) return;
  const inputs = {};
  const fields = SETTINGS.map(([k, t]) => {
    const v = s[k];
    inputs[k] = el("input", { name: k, type: t === "number" ? "number" : "text", value: t === "list" ? (v || []).join(" ") : v ?? "" });
    return field(k.replaceAll("_", " ") + (t === "list" ? " (space-separated)" : ""), inputs[k]);
  });
  box.append(el("form", {
    class: "card", onsubmit: async (e) => {
      e.preventDefault();
      const body = {};
      for (const [k, t] of SETTINGS) {
        const raw = inputs[k].value.trim();
        const v = t === "number" ? Number(raw) : t === "list" ? raw.split(/\s+/).filter(Boolean) : raw;
        if (JSON.stringify(v) !== JSON.stringify(s[k] ?? (t === "list" ? [] : ""))) body[k] = v;
      }
      if (!Object.keys(body).length) return showError("nothing changed");
      if (!(await confirmAction(`Change ${name}'s settings?`, `These values will be stored for crld, ocspd and cad: ${JSON.stringify(body)}`, "Save"))) return;
      try {
        await api("PUT", `/api/v1/authorities/${encodeURIComponent(name)}/settings`, body);
        await settingsForm(box, name);
        showOk(`Settings of ${name} saved.`);
      } catch (err) { showError(err); }
    },
  }, el("div", { class: "filters" }, fields), el("button", { type: "submit", class: "primary" }, "Save settings…")));
}

export async function authorities(root) {
  root.append(el("h1", {}, "Authorities"));
  const as = (await get("/api/v1/authorities")).authorities;
  const box = el("div", { id: "authority-settings" });
  root.append(table([
    { label: "Name", value: (a) => a.name },
    { label: "Subject", value: (a) => a.subject },
    { label: "Key label", value: (a) => a.key_label },
    { label: "Status", value: (a) => badge(a.status) },
    { label: "Configured here", value: (a) => yes(a.configured) },
    { label: "Registered", value: (a) => fmtTime(a.created_at) },
    { label: "", value: (a) => el("span", { class: "actions" },
      action("CRL/OCSP settings", () => settingsForm(box, a.name)),
      may("authority.retire") && a.status === "active" ? action("Retire…", async () => {
        const reason = await confirmWithReason(`Retire ${a.name}?`, `Authority ${a.name} will issue nothing more, for good (there is no way back), at once or, when the approvals policy asks for more than one person, once others approve. Its certificates can still be revoked and its CRLs and OCSP go on.`, "Retire");
        if (reason === null) return;
        const r = await api("POST", `/api/v1/authorities/${encodeURIComponent(a.name)}/retire`, { reason });
        await authorities(clear(root));
        // Under a threshold above 1 the API answers 202 with an approval request (docs/approvals.md).
        if (r && r.approval) showOk(`Waiting for approval: request ${r.approval.id} asks to retire ${a.name}; it needs ${r.approval.required_approvals - 1} other ${r.approval.approver_roles.join(" or ")} to approve it (Approvals page).`);
        else showOk(`Authority ${a.name} is retired.`);
      }, { class: "danger" }) : null) },
  ], as), box);
}

async function tokensOf(box, name) {
  const ts = (await get(`/api/v1/principals/${encodeURIComponent(name)}/tokens`)).tokens || [];
  clear(box).append(el("h2", {}, `API tokens of ${name}`), table([
    { label: "Id", value: (t) => t.id }, { label: "Name", value: (t) => t.name },
    { label: "Created", value: (t) => fmtTime(t.created_at) }, { label: "Expires", value: (t) => fmtTime(t.expires_at) },
    { label: "Last used", value: (t) => fmtTime(t.last_used_at) }, { label: "Revoked", value: (t) => fmtTime(t.revoked_at) },
    { label: "", value: (t) => may("principal.manage") && !t.revoked_at ? action("Revoke…", async () => {
      if (!(await confirmAction(`Revoke token ${t.name}?`, `Token ${t.id} (${t.name}) of ${name} will be refused from now on, and sessions made with it end.`, "Revoke"))) return;
      await api("POST", `/api/v1/tokens/${t.id}/revoke`);
      await tokensOf(box, name);
      showOk(`Token ${t.id} revoked.`);
    }, { class: "danger" }) : "" },
  ], ts));
}

export async function principals(root) {
  root.append(el("h1", {}, "Principals and API tokens"));
  const ps = (await get("/api/v1/principals")).principals;
  const box = el("div", { id: "tokens" });
  root.append(table([
    { label: "Name", value: (p) => p.name }, { label: "Role", value: (p) => p.role },
    { label: "Certificate SHA-256", value: (p) => el("span", { class: "mono" }, p.certificate_sha256 || "none (tokens only)") },
    { label: "Profiles", value: (p) => (p.profiles || []).join?.(", ") ?? p.profiles },
    { label: "Disabled", value: (p) => yes(p.disabled) }, { label: "Created", value: (p) => fmtTime(p.created_at) },
    { label: "", value: (p) => el("span", { class: "actions" }, action("Tokens", () => tokensOf(box, p.name)),
      may("principal.manage") ? action(p.disabled ? "Enable…" : "Disable…", async () => {
        if (!(await confirmAction(`${p.disabled ? "Enable" : "Disable"} ${p.name}?`, p.disabled
          ? `${p.name} (${p.role}) will be able to sign in again.` : `${p.name} (${p.role}) will be refused (401) with any certificate, token or session until enabled.`, p.disabled ? "Enable" : "Disable"))) return;
        await api("POST", `/api/v1/principals/${encodeURIComponent(p.name)}/${p.disabled ? "enable" : "disable"}`);
        await principals(clear(root));
        showOk(`${p.name} ${p.disabled ? "enabled" : "disabled"}.`);
      }) : null) },
  ], ps), box);
  const made = el("div", { "aria-live": "polite" });
  const tname = el("input", { name: "token-name", required: true, placeholder: "ci" });
  const tdays = el("input", { name: "token-days", type: "number", min: "1", value: "30" });
  root.append(el("form", {
    class: "card", onsubmit: async (e) => {
      e.preventDefault();
      const body = { name: tname.value.trim(), expires_days: Number(tdays.value) };
      if (!(await confirmAction("Make an API token for you?", `A token named ${body.name} acting as ${me.name} (${me.role}) for ${body.expires_days} day(s); it is shown once.`, "Make token"))) return;
      try {
        const t = await api("POST", `/api/v1/principals/${encodeURIComponent(me.name)}/tokens`, body);
        clear(made).append(el("div", { class: "card" }, el("h2", {}, "Copy it now: it is not shown again"), el("pre", {}, t.token)));
      } catch (err) { showError(err); }
    },
  }, el("h2", {}, `A token of your own (${me.name})`), el("div", { class: "filters" }, field("Token name", tname), field("Days", tdays),
    el("button", { type: "submit" }, "Make token…"))), made);
  if (!may("principal.manage")) return;
  const name = el("input", { name: "name", required: true });
  const role = el("select", { name: "role" }, ["officer", "auditor", "operator", "ra", "admin", "ca-admin"].map((r) => el("option", { value: r }, r)));
  const cert = el("textarea", { name: "certificate", placeholder: "-----BEGIN CERTIFICATE----- (optional)" });
  const profs = el("input", { name: "profiles", placeholder: "ra only: tls-server web" });
  root.append(el("form", {
    class: "card", onsubmit: async (e) => {
      e.preventDefault();
      const body = { name: name.value.trim(), role: role.value };
      if (cert.value.trim()) body.certificate = `${cert.value.trim()}\n`;
      if (profs.value.trim()) body.profiles = profs.value.trim().split(/\s+/);
      if (!(await confirmAction(`Add ${body.name}?`, `A principal ${body.name} with role ${body.role} will be created${body.certificate ? ", signing in with that client certificate" : " (tokens only)"}.`, "Add"))) return;
      try {
        await api("POST", "/api/v1/principals", body);
        await principals(clear(root));
        showOk(`Principal ${body.name} added.`);
      } catch (err) { showError(err); }
    },
  }, el("h2", {}, "Add a principal"), el("div", { class: "filters" }, field("Name", name), field("Role", role), field("Profiles", profs)),
  field("Client certificate (PEM)", cert), el("button", { type: "submit", class: "primary" }, "Add…")));
}

export async function provisioning(root) {
  root.append(el("h1", {}, "Provisioning tokens and devices"));
  const ts = (await get("/api/v1/provisioning-tokens")).tokens;
  const created = el("div", { "aria-live": "polite" });
  root.append(el("h2", {}, "Provisioning tokens"), table([
    { label: "Id", value: (t) => t.id }, { label: "Name", value: (t) => t.name }, { label: "Profile", value: (t) => t.profile },
    { label: "Uses", value: (t) => `${t.uses}/${t.max_uses}` }, { label: "Allowlist", value: (t) => (t.allowlist || []).join(", ") },
    { label: "State", value: (t) => badge(t.state) }, { label: "Expires", value: (t) => fmtTime(t.expires_at) },
    { label: "Last used", value: (t) => fmtTime(t.last_used_at) },
    { label: "", value: (t) => may("provisioning.manage") && t.state === "active" ? action("Revoke…", async () => {
      if (!(await confirmAction(`Revoke provisioning token ${t.name}?`, `Devices will no longer enrol with token ${t.id} (${t.name}).`, "Revoke"))) return;
      await api("POST", `/api/v1/provisioning-tokens/${t.id}/revoke`);
      await provisioning(clear(root));
      showOk(`Provisioning token ${t.id} revoked.`);
    }, { class: "danger" }) : "" },
  ], ts), created);
  if (may("provisioning.manage")) {
    const name = el("input", { name: "name", required: true });
    const profile = el("input", { name: "profile", required: true, value: "device" });
    const uses = el("input", { name: "uses", type: "number", min: "1", value: "1" });
    const days = el("input", { name: "expires_days", type: "number", min: "1", value: "7" });
    const allow = el("input", { name: "allowlist", placeholder: "gw-* urn:dev:…" });
    root.append(el("form", {
      class: "card", onsubmit: async (e) => {
        e.preventDefault();
        const body = { name: name.value.trim(), profile: profile.value.trim(), uses: Number(uses.value), expires_days: Number(days.value) };
        if (allow.value.trim()) body.allowlist = allow.value.trim().split(/\s+/);
        if (!(await confirmAction("Make a provisioning token?", `A token for ${body.uses} enrolment(s) in profile ${body.profile}, valid ${body.expires_days} day(s); it is shown once.`, "Make token"))) return;
        try {
          const t = await api("POST", "/api/v1/provisioning-tokens", body);
          clear(created).append(el("div", { class: "card" }, el("h2", {}, "Token made: copy it now, it is not shown again"), el("pre", {}, t.token)));
        } catch (err) { showError(err); }
      },
    }, el("h2", {}, "New provisioning token"), el("div", { class: "filters" }, field("Name", name), field("EST profile", profile),
      field("Uses", uses), field("Days", days), field("Allowlist (space-separated)", allow)),
    el("button", { type: "submit", class: "primary" }, "Make token…")));
  }
  const ds = (await get("/api/v1/devices")).devices;
  root.append(el("h2", {}, "Devices"), table([
    { label: "Identity", value: (d) => d.identity }, { label: "Profile", value: (d) => d.profile },
    { label: "Status", value: (d) => badge(d.status) }, { label: "Valid certificates", value: (d) => `${d.certificates_valid}/${d.certificates_issued}` },
    { label: "Enrolled", value: (d) => fmtTime(d.created_at) },
    { label: "", value: (d) => may("provisioning.manage") && d.status === "active" ? action("Decommission…", async () => {
      if (!(await confirmAction(`Decommission ${d.identity}?`, `Every valid certificate of ${d.identity} will be revoked (cessationOfOperation) and the device can never enrol again.`, "Decommission"))) return;
      await api("POST", `/api/v1/devices/${encodeURIComponent(d.identity)}/decommission`, { reason: "cessationOfOperation" });
      await provisioning(clear(root));
      showOk(`${d.identity} decommissioned.`);
    }, { class: "danger" }) : "" },
  ], ds));
}

export async function acme(root) {
  root.append(el("h1", {}, "ACME External Account Binding"));
  const cs = (await get("/api/v1/acme/eab")).credentials;
  const made = el("div", { "aria-live": "polite" });
  root.append(table([
    { label: "Key id", value: (c) => el("span", { class: "mono" }, c.kid) }, { label: "Principal", value: (c) => c.principal },
    { label: "Profiles", value: (c) => (c.profiles || []).join(", ") }, { label: "Allow", value: (c) => (c.allow || []).join(", ") },
    { label: "Expires", value: (c) => fmtTime(c.expires_at) }, { label: "Revoked", value: (c) => fmtTime(c.revoked_at) },
    { label: "Account", value: (c) => c.account_id ?? "" },
    { label: "", value: (c) => may("eab.manage") && !c.revoked_at ? action("Revoke…", async () => {
      if (!(await confirmAction("Revoke this EAB credential?", `Key id ${c.kid} will no longer bind new ACME accounts.`, "Revoke"))) return;
      await api("POST", `/api/v1/acme/eab/${encodeURIComponent(c.kid)}/revoke`);
      await acme(clear(root));
      showOk(`EAB credential ${c.kid} revoked.`);
    }, { class: "danger" }) : "" },
  ], cs), made);
  if (!may("eab.manage")) return;
  const profiles = el("input", { name: "profiles", required: true, placeholder: "web" });
  const allow = el("input", { name: "allow", placeholder: "*.corp.example.com" });
  const days = el("input", { name: "expires_days", type: "number", min: "1", value: "7" });
  root.append(el("form", {
    class: "card", onsubmit: async (e) => {
      e.preventDefault();
      const body = { profiles: profiles.value.trim().split(/\s+/), expires_days: Number(days.value) };
      if (allow.value.trim()) body.allow = allow.value.trim().split(/\s+/);
      if (!(await confirmAction("Make an EAB credential?", `A credential binding one ACME account to profiles ${body.profiles.join(", ")}, valid ${body.expires_days} day(s); its HMAC key is shown once.`, "Make"))) return;
      try {
        const c = await api("POST", "/api/v1/acme/eab", body);
        clear(made).append(el("div", { class: "card" }, el("h2", {}, "Copy these now: the HMAC key is not shown again"), kv({ kid: c.kid, hmac_key: c.hmac_key })));
      } catch (err) { showError(err); }
    },
  }, el("h2", {}, "New credential"), el("div", { class: "filters" }, field("Profiles (space-separated)", profiles), field("Allowed names", allow), field("Days", days)),
  el("button", { type: "submit", class: "primary" }, "Make credential…")));
}

export async function audit(root) {
  root.append(el("h1", {}, "Audit log"));
  const result = el("div", { id: "audit-verify", "aria-live": "polite" });
  root.append(el("div", { class: "actions" }, action("Verify the chain and checkpoints", async () => {
    const v = await get("/api/v1/audit/verify");
    clear(result).append(el("div", { class: "card" }, el("h2", {}, "Finding: ", badge(v.finding === "intact" ? "ok" : v.finding)), kv(v)));
  }, { class: "primary" })), result);
  const f = { actor: el("input", { name: "actor" }), action: el("input", { name: "action", placeholder: "certificate.revoke" }),
    outcome: el("select", { name: "outcome" }, ["", "success", "denied"].map((o) => el("option", { value: o }, o || "any"))),
    object: el("input", { name: "object" }) };
  const out = el("div", { id: "audit-entries" });
  let after;
  let shown = [];
  const history = [];
  async function load() {
    const d = await get(`/api/v1/audit${query({ after, limit: 200 })}`);
    const match = (e) => Object.entries(f).every(([k, i]) => !i.value.trim() || String(e[k] || "").includes(i.value.trim()));
    shown = d.entries.filter(match);
    clear(out).append(table([
      { label: "Seq", value: (e) => e.seq }, { label: "At", value: (e) => fmtTime(e.at) }, { label: "Actor", value: (e) => e.actor },
      { label: "Role", value: (e) => e.role }, { label: "Action", value: (e) => e.action }, { label: "Object", value: (e) => e.object },
      { label: "Outcome", value: (e) => badge(e.outcome === "success" ? "ok" : e.outcome) }, { label: "Detail", value: (e) => e.detail },
    ], shown, `entries ${d.entries.length ? `${d.entries[0].seq}–${d.entries[d.entries.length - 1].seq}` : ""} (${shown.length} match the filter)`),
    el("div", { class: "pager" },
      history.length ? action("Previous 200", () => { after = history.pop(); return load(); }) : null,
      d.next !== null && d.next !== undefined ? action("Next 200", () => { history.push(after); after = d.next; return load(); }) : null,
      action("Export shown (JSON lines)", () => download("audit.jsonl", shown.map((e) => JSON.stringify(e)).join("\n") + "\n", "application/x-ndjson"))));
  }
  root.append(el("form", { class: "card", onsubmit: (e) => { e.preventDefault(); load().catch(showError); } },
    el("h2", {}, "Filter (within the page of 200)"),
    el("div", { class: "filters" }, field("Actor", f.actor), field("Action", f.action), field("Outcome", f.outcome), field("Object", f.object),
      el("button", { type: "submit" }, "Apply"))), out);
  await load();
}
