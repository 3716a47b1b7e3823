// The audit trail search: filters in the address (#/audit?subject=…) so a search can be
// shared with another officer; results newest first, "Load more" follows next_cursor.

import { api, listOf } from "./api.js";
import { emptyState, formatCount, formatTime, h, routeLink, shown, table } from "./dom.js";

const PAGE_SIZE = 50;
const TEXT_FILTERS = [
  ["subject", "Person"],
  ["upstream", "Upstream"],
  ["entity", "Entity"],
];
const TIME_FILTERS = [
  ["since", "Since (UTC)"],
  ["until", "Until (UTC)"],
];
const FILTERS = ["subject", "since", "until", "upstream", "entity", "decision", "min_records"];

/** "2026-11-26T09:00" from a datetime-local input, read as UTC. */
const asUtc = (value) => (value && value.length === 16 ? `${value}:00Z` : value);
const fromUtc = (value) => (value ? value.replace(/:00Z$/, "").slice(0, 16) : "");

function field(name, label, input) {
  input.id = `audit-${name}`;
  input.name = name;
  return h("label", { htmlFor: input.id }, label, input);
}

function searchForm(ctx, params) {
  const inputs = [
    ...TEXT_FILTERS.map(([name, label]) =>
      field(name, label, h("input", { type: "text", value: params.get(name) ?? "", maxLength: 500 })),
    ),
    ...TIME_FILTERS.map(([name, label]) =>
      field(name, label, h("input", { type: "datetime-local", value: fromUtc(params.get(name)) })),
    ),
    field(
      "decision",
      "Decision",
      h(
        "select",
        {},
        ["", "allow", "deny"].map((v) =>
          h("option", { value: v, selected: params.get("decision") === v }, v || "any"),
        ),
      ),
    ),
    field("min_records", "At least this many records", h("input", { type: "number", min: 0, value: params.get("min_records") ?? "" })),
  ];
  const form = h("form", { className: "search" }, inputs, h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const query = new URLSearchParams();
    for (const name of FILTERS) {
      const raw = String(data.get(name) ?? "").trim();
      const value = name === "since" || name === "until" ? asUtc(raw) : raw;
      if (value) query.set(name, value);
    }
    ctx.go(`#/audit?${query}`);
  });
  return form;
}

function eventRow(event) {
  return h(
    "tr",
    {},
    h("td", {}, formatTime(event.time, { seconds: true })),
    h("td", {}, event.subject ? routeLink(event.subject, "people", event.subject) : "—"),
    h("td", {}, shown(event.method)),
    h("td", { className: "path" }, shown(event.path)),
    h("td", {}, shown(event.upstream)),
    h("td", {}, shown(event.entity)),
    h("td", { className: `decision-${event.decision === "deny" ? "deny" : "allow"}` }, shown(event.decision)),
    h("td", {}, shown(event.reason_id)),
    h("td", { className: "n" }, shown(event.status)),
    h("td", { className: "n" }, formatCount(event.records)),
  );
}

/** The search: #/audit?subject=…&since=…; the filters go to the API unchanged. */
export async function renderAudit(ctx, params) {
  const query = { limit: PAGE_SIZE };
  for (const name of FILTERS) if (params.get(name)) query[name] = params.get(name);
  const page = await api("GET", "/api/audit/events", { query });
  const events = listOf(page, "events");
  const results = table(
    ["Time", "Person", "Method", "Path", "Upstream", "Entity", "Decision", "Reason", "Status", "Records"],
    events.map(eventRow),
    { className: "events" },
  );
  const body = results.tBodies[0];
  const more = h("button", { type: "button", hidden: !page?.next_cursor }, "Load more");
  let cursor = page?.next_cursor;
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const next = await api("GET", "/api/audit/events", { query: { ...query, cursor } });
      body.append(...listOf(next, "events").map(eventRow));
      cursor = next?.next_cursor;
      more.hidden = !cursor;
    } catch (error) {
      ctx.fail(error);
    }
    more.disabled = false;
  });
  return h(
    "section",
    { className: "audit" },
    h("h1", {}, "Audit trail"),
    searchForm(ctx, params),
    events.length ? [results, more] : emptyState("No events match these filters."),
  );
}
