// People: everyone Wardgate knows, and one person with their status, roles, open alerts,
// exports per hour, and Suspend / Reinstate behind an explicit confirmation.

import { alertTable } from "./alerts.js";
import { api, listOf, seg } from "./api.js";
import { exportsChart } from "./chart.js";
import { emptyState, formatTime, h, routeLink, shown, table } from "./dom.js";

const EXPORT_DAYS = 30;
const STATUSES = new Set(["active", "disabled", "left", "suspended"]);

function statusBadge(status) {
  const known = STATUSES.has(status) ? status : "unknown";
  return h("span", { className: `badge status-${known}` }, shown(status));
}

function roleText(role) {
  if (role && typeof role === "object") {
    const domain = role.domain ?? "*";
    return domain === "*" ? shown(role.role) : `${shown(role.role)} (${domain})`;
  }
  return shown(role);
}

function departingText(person) {
  if (!person.departing) return "No";
  return person.last_day ? `Yes — last day ${person.last_day}` : "Yes";
}

/** Everyone: #/people. */
export async function renderPeople() {
  const people = listOf(await api("GET", "/api/people"), "people");
  const rows = people.map((p) =>
    h(
      "tr",
      {},
      h("td", {}, routeLink(p.subject, "people", p.subject)),
      h("td", {}, shown(p.display_name)),
      h("td", {}, shown(p.department)),
      h("td", {}, statusBadge(p.status)),
      h("td", {}, departingText(p)),
    ),
  );
  return h(
    "section",
    { className: "people" },
    h("h1", {}, "People"),
    rows.length
      ? table(["Person", "Name", "Department", "Status", "Departing"], rows)
      : emptyState("Nobody is known yet: run a directory sync first."),
  );
}

/** Exports as {hour: ms, entity, records}, from {"hours": [{hour, entity, records}]}. */
function exportPoints(payload) {
  return listOf(payload, "hours")
    .map((item) => ({
      hour: new Date(item.hour).getTime(),
      entity: shown(item.entity),
      records: Number(item.records),
    }))
    .filter((p) => Number.isFinite(p.hour) && Number.isFinite(p.records));
}

function facts(person) {
  const roles = listOf(person.roles, "roles");
  const pairs = [
    ["Subject", person.subject],
    ["Status", statusBadge(person.status)],
    ["Roles", roles.length ? h("ul", { className: "roles" }, roles.map((r) => h("li", {}, roleText(r)))) : "none"],
    ["Departing", departingText(person)],
    ["Department", shown(person.department)],
    ["Source", shown(person.source)],
    ["Last seen in directory", formatTime(person.last_seen_in_directory)],
  ];
  return h("dl", { className: "facts" }, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

/** A button that first asks, in the page, before it calls the API. */
function confirmedAction(ctx, { label, question, confirmLabel, path, done }) {
  const reason = h("input", { type: "text", id: "action-reason", maxLength: 2000 });
  const confirm = h("button", { type: "button", className: "danger" }, confirmLabel);
  const cancel = h("button", { type: "button" }, "Cancel");
  const panel = h(
    "div",
    { className: "confirm", role: "dialog", "aria-label": question, hidden: true },
    h("p", {}, question),
    h("label", { htmlFor: "action-reason" }, "Reason (recorded in the audit trail)"),
    reason,
    h("div", {}, confirm, " ", cancel),
  );
  const start = h("button", { type: "button" }, label);
  start.addEventListener("click", () => {
    panel.hidden = false;
    start.disabled = true;
    reason.focus();
  });
  cancel.addEventListener("click", () => {
    panel.hidden = true;
    start.disabled = false;
  });
  confirm.addEventListener("click", async () => {
    confirm.disabled = true;
    const text = reason.value.trim();
    try {
      await api("POST", path, { body: text ? { reason: text } : {} });
      ctx.notify(done, "ok");
      await ctx.refresh();
    } catch (error) {
      confirm.disabled = false;
      ctx.fail(error);
    }
  });
  return h("div", { className: "actions" }, start, panel);
}

function personActions(ctx, person) {
  const base = `/api/people/${seg(person.subject)}`;
  const who = person.display_name || person.subject;
  if (person.status === "suspended") {
    return confirmedAction(ctx, {
      label: "Reinstate…",
      question: `Reinstate ${who}? Their access returns as their roles allow.`,
      confirmLabel: "Yes, reinstate",
      path: `${base}/reinstate`,
      done: `${who} is reinstated.`,
    });
  }
  if (person.status !== "active") {
    return emptyState(`${who} is ${shown(person.status)}; the directory decides their access.`);
  }
  return confirmedAction(ctx, {
    label: "Suspend…",
    question: `Suspend ${who}? Every token and API key of theirs is refused at once, until an officer reinstates them.`,
    confirmLabel: "Yes, suspend",
    path: `${base}/suspend`,
    done: `${who} is suspended.`,
  });
}

/** One person: #/people/<subject>. */
export async function renderPerson(ctx, subject) {
  const [person, exports] = await Promise.all([
    api("GET", `/api/people/${seg(subject)}`),
    api("GET", `/api/people/${seg(subject)}/exports`, { query: { days: EXPORT_DAYS } }),
  ]);
  const alerts = listOf(person.alerts, "alerts");
  return h(
    "section",
    { className: "person" },
    h("p", {}, h("a", { href: "#/people" }, "← People")),
    h("h1", {}, shown(person.display_name || person.subject)),
    facts(person),
    personActions(ctx, person),
    h("h2", {}, `Records exported per hour, last ${EXPORT_DAYS} days`),
    exportsChart(exportPoints(exports), EXPORT_DAYS),
    h("h2", {}, "Open alerts"),
    alerts.length ? alertTable(alerts) : emptyState("No open alerts for this person."),
    h("p", {}, h("a", { href: `#/audit?subject=${seg(person.subject)}` }, "Their audit trail →")),
  );
}
