// The MFA page, for every principal (docs/mfa.md): status, enrolment (the server-rendered QR
// code, the secret for typing in, confirmation with a first code), the recovery codes shown
// once, and disabling. Step-up itself is in api.js and ui.js (the dialog).
import { get, post } from "./api.js";
import { el, clear, field, confirmAction, fmtTime, showOk, showError, clearStatus } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const SVG_ELEMENTS = new Set(["svg", "rect", "path", "g"]);
const SVG_ATTRIBUTES = new Set(["viewBox", "width", "height", "x", "y", "d", "fill", "shape-rendering", "role", "aria-label"]);

// hsmca-cad's QR SVG, parsed (never as HTML) and copied element by element: only shapes and
// their geometry and fill, so nothing in it can run or load anything. The CSP allows images
// from 'self' only, so it cannot be a data: URL.
export function safeSvg(text) {
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const src = doc.documentElement;
  if (src.namespaceURI !== SVG || src.localName !== "svg") throw new Error("the QR code is not an SVG image");
  const copy = (n) => {
    if (n.namespaceURI !== SVG || !SVG_ELEMENTS.has(n.localName)) return null;
    const e = document.createElementNS(SVG, n.localName);
    for (const a of n.attributes) if (!a.namespaceURI && SVG_ATTRIBUTES.has(a.name)) e.setAttribute(a.name, a.value);
    for (const c of n.children) {
      const k = copy(c);
      if (k) e.append(k);
    }
    return e;
  };
  const out = copy(src);
  out.setAttribute("id", "mfa-qr");
  return out;
}

function codeInput(name) {
  return el("input", { name, id: name, inputmode: "numeric", autocomplete: "one-time-code", required: true, maxlength: "24" });
}

export async function mfa(root) {
  root.append(el("h1", {}, "Two-factor authentication (TOTP)"));
  const s = await get("/api/v1/mfa");
  if (!s.mfa) {
    root.append(el("p", { class: "notice", id: "mfa-state" }, "TOTP step-up is not configured on this server (no mfa: section in hsmca-cad's configuration), so no action asks for a code."));
    return;
  }
  const out = el("div", { id: "mfa-result", "aria-live": "polite" });
  root.append(el("dl", { class: "kv", id: "mfa-state" },
    el("dt", {}, "Principal"), el("dd", {}, s.principal),
    el("dt", {}, "State"), el("dd", {}, el("span", { class: `badge ${s.state === "active" ? "ok" : s.state}`, id: "mfa-state-value" }, s.state)),
    el("dt", {}, "Enrolled"), el("dd", {}, fmtTime(s.enrolled_at) || "never"),
    el("dt", {}, "Confirmed"), el("dd", {}, fmtTime(s.confirmed_at) || "not yet"),
    el("dt", {}, "Recovery codes left"), el("dd", {}, String(s.recovery_codes_left)),
    el("dt", {}, "Your role's actions needing a code"), el("dd", {}, (s.step_up || []).join(", ") || "none"),
    el("dt", {}, "Throttling"), el("dd", {}, `${s.max_failures} wrong codes within ${s.failure_window_seconds} s, then refused for the rest of that time`)), out);

  if (s.state !== "active") {
    root.append(el("div", { class: "actions" }, el("button", {
      type: "button", class: "primary", id: "mfa-enrol", onclick: async () => {
        clearStatus();
        if (!(await confirmAction("Enrol a TOTP authenticator?", `A new secret will be made for ${s.principal} and shown once, as a QR code and as text. ${s.state === "pending" ? "It replaces the pending one. " : ""}It guards nothing until you confirm it with a first code.`, "Enrol"))) return;
        try {
          enrolled(out, await post("/api/v1/mfa/totp"), root);
        } catch (e) { showError(e); }
      },
    }, s.state === "pending" ? "Start again with a new secret…" : "Enrol…")));
    if (s.state === "pending") out.append(confirmForm(root));
    return;
  }
  const code = codeInput("mfa-disable-code");
  root.append(el("form", {
    class: "card", onsubmit: async (e) => {
      e.preventDefault();
      if (!(await confirmAction("Disable TOTP?", `The secret of ${s.principal} is erased and the unused recovery codes are spent; actions your role's policy names will be refused (step-up-not-enrolled) until you enrol again.`, "Disable"))) return;
      try {
        await post("/api/v1/mfa/totp/disable", { code: code.value.trim() });
        await mfa(clear(root));
        showOk("TOTP disabled.");
      } catch (err) { showError(err); }
    },
  }, el("h2", {}, "Disable"), field("A current code or a recovery code", code), el("button", { type: "submit", class: "danger" }, "Disable…")));
}

function confirmForm(root) {
  const code = codeInput("mfa-confirm-code");
  return el("form", {
    class: "card", id: "mfa-confirm", onsubmit: async (e) => {
      e.preventDefault();
      clearStatus();
      try {
        const r = await post("/api/v1/mfa/totp/confirm", { code: code.value.trim() });
        await mfa(clear(root));
        clear(document.getElementById("mfa-result")).append(el("div", { class: "card", id: "mfa-recovery" },
          el("h2", {}, "Your recovery codes: copy them now, they are not shown again"),
          el("p", {}, "Each works once in place of a code (to step up, or to disable TOTP after losing the authenticator)."),
          el("pre", {}, r.recovery_codes.join("\n"))));
        showOk("TOTP is active: actions your role's policy names will ask for a code.");
      } catch (err) { showError(err); }
    },
  }, el("h2", {}, "Confirm with the app's first code"), field("6-digit code", code),
  el("button", { type: "submit", class: "primary", id: "mfa-confirm-button" }, "Confirm"));
}

function enrolled(out, r, root) {
  clear(out).append(el("div", { class: "card", id: "mfa-enrolment" },
    el("h2", {}, "Scan this with your authenticator app"),
    safeSvg(r.qr_svg),
    el("p", {}, "Or type the secret in: ", el("code", { class: "mono", id: "mfa-secret" }, r.secret),
      ` (${r.algorithm}, ${r.digits} digits, every ${r.period} s). It is not shown again.`)),
  confirmForm(root));
  document.getElementById("mfa-confirm-code").focus();
}
