// The read-only pages over GET /api/v1/dashboard, /api/v1/backups and /api/v1/reports/…:
// what each figure counts is docs/reports.md. The per-day chart is inline SVG built with DOM
// calls (no markup from data, no style attributes: the CSP forbids them; colours come from
// console.css classes).
import { get, query } from "./api.js";
import { el, clear, table, field, fmtTime, action, showError, clearStatus } from "./ui.js";

const badge = (s) => el("span", { class: `badge ${s}` }, String(s));
const num = (n) => (n === null || n === undefined ? "" : Number(n).toLocaleString("en"));

function metric(key, label, value, note, warn) {
  return el("div", { class: `card metric${warn ? " warn" : ""}`, "data-metric": key },
    el("div", { class: "value" }, String(value)), el("div", { class: "label" }, label),
    note ? el("div", { class: "hint" }, note) : null);
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Number(seconds);
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

function crlText(c) {
  if (!c) return "none recorded";
  return `#${c.number} (${c.scope}), next update ${fmtTime(c.next_update)}`;
}

export async function dashboard(root) {
  root.append(el("h1", {}, "Dashboard"));
  const d = await get("/api/v1/dashboard");
  const c = d.certificates || {};
  const a = d.audit || {};
  const stale = (d.authorities || []).filter((x) => (x.crl && x.crl.next_update_passed) || (x.ocsp && x.ocsp.expired_responses > 0));
  root.append(el("div", { class: "grid", id: "dashboard-metrics" },
    metric("issued", "certificates valid (issued, not expired)", num(c.issued)),
    metric("revoked", "certificates revoked", num(c.revoked)),
    metric("on_hold", "certificates on hold", num(c.on_hold)),
    metric("expired", "certificates expired", num(c.expired)),
    metric("issued_last_hour", "issued in the last hour", num(d.issued_last_hour)),
    metric("issued_last_24_hours", "issued in the last 24 hours", num(d.issued_last_24_hours)),
    metric("keyd", "keyd (every authority's key held)", d.keyd && d.keyd.online ? "online" : "OFFLINE", null, !(d.keyd && d.keyd.online)),
    metric("checkpoint", "last audit checkpoint",
      a.checkpoint_seq !== null && a.checkpoint_seq !== undefined ? `#${a.checkpoint_seq}` : "none",
      a.checkpoint_at ? `${fmtTime(a.checkpoint_at)}; ${num(a.entries_since_checkpoint)} entr${a.entries_since_checkpoint === 1 ? "y" : "ies"} since (head #${a.head_seq ?? "none"})`
        : a.checkpoints_enabled ? "checkpoints are on; none signed yet" : "checkpoints are off (audit.checkpoint_key)",
      !a.head_checkpointed_recently),
    metric("freshness", "authorities with a stale CRL or OCSP response", String(stale.length),
      stale.length ? stale.map((x) => x.name).join(", ") : "every recorded CRL and OCSP response is current", stale.length > 0)));
  root.append(table([
    { label: "Authority", value: (x) => x.name },
    { label: "Subject", value: (x) => x.subject },
    { label: "Valid from", value: (x) => fmtTime(x.not_before) },
    { label: "Valid until", value: (x) => fmtTime(x.not_after) },
    { label: "Retired", value: (x) => badge(x.retired ? "retired" : "active") },
    { label: "CRL", value: (x) => el("span", {}, crlText(x.crl), x.crl && x.crl.next_update_passed ? [" ", badge("stale")] : "") },
    { label: "Delta CRL", value: (x) => el("span", {}, crlText(x.delta_crl), x.delta_crl && x.delta_crl.next_update_passed ? [" ", badge("stale")] : "") },
    { label: "OCSP", value: (x) => (!x.ocsp || !x.ocsp.earliest_next_update ? "no pre-signed responses stored"
      : el("span", {}, `earliest next update ${fmtTime(x.ocsp.earliest_next_update)}; ${x.ocsp.expired_responses} past it`,
        x.ocsp.expired_responses > 0 ? [" ", badge("stale")] : "")) },
  ], d.authorities || [], "Authorities"),
  el("p", { class: "hint" }, `Figures as of ${fmtTime(d.generated_at)} (docs/reports.md says what each counts). `,
    action("Refresh", async () => { clearStatus(); await dashboard(clear(root)); })));
}

export async function backups(root) {
  root.append(el("h1", {}, "Backups"));
  const d = await get("/api/v1/backups");
  const last = d.last_success;
  root.append(el("div", { class: `card${last ? "" : " warn"}`, id: "backup-last" }, last
    ? `Last successful backup: run ${last.id}, finished ${fmtTime(last.finished_at)} (${ago(last.age_seconds)}), archive ${last.archive}.`
    : "No successful backup is recorded."));
  const list = el("div", { id: "backup-runs" });
  root.append(list, el("p", { class: "hint" }, "Running a backup stays a command-line job: hsmca backup (docs/backup.md). Every run is recorded, failed ones with their reason."));
  const pages = [];
  async function show(before) {
    const p = before ? await get(`/api/v1/backups${query({ before })}`) : d;
    clear(list).append(table([
      { label: "Run", value: (r) => r.id },
      { label: "By", value: (r) => r.run_by },
      { label: "Archive", value: (r) => el("span", { class: "mono" }, r.archive) },
      { label: "Started", value: (r) => fmtTime(r.started_at) },
      { label: "Finished", value: (r) => fmtTime(r.finished_at) },
      { label: "Outcome", value: (r) => badge(r.outcome === "success" ? "ok" : r.outcome) },
      { label: "Size", value: (r) => (r.size_bytes !== null && r.size_bytes !== undefined ? `${num(r.size_bytes)} bytes` : "") },
      { label: "SHA-256", value: (r) => el("span", { class: "mono", title: r.sha256 || "" }, r.sha256 ? `${r.sha256.slice(0, 16)}…` : "") },
      { label: "Error", value: (r) => r.error || "" },
    ], p.runs, "Backup runs, newest first"), el("div", { class: "pager" },
      pages.length ? action("Newer runs", () => show(pages.pop())) : null,
      p.next !== null && p.next !== undefined ? action("Older runs", () => { pages.push(before); return show(p.next); }) : null));
  }
  await show(undefined);
}

// An SVG bar chart of per-day issued and revoked counts, one group per day.
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

export function dayChart(days) {
  const W = 760, H = 200, left = 40, bottom = 24, top = 10;
  const max = Math.max(1, ...days.flatMap((x) => [x.issued, x.revoked]));
  const slot = (W - left) / Math.max(1, days.length);
  const bar = Math.max(1, Math.min(14, slot / 2 - 1));
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", id: "issuance-chart", class: "chart",
    "aria-label": `certificates issued and revoked per day, ${days[0].day} to ${days[days.length - 1].day}; highest ${max}` });
  g.append(svg("line", { x1: left, y1: y(0), x2: W, y2: y(0), class: "axis" }),
    svg("text", { x: left - 6, y: y(max) + 4, "text-anchor": "end", class: "tick" }, max),
    svg("text", { x: left - 6, y: y(0) + 4, "text-anchor": "end", class: "tick" }, 0),
    svg("text", { x: left, y: H - 6, class: "tick" }, days[0].day),
    svg("text", { x: W, y: H - 6, "text-anchor": "end", class: "tick" }, days[days.length - 1].day));
  days.forEach((x, i) => {
    const x0 = left + i * slot + (slot - 2 * bar) / 2;
    for (const [k, off] of [["issued", 0], ["revoked", bar]]) {
      if (!x[k]) continue;
      g.append(svg("rect", { x: x0 + off, y: y(x[k]), width: bar, height: y(0) - y(x[k]), class: `bar ${k}`, "data-day": x.day },
        svg("title", {}, `${x.day}: ${x[k]} ${k}`)));
    }
  });
  return el("figure", { class: "card" }, g, el("figcaption", { class: "hint" },
    el("span", { class: "key issued" }, "■"), " issued  ", el("span", { class: "key revoked" }, "■"), " revoked, per UTC day"));
}

