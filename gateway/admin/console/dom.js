// Building the page from API data without ever parsing that data as HTML.
// Names, paths and explanations are chosen by the people the console watches: they go
// into text nodes and properties only, never into innerHTML (the CSP is the second line).

const SVG_NS = "http://www.w3.org/2000/svg";
const FORBIDDEN_PROPS = new Set(["innerHTML", "outerHTML", "srcdoc"]);

function setProps(el, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (FORBIDDEN_PROPS.has(key)) throw new Error(`refusing to set ${key}`);
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key in el && !key.includes("-")) {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** An HTML element: h("td", {className: "n"}, "text", otherNode). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  return append(el, children);
}

/** An SVG element; attributes are set with setAttribute (numbers and our own class names). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return append(el, children);
}

/** A link to a route of the console (parts are URI-encoded: a subject cannot break out). */
export function routeLink(text, ...parts) {
  return h("a", { href: "#/" + parts.map(encodeURIComponent).join("/") }, text);
}

/** A value for display: "—" when missing. */
export function shown(value) {
  return value === undefined || value === null || value === "" ? "—" : String(value);
}

export function formatCount(value) {
  const n = Number(value);
  return Number.isFinite(n) ? n.toLocaleString("en-US") : shown(value);
}

/** "2026-11-26 14:03 UTC" (or with seconds): one zone for every officer reading the trail. */
export function formatTime(value, { seconds = false } = {}) {
  const date = new Date(value);
  if (value === null || value === undefined || Number.isNaN(date.getTime())) return shown(value);
  return date.toISOString().slice(0, seconds ? 19 : 16).replace("T", " ") + " UTC";
}

/** "5 min ago", "3 h ago", "2 d ago". */
export function formatAge(value, now = Date.now()) {
  const then = new Date(value).getTime();
  if (Number.isNaN(then)) return "—";
  const minutes = Math.max(0, Math.round((now - then) / 60000));
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  return hours < 48 ? `${hours} h ago` : `${Math.round(hours / 24)} d ago`;
}

/** A table with a header row; `rows` are arrays of cells (nodes or text). */
export function table(headers, rows, props = {}) {
  return h(
    "table",
    props,
    h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
    h("tbody", {}, rows),
  );
}

export function emptyState(text) {
  return h("p", { className: "empty" }, text);
}
