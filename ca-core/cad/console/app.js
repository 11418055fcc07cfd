// The console's shell: sign-in (client certificate or API token, exchanged for a session
// cookie), who you are (GET /api/v1/whoami), the pages your role may use, and hash routing.
// The roles below mirror the API's permission matrix (docs/api.md) only to hide what would be
// refused; the API decides.
import { api, get, setCsrf, setSignedOutHandler, ApiError } from "./api.js";
import { el, clear, showError, showOk, clearStatus } from "./ui.js";
import * as pages from "./pages.js";
import * as certs from "./certs.js";
import * as reports from "./reports.js";
import * as mfa from "./mfa.js";
import * as approvals from "./approvals.js";

const ALL = ["ca-admin", "admin", "officer", "auditor", "operator", "ra"];
export const PAGES = [
  { id: "dashboard", title: "Dashboard", roles: ["ca-admin", "admin", "officer", "auditor", "operator"], render: reports.dashboard },
  { id: "certificates", title: "Certificates", roles: ["ca-admin", "admin", "officer", "auditor", "ra"], render: certs.certificates },
  { id: "issue", title: "Issue", roles: ["officer", "ra"], render: certs.issue },
  { id: "profiles", title: "Profiles", roles: ALL, render: pages.profiles },
  { id: "authorities", title: "Authorities", roles: ["ca-admin", "admin", "officer", "auditor"], render: pages.authorities },
  { id: "principals", title: "Principals", roles: ["ca-admin", "admin", "auditor"], render: pages.principals },
  { id: "provisioning", title: "Devices", roles: ["ca-admin", "admin", "officer", "auditor"], render: pages.provisioning },
  { id: "acme", title: "ACME EAB", roles: ["ca-admin", "admin", "officer", "auditor"], render: pages.acme },
  { id: "audit", title: "Audit", roles: ["ca-admin", "auditor"], render: pages.audit },
  { id: "backups", title: "Backups", roles: ["ca-admin", "auditor", "operator"], render: reports.backups },
  { id: "reports", title: "Reports", roles: ["ca-admin", "auditor"], render: reports.reports },
  { id: "approvals", title: "Approvals", roles: ["ca-admin", "admin", "officer", "auditor"], render: approvals.approvals },
  { id: "mfa", title: "MFA", roles: ALL, render: mfa.mfa },
];

export const me = { name: null, role: null, profiles: "", via: null };

// What a role may do beyond reading (the API's matrix, for hiding buttons only).
export function may(what) {
  const r = me.role;
  switch (what) {
    case "issue": return r === "officer" || r === "ra";
    case "revoke": return r === "officer" || r === "ra";
    case "hold": return r === "officer";
    case "profile.toggle": return r === "admin";
    case "authority.retire": return r === "ca-admin";
    case "authority.settings": return r === "officer";
    case "principal.manage": return r === "ca-admin" || r === "admin";
    case "provisioning.manage": return r === "officer";
    case "eab.manage": return r === "officer";
    default: return false;
  }
}

function visiblePages() {
  return PAGES.filter((p) => p.roles.includes(me.role));
}

function showSignIn(message) {
  me.name = me.role = null;
  setCsrf(null);
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  document.getElementById("page").hidden = true;
  document.getElementById("signin").hidden = false;
  if (message) showError(message);
  document.getElementById("signin-cert").focus();
}

async function signedIn(session) {
  setCsrf(session.csrf_token);
  const who = await get("/api/v1/whoami");
  me.name = who.name;
  me.role = who.role;
  me.profiles = who.profiles || "";
  me.via = session.via;
  document.getElementById("who-name").textContent = who.name;
  document.getElementById("who-role").textContent = who.role;
  document.getElementById("who").title = `signed in with ${session.via === "certificate" ? "a client certificate" : "an API token"}`;
  document.getElementById("who").hidden = false;
  const nav = clear(document.getElementById("nav"));
  for (const p of visiblePages()) nav.append(el("a", { href: `#/${p.id}`, "data-page": p.id }, p.title));
  nav.hidden = false;
  document.getElementById("signin").hidden = true;
  document.getElementById("page").hidden = false;
  route();
}

async function startSession(headers) {
  clearStatus();
  try {
    const s = await api("POST", "/api/v1/session", undefined, { headers });
    await signedIn(s);
  } catch (e) {
    showError(e);
  }
}

export async function route() {
  if (!me.role) return;
  const hash = location.hash.replace(/^#\/?/, "");
  const [id, ...rest] = hash.split("/");
  const list = visiblePages();
  const page = list.find((p) => p.id === id) || list[0];
  const root = clear(document.getElementById("page"));
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.page === page.id) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (id && page.id !== id) {
    showError(new ApiError(0, "no-such-page", `"${id}" is not a page your role (${me.role}) has`));
  }
  document.title = `${page.title} · hsmca console`;
  root.dataset.page = page.id;
  try {
    await page.render(root, rest.map(decodeURIComponent));
  } catch (e) {
    showError(e);
  }
  document.getElementById("main").focus();
}

function init() {
  setSignedOutHandler((err) => showSignIn(err));
  document.getElementById("signin-cert").addEventListener("click", () => startSession({}));
  document.getElementById("signin-token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = document.getElementById("signin-token");
    const token = input.value.trim();
    input.value = "";
    if (!token) return showError("type an API token first");
    startSession({ Authorization: `Bearer ${token}` });
  });
  document.getElementById("signout").addEventListener("click", async () => {
    try {
      await api("DELETE", "/api/v1/session");
    } catch (e) {
      if (e.code !== "session-expired") return showError(e);
    }
    showSignIn();
    showOk("Signed out: the session has ended on the server.");
  });
  window.addEventListener("hashchange", () => {
    clearStatus();
    route();
  });
  get("/api/v1/session")
    .then(signedIn)
    .catch((e) => showSignIn(e.status === 401 && e.code !== "session-expired" ? null : e.code === "no-session" ? null : e));
}

init();