function links(path, params, items) {
  return el("div", { class: "actions downloads" }, items.map(([label, extra, name]) =>
    el("a", { class: "button", href: `${path}${query({ ...params, ...extra })}`, download: name }, label)));
}

const cell = (v) => (v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : v);
const columns = (keys) => keys.map((k) => ({ label: k.replaceAll("_", " "), value: (r) => cell(r[k]) }));

async function issuance(out, from, to) {
  const params = { from, to };
  const d = await get(`/api/v1/reports/issuance${query(params)}`);
  const t = d.totals || {};
  out.append(el("h2", {}, `Issuance from ${fmtTime(d.from)} to ${fmtTime(d.to)}`),
    el("div", { class: "grid", id: "issuance-totals" }, metric("issued", "issued", num(t.issued)),
      metric("revoked", "revoked", num(t.revoked)), metric("expired", "expired", num(t.expired))),
    d.days && d.days.length ? dayChart(d.days) : null,
    table(columns(["authority", "profile", "issued", "revoked", "expired"]), d.rows, "Per authority and profile"),
    links("/api/v1/reports/issuance", params, [["Download CSV", { format: "csv" }, "issuance.csv"],
      ["Download CSV by day", { format: "csv", table: "days" }, "issuance-by-day.csv"], ["Download JSON", {}, "issuance.json"]]),
    el("details", {}, el("summary", {}, "Per day"), table(columns(["day", "issued", "revoked", "expired"]), d.days)));
}

