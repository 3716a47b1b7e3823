// Records exported per hour, stacked by entity, as inline SVG (no chart library).
// Entity names come from the API: they go into <title> and legend text nodes only.

import { emptyState, formatCount, formatTime, h, svg } from "./dom.js";

const HOUR_MS = 3600 * 1000;
const WIDTH = 760;
const HEIGHT = 200;
const PLOT = { left: 48, right: 752, top: 12, bottom: 172 };
const MAX_SERIES = 6; // more entities than colours: the smallest are drawn as "other"

/** Hour buckets → {hourStart(ms), byEntity: Map, total}. Points outside the range are dropped. */
function bucketize(points, start, hours) {
  const buckets = new Map();
  for (const { hour, entity, records } of points) {
    const index = Math.floor((hour - start) / HOUR_MS);
    if (index < 0 || index >= hours || !(records > 0)) continue;
    const bucket = buckets.get(index) ?? { hourStart: start + index * HOUR_MS, byEntity: new Map(), total: 0 };
    bucket.byEntity.set(entity, (bucket.byEntity.get(entity) ?? 0) + records);
    bucket.total += records;
    buckets.set(index, bucket);
  }
  return buckets;
}

/** Entities by total, largest first; past MAX_SERIES the rest fold into "other". */
function seriesOrder(buckets) {
  const totals = new Map();
  for (const bucket of buckets.values()) {
    for (const [entity, n] of bucket.byEntity) totals.set(entity, (totals.get(entity) ?? 0) + n);
  }
  const names = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a) || (a < b ? -1 : 1));
  if (names.length <= MAX_SERIES) return { names, fold: (e) => e };
  const kept = new Set(names.slice(0, MAX_SERIES - 1));
  return { names: [...kept, "other"], fold: (e) => (kept.has(e) ? e : "other") };
}

const MIN_BAR = 2.5; // one busy hour in 30 days must still be visible

function bar(bucket, index, barWidth, scale, order) {
  const stacked = new Map();
  for (const [entity, n] of bucket.byEntity) {
    const name = order.fold(entity);
    stacked.set(name, (stacked.get(name) ?? 0) + n);
  }
  const lines = [...stacked].map(([name, n]) => `${name}: ${formatCount(n)}`);
  const title = `${formatTime(bucket.hourStart)} — ${formatCount(bucket.total)} records (${lines.join(", ")})`;
  const width = Math.max(barWidth * 0.9, MIN_BAR);
  const x = Math.min(PLOT.left + index * barWidth, PLOT.right - width);
  let y = PLOT.bottom;
  const rects = order.names
    .filter((name) => stacked.has(name))
    .map((name) => {
      const height = stacked.get(name) * scale;
      y -= height;
      return svg("rect", {
        class: `series series-${order.names.indexOf(name)}`,
        x: x.toFixed(2),
        y: y.toFixed(2),
        width: width.toFixed(2),
        height: height.toFixed(2),
      });
    });
  return svg("g", { class: "bar" }, svg("title", {}, title), rects);
}

function axes(max, start, end) {
  return [
    svg("line", { class: "axis", x1: PLOT.left, y1: PLOT.bottom, x2: PLOT.right, y2: PLOT.bottom }),
    svg("line", { class: "axis", x1: PLOT.left, y1: PLOT.top, x2: PLOT.left, y2: PLOT.bottom }),
    svg("text", { class: "label", x: PLOT.left - 6, y: PLOT.top + 10, "text-anchor": "end" }, formatCount(max)),
    svg("text", { class: "label", x: PLOT.left - 6, y: PLOT.bottom, "text-anchor": "end" }, "0"),
    svg("text", { class: "label", x: PLOT.left, y: HEIGHT - 8 }, formatTime(start)),
    svg("text", { class: "label", x: PLOT.right, y: HEIGHT - 8, "text-anchor": "end" }, formatTime(end)),
  ];
}

function legend(names) {
  return h(
    "ul",
    { className: "legend" },
    names.map((name, i) => h("li", {}, h("span", { className: `swatch series-${i}` }), name)),
  );
}

/**
 * The chart for `points` ({hour: ms, entity, records}) over the `days` before `now`,
 * or an empty state when nothing was exported.
 */
export function exportsChart(points, days, now = Date.now()) {
  const hours = days * 24;
  const end = Math.ceil(now / HOUR_MS) * HOUR_MS;
  const start = end - hours * HOUR_MS;
  const buckets = bucketize(points, start, hours);
  if (!buckets.size) return emptyState(`No records exported in the last ${days} days.`);
  const order = seriesOrder(buckets);
  const all = [...buckets.values()];
  const max = Math.max(...all.map((b) => b.total));
  const busiest = all.find((b) => b.total === max);
  const total = all.reduce((sum, b) => sum + b.total, 0);
  const barWidth = (PLOT.right - PLOT.left) / hours;
  const scale = (PLOT.bottom - PLOT.top) / max;
  const summary =
    `${formatCount(total)} records in ${days} days; busiest hour ` +
    `${formatTime(busiest.hourStart)} with ${formatCount(max)} records.`;
  const chart = svg(
    "svg",
    { class: "chart", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": summary },
    axes(max, start, end),
    [...buckets].map(([index, bucket]) => bar(bucket, index, barWidth, scale, order)),
  );
  return h("figure", { className: "exports" }, chart, legend(order.names), h("figcaption", {}, summary));
}
