// Alerts: the inbox (filtered by state) and one alert with its evidence, its history and
// the officer's actions (acknowledge; resolve with a verdict and a note).

import { api, listOf, seg } from "./api.js";
import {
  emptyState,
  formatAge,
  formatCount,
  formatTime,
  h,
  routeLink,
  shown,
  table,
} from "./dom.js";

const STATES = ["open", "acknowledged", "resolved"];
const SEVERITIES = new Set(["low", "medium", "high", "critical"]);
const VERDICTS = [
  ["true_positive", "True positive", "a real leak or misuse"],
  ["benign", "Benign", "real, but allowed (e.g. an approved export)"],
  ["false_positive", "False positive", "raises this person's thresholds for this detector"],
];
const EVIDENCE_DEPTH = 3;

function severityBadge(severity) {
  const known = SEVERITIES.has(severity) ? severity : "unknown";
  return h("span", { className: `badge sev-${known}` }, shown(severity));
}

function stateBadge(state) {
  const known = STATES.includes(state) ? state : "unknown";
  return h("span", { className: `badge state-${known}` }, shown(state));
}

/** Rows of alerts as a table (used by the inbox and the person view). */
export function alertTable(alerts, now = Date.now()) {
  const rows = alerts.map((alert) =>
    h(
      "tr",
      { "data-alert-id": shown(alert.id) },
      h("td", {}, severityBadge(alert.severity)),
      h("td", {}, alert.subject ? routeLink(alert.subject, "people", alert.subject) : "—"),
      h("td", {}, shown(alert.detector)),
      h("td", { className: "explanation" }, routeLink(shown(alert.explanation), "alerts", alert.id)),
      h("td", { className: "n" }, formatCount(alert.count)),
      h("td", { title: formatTime(alert.created_at) }, formatAge(alert.created_at, now)),
    ),
  );
  return table(["Severity", "Person", "Detector", "What happened", "Records", "Age"], rows, {
    className: "alerts",
  });
}

function stateFilter(ctx, current) {
  const select = h(
    "select",
    {
      id: "state-filter",
      onchange: (event) => ctx.go(`#/alerts?state=${event.target.value}`),
    },
    [...STATES, ""].map((state) =>
      h("option", { value: state, selected: state === current }, state || "all"),
    ),
  );
  return h("label", { className: "filter" }, "Show ", select, " alerts");
}

/** The inbox: #/alerts?state=open (the default), acknowledged, resolved, or empty for all. */
export async function renderInbox(ctx, params) {
  const state = params.has("state") ? params.get("state") : "open";
  const alerts = listOf(await api("GET", "/api/alerts", { query: { state } }), "alerts");
  const empty = state ? `No ${state} alerts.` : "No alerts.";
  return h(
    "section",
    { className: "inbox" },
    h("h1", {}, "Alerts"),
    stateFilter(ctx, STATES.includes(state) ? state : ""),
    alerts.length ? alertTable(alerts) : emptyState(empty),
  );
}

function evidenceNode(value, depth = 0) {
  if (value === null || typeof value !== "object") return shown(value);
  if (depth >= EVIDENCE_DEPTH) return h("code", {}, JSON.stringify(value));
  if (Array.isArray(value)) {
    return h("ul", {}, value.map((item) => h("li", {}, evidenceNode(item, depth + 1))));
  }
  return h(
    "dl",
    { className: "evidence" },
    Object.entries(value).map(([key, item]) => [
      h("dt", {}, key),
      h("dd", {}, evidenceNode(item, depth + 1)),
    ]),
  );
}

function facts(alert) {
  const pairs = [
    ["State", stateBadge(alert.state)],
    ["Verdict", shown(alert.verdict)],
    ["Severity", severityBadge(alert.severity)],
    ["Person", alert.subject ? routeLink(alert.subject, "people", alert.subject) : "—"],
    ["Detector", shown(alert.detector)],
    ["Entity", shown(alert.entity)],
    ["Scope", shown(alert.scope)],
    ["Action taken", shown(alert.action)],
    ["Records", formatCount(alert.count)],
    ["Window", `${formatTime(alert.window_start)} – ${formatTime(alert.window_end)}`],
    ["Opened", formatTime(alert.created_at)],
    ["Updated", formatTime(alert.updated_at)],
  ];
  return h("dl", { className: "facts" }, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function transitionsTable(transitions) {
  if (!transitions.length) return emptyState("No changes recorded yet.");
  const rows = transitions.map((t) =>
    h(
      "tr",
      {},
      h("td", {}, formatTime(t.at)),
      h("td", {}, shown(t.who)),
      h("td", {}, shown(t.from)),
      h("td", {}, shown(t.to)),
      h("td", {}, shown(t.verdict)),
      h("td", {}, shown(t.note)),
    ),
  );
  return table(["When", "Who", "From", "To", "Verdict", "Note"], rows, {
    className: "transitions",
  });
}

async function act(ctx, button, path, body, done) {
  button.disabled = true;
  try {
    await api("POST", path, { body });
    ctx.notify(done, "ok");
    await ctx.refresh();
  } catch (error) {
    button.disabled = false;
    ctx.fail(error);
  }
}

function resolveForm(ctx, alert) {
  const note = h("textarea", { id: "resolve-note", name: "note", rows: 3, maxLength: 2000 });
  const choices = VERDICTS.map(([value, label, hint]) =>
    h(
      "label",
      { className: "choice" },
      h("input", { type: "radio", name: "verdict", value }),
      ` ${label} `,
      h("small", {}, hint),
    ),
  );
  const submit = h("button", { type: "submit" }, "Resolve");
  const form = h(
    "form",
    { className: "resolve" },
    h("fieldset", {}, h("legend", {}, "Verdict"), choices),
    h("label", { htmlFor: "resolve-note" }, "Note (what you found)"),
    note,
    submit,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const verdict = new FormData(form).get("verdict");
    if (!verdict) {
      ctx.notify("Choose a verdict before resolving the alert.", "error");
      return;
    }
    const body = { verdict, note: note.value.trim() };
    act(ctx, submit, `/api/alerts/${seg(alert.id)}/resolve`, body, "Alert resolved.");
  });
  return form;
}

function actions(ctx, alert) {
  if (alert.state === "resolved") return emptyState("This alert is resolved; nothing left to do.");
  const acknowledge = h("button", { type: "button", id: "acknowledge" }, "Acknowledge");
  acknowledge.disabled = alert.state !== "open";
  acknowledge.addEventListener("click", () =>
    act(ctx, acknowledge, `/api/alerts/${seg(alert.id)}/acknowledge`, {}, "Alert acknowledged."),
  );
  return h("div", { className: "actions" }, acknowledge, resolveForm(ctx, alert));
}

/** One alert: #/alerts/<id>. */
export async function renderAlert(ctx, id) {
  const alert = await api("GET", `/api/alerts/${seg(id)}`);
  return h(
    "section",
    { className: "alert-detail" },
    h("p", {}, h("a", { href: "#/alerts" }, "← Alerts")),
    h("h1", {}, `${shown(alert.detector)} alert for ${shown(alert.subject)}`),
    h("p", { className: "explanation" }, shown(alert.explanation)),
    facts(alert),
    h("h2", {}, "Evidence"),
    alert.evidence && Object.keys(alert.evidence).length
      ? evidenceNode(alert.evidence)
      : emptyState("No evidence recorded."),
    h("h2", {}, "History"),
    transitionsTable(listOf(alert.transitions, "transitions")),
    h("h2", {}, "Actions"),
    actions(ctx, alert),
  );
}