async function expiring(out, days) {
  const params = { days };
  const d = await get(`/api/v1/reports/expiring${query(params)}`);
  out.append(el("h2", {}, `${d.total} valid certificate(s) expire within ${d.days} day(s)`),
    table([
      { label: "serial", value: (r) => el("a", { href: `#/certificates/${r.serial}`, class: "mono" }, r.serial) },
      ...columns(["authority", "profile", "subject", "requester"]),
      { label: "not after", value: (r) => fmtTime(r.not_after) }, { label: "days left", value: (r) => r.days_left },
    ], d.certificates, d.total > d.certificates.length ? `the first ${d.certificates.length} of ${d.total}` : "Soonest first"),
    links("/api/v1/reports/expiring", params, [["Download CSV", { format: "csv" }, "expiring.csv"], ["Download JSON", {}, "expiring.json"]]));
}

async function principalsReport(out) {
  const d = await get("/api/v1/reports/principals");
  const cols = [...columns(["name", "principal", "role", "profile"]), { label: "state", value: (r) => badge(r.state) },
    { label: "created", value: (r) => fmtTime(r.created_at) }, { label: "expires", value: (r) => fmtTime(r.expires_at) },
    { label: "last used", value: (r) => fmtTime(r.last_used_at) || "never" }];
  out.append(table([...cols, { label: "active tokens", value: (r) => r.active_tokens }], d.principals, "Principals"),
    table(cols, d.api_tokens, "API tokens"), table(cols, d.provisioning_tokens, "Provisioning tokens"),
    links("/api/v1/reports/principals", {}, [["Download CSV", { format: "csv" }, "principals.csv"], ["Download JSON", {}, "principals.json"]]));
}

export async function reports(root) {
  root.append(el("h1", {}, "Reports"));
  const today = new Date().toISOString().slice(0, 10);
  const monthAgo = new Date(Date.now() - 29 * 86400e3).toISOString().slice(0, 10);
  const kind = el("select", { name: "report" }, [["issuance", "Issued, revoked, expired per authority and profile"],
    ["expiring", "Expiring within N days"], ["principals", "Principals and tokens with their last use"]].map(([v, t]) => el("option", { value: v }, t)));
  const from = el("input", { name: "from", type: "date", value: monthAgo });
  const to = el("input", { name: "to", type: "date", value: today });
  const days = el("input", { name: "days", type: "number", min: "1", value: "30" });
  const out = el("div", { id: "report-result", "aria-live": "polite" });
  const f = [field("From (UTC day, included)", from), field("To (UTC day, included)", to), field("Days ahead", days)];
  const shown = () => {
    f[0].hidden = f[1].hidden = kind.value !== "issuance";
    f[2].hidden = kind.value !== "expiring";
  };
  kind.addEventListener("change", shown);
  shown();
  async function run() {
    clear(out);
    // "to" is the day after the chosen one: the period is [from, to).
    const end = to.value ? new Date(Date.parse(`${to.value}T00:00:00Z`) + 86400e3).toISOString().slice(0, 10) : "";
    if (kind.value === "issuance") await issuance(out, from.value, end);
    else if (kind.value === "expiring") await expiring(out, days.value);
    else await principalsReport(out);
  }
  root.append(el("form", { class: "card", onsubmit: (e) => { e.preventDefault(); clearStatus(); run().catch(showError); } },
    el("div", { class: "filters" }, field("Report", kind), f, el("button", { type: "submit", class: "primary", id: "report-run" }, "Run report"))), out);
  await run();
}
