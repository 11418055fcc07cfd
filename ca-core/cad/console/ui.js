// Small DOM helpers: elements without innerHTML (no markup from data), tables, the status
// line (aria-live), confirmation and step-up dialogs, downloads.

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

// The page's message area: errors stay until the next action and are announced.
export function showError(err) {
  const box = document.getElementById("status");
  clear(box);
  box.className = "status error";
  const code = err && err.code ? `${err.code}: ` : "";
  const status = err && err.status ? ` (HTTP ${err.status})` : "";
  box.append(el("strong", {}, "Error"), " ", `${code}${err && err.message ? err.message : err}${status}`);
  box.focus();
}

export function showOk(text) {
  const box = document.getElementById("status");
  clear(box);
  box.className = "status ok";
  box.textContent = text;
}

export function clearStatus() {
  const box = document.getElementById("status");
  clear(box);
  box.className = "status";
}

// A table of rows; columns: [{label, value: row => text|Node}].
export function table(columns, rows, caption) {
  if (!rows || rows.length === 0) return el("p", { class: "empty" }, "Nothing to show.");
  return el(
    "table",
    {},
    caption ? el("caption", {}, caption) : null,
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c.label)))),
    el(
      "tbody",
      {},
      rows.map((r) =>
        el(
          "tr",
          {},
          columns.map((c) => {
            const v = c.value(r);
            return el("td", {}, v === undefined || v === null ? "" : v);
          })
        )
      )
    )
  );
}

export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  return el(
    "div",
    { class: "field" },
    el("label", { for: id }, label),
    input,
    hint ? el("small", { class: "hint" }, hint) : null
  );
}

function openDialog(build) {
  return new Promise((resolve) => {
    const dlg = document.getElementById("dialog");
    clear(dlg);
    const prev = document.activeElement;
    const done = (v) => {
      dlg.close();
      if (prev && prev.focus) prev.focus();
      resolve(v);
    };
    dlg.append(build(done));
    dlg.addEventListener("cancel", (e) => {
      e.preventDefault();
      done(null);
    }, { once: true });
    dlg.showModal();
    const first = dlg.querySelector("input, textarea, select, button.primary, button");
    if (first) first.focus();
  });
}

// Ask before acting: what will happen, in words; resolves true or false.
export function confirmAction(title, text, verb) {
  return openDialog((done) =>
    el(
      "form",
      { method: "dialog", onsubmit: (e) => { e.preventDefault(); done(true); } },
      el("h2", {}, title),
      el("p", {}, text),
      el(
        "div",
        { class: "actions" },
        el("button", { type: "button", onclick: () => done(false) }, "Cancel"),
        el("button", { type: "submit", class: "primary danger" }, verb)
      )
    )
  ).then((v) => v === true);
}

// Ask before acting, with a required reason typed in: resolves the reason, or null.
export function confirmWithReason(title, text, verb) {
  return openDialog((done) => {
    const input = el("input", { id: "dialog-reason", name: "reason", required: true, maxlength: "512" });
    return el(
      "form",
      { onsubmit: (e) => { e.preventDefault(); if (input.value.trim()) done(input.value.trim()); } },
      el("h2", {}, title),
      el("p", {}, text),
      field("Reason (recorded in the audit log)", input),
      el(
        "div",
        { class: "actions" },
        el("button", { type: "button", onclick: () => done(null) }, "Cancel"),
        el("button", { type: "submit", class: "primary danger" }, verb)
      )
    );
  }).then((v) => (typeof v === "string" ? v : null));
}

// The TOTP step-up dialog: a 6-digit code, or null when cancelled.
export function askStepUpCode(detail) {
  return openDialog((done) => {
    const input = el("input", {
      id: "totp-code", name: "totp", inputmode: "numeric", autocomplete: "one-time-code",
      pattern: "[0-9]{6}", maxlength: "6", required: true,
    });
    return el(
      "form",
      { onsubmit: (e) => { e.preventDefault(); if (input.checkValidity()) done(input.value); } },
      el("h2", {}, "Second factor needed"),
      el("p", {}, "This action needs a fresh code from your authenticator app. ", detail || ""),
      field("6-digit code", input),
      el(
        "div",
        { class: "actions" },
        el("button", { type: "button", onclick: () => done(null) }, "Cancel"),
        el("button", { type: "submit", class: "primary" }, "Continue")
      )
    );
  });
}

export function download(name, data, type) {
  const blob = data instanceof Blob ? data : new Blob([data], { type });
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

export function fmtTime(t) {
  return t ? t.replace("T", " ").replace("Z", " UTC") : "";
}

// A button that runs fn, showing any error and disabling itself meanwhile.
export function action(label, fn, attrs = {}) {
  const b = el("button", { type: "button", ...attrs }, label);
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await fn();
    } catch (e) {
      showError(e);
    } finally {
      b.disabled = false;
    }
  });
  return b;
}
