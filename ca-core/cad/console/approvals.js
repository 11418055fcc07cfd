// The Approvals page (docs/approvals.md): the requests that wait for more than one person,
// each with its votes, and approve or reject (with a reason) for the roles the request's
// policy lists. hsmca-cad and PostgreSQL enforce every rule (no self-approval, one vote per
// person, the approver roles); the page only hides buttons that would be refused.
import { get, api, query } from "./api.js";
import { el, clear, table, field, confirmAction, fmtTime, action, showOk, showError, clearStatus } from "./ui.js";
import { me } from "./app.js";

const badge = (s) => el("span", { class: `badge ${s}` }, String(s));
const STATES = ["", "pending", "approved", "executed", "failed", "rejected", "expired"];

function summary(a) {
  const t = a.kind === "authority.retire" ? `retire authority ${a.target}`
    : a.kind === "certificate.revoke-ca" ? `revoke CA certificate ${a.target}`
      : a.kind === "ceremony.run" ? `run the ceremony file with SHA-256 ${a.target}`
        : a.kind === "backup.restore" ? `restore the archive with SHA-256 ${a.target}` : `${a.kind} ${a.target}`;
  return `${a.requester} (${a.requester_role}) asks to ${t}`;
}

// What approving does, in words, before it is done.
function effect(a) {
  const left = a.required_approvals - 1 - a.approvals; // approvers still needed, yours included
  if (left > 1) return `Your approval is counted; ${left - 1} more will still be needed.`;
  return a.kind === "authority.retire" || a.kind === "certificate.revoke-ca"
    ? "Yours is the last approval needed: hsmca-cad runs the operation now, once, and it cannot be undone."
    : "Yours is the last approval needed: the command line may then run it, once.";
}

async function detail(box, id, reload) {
  const a = (await get(`/api/v1/approvals/${id}`)).approval;
  const mayVote = a.state === "pending" && (a.approver_roles || []).includes(me.role);
  const reason = el("input", { name: "vote-reason", id: "vote-reason", maxlength: "512" });
  const vote = async (how) => {
    const r = reason.value.trim();
    if (how === "reject" && !r) return showError("a rejection needs a reason");
    const ok = await confirmAction(how === "approve" ? `Approve request ${a.id}?` : `Reject request ${a.id}?`,
      how === "approve" ? `${summary(a)}. ${effect(a)}` : `${summary(a)}. One rejection ends the request for good; nothing runs.`,
      how === "approve" ? "Approve" : "Reject");
    if (!ok) return;
    const after = (await api("POST", `/api/v1/approvals/${a.id}/${how}`, r ? { reason: r } : undefined)).approval;
    await reload();
    await detail(box, a.id, reload);
    showOk(`Request ${a.id} is now ${after.state}${after.state === "executed" ? `: ${JSON.stringify(after.result)}` : after.state === "failed" ? `: ${JSON.stringify(after.result)}` : ""}.`);
  };
  clear(box).append(el("div", { class: "card", id: "approval-detail" },
    el("h2", {}, `Request ${a.id}: `, badge(a.state)),
    el("p", {}, summary(a), "."),
    el("dl", { class: "kv" },
      el("dt", {}, "Kind"), el("dd", {}, a.kind), el("dt", {}, "Target"), el("dd", { class: "mono" }, a.target),
      el("dt", {}, "Parameters"), el("dd", {}, JSON.stringify(a.parameters || {})),
      el("dt", {}, "Needs"), el("dd", {}, `${a.required_approvals} people: the requester and ${a.required_approvals - 1} approver(s) of role ${(a.approver_roles || []).join(" or ")}`),
      el("dt", {}, "Approvals"), el("dd", {}, `${a.approvals} of ${a.required_approvals - 1} needed`), el("dt", {}, "Made"), el("dd", {}, fmtTime(a.created_at)),
      el("dt", {}, "Expires"), el("dd", {}, fmtTime(a.expires_at)), el("dt", {}, "Executed"), el("dd", {}, fmtTime(a.executed_at)),
      el("dt", {}, "Result"), el("dd", {}, a.result ? JSON.stringify(a.result) : "")),
    table([
      { label: "Approver", value: (v) => v.approver }, { label: "Role", value: (v) => v.role },
      { label: "Vote", value: (v) => badge(v.vote === "approve" ? "ok" : "rejected") }, { label: "Reason", value: (v) => v.reason },
      { label: "At", value: (v) => fmtTime(v.at) },
    ], a.votes || [], "Votes"),
    mayVote || (a.state === "pending" && a.requester === me.name) ? el("div", {},
      field(a.requester === me.name ? "Reason (to withdraw your own request)" : "Reason (required to reject)", reason),
      el("div", { class: "actions" },
        a.requester !== me.name ? action("Approve…", () => vote("approve"), { class: "primary", id: "approve-button" }) : null,
        action(a.requester === me.name ? "Withdraw…" : "Reject…", () => vote("reject"), { class: "danger", id: "reject-button" })),
      a.requester === me.name ? el("p", { class: "hint" }, "You asked for this: someone else must approve it.") : null)
      : el("p", { class: "hint" }, a.state === "pending" ? `Only ${(a.approver_roles || []).join(" or ")} may vote on this request.` : "This request is decided.")));
}

export async function approvals(root, [open]) {
  root.append(el("h1", {}, "Approvals"));
  const state = el("select", { name: "state" }, STATES.map((s) => el("option", { value: s }, s || "any")));
  const list = el("div", { id: "approval-list" });
  const box = el("div", { id: "approval-box", "aria-live": "polite" });
  async function load() {
    const d = await get(`/api/v1/approvals${query({ state: state.value })}`);
    clear(list).append(table([
      { label: "Id", value: (a) => a.id }, { label: "Kind", value: (a) => a.kind },
      { label: "Target", value: (a) => el("span", { class: "mono" }, a.target) },
      { label: "Requester", value: (a) => `${a.requester} (${a.requester_role})` },
      { label: "Approvals", value: (a) => `${a.approvals} of ${a.required_approvals - 1}` },
      { label: "State", value: (a) => badge(a.state) }, { label: "Expires", value: (a) => fmtTime(a.expires_at) },
      { label: "", value: (a) => action("Show", () => detail(box, a.id, load), { "data-approval": a.id }) },
    ], d.approvals, "Requests, pending first"));
  }
  root.append(el("form", { class: "card", onsubmit: (e) => { e.preventDefault(); clearStatus(); load().catch(showError); } },
    el("div", { class: "filters" }, field("State", state), el("button", { type: "submit" }, "Show"))), list, box);
  await load();
  if (open) await detail(box, open, load);
}
