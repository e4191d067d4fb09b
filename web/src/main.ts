// NetGuardian dashboard: live counters and charts from the WebSocket feed,
// history (protocol mix, top talkers, alerts, a source's series) from the
// REST API, filtered by time range and source.
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { getJSON, HttpError, openSocket } from "./api";
import { LiveChart, SourceChart } from "./charts";
import { byId, dec, el, int, setCounter, si, time } from "./format";
import type { Active, Alert, AlertMessage, AlertPage, Features, ProtocolCount, Snapshot, SourceTotal } from "./types";

const MAX_ALERT_ROWS = 500;
const REFRESH_MS = 10_000;

interface Filters {
  from?: string; // ISO
  to?: string;
  src?: string;
}

let filters: Filters = {};
let rangeSeconds: number | null = null; // a "last N" preset, re-evaluated at each refresh
let nextCursor: string | undefined;
const shownAlerts = new Map<string, Alert>();
let selected: string | null = null;

let ppsChart: LiveChart;
let bpsChart: LiveChart;
let sourceChart: SourceChart | null = null;

// ---- filters -----------------------------------------------------------------

function localToISO(v: string): string | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  return isNaN(d.getTime()) ? undefined : d.toISOString();
}

function currentFilters(): Filters {
  const f: Filters = { ...filters };
  if (rangeSeconds !== null) {
    f.from = new Date(Date.now() - rangeSeconds * 1000).toISOString();
    f.to = undefined;
  }
  return f;
}

function readFilterForm(): void {
  const range = byId<HTMLSelectElement>("range").value;
  const src = byId<HTMLInputElement>("src").value.trim();
  rangeSeconds = null;
  filters = { src: src || undefined };
  if (range === "custom") {
    filters.from = localToISO(byId<HTMLInputElement>("from").value);
    filters.to = localToISO(byId<HTMLInputElement>("to").value);
  } else if (range !== "all") {
    rangeSeconds = Number(range);
  }
}

function showCustom(): void {
  const custom = byId<HTMLSelectElement>("range").value === "custom";
  document.querySelectorAll<HTMLElement>(".custom").forEach((e) => (e.hidden = !custom));
}

function showError(err: unknown): void {
  const box = byId("filter-error");
  if (err instanceof HttpError) {
    box.textContent = err.parameter ? `${err.parameter}: ${err.message}` : err.message;
  } else {
    box.textContent = err instanceof Error ? err.message : String(err);
  }
}

// alertMatches applies the filters to a live alert (the range is on the window end).
function alertMatches(a: Alert): boolean {
  const f = currentFilters();
  if (f.src && a.src !== f.src) return false;
  const end = Date.parse(a.end);
  if (f.from && end < Date.parse(f.from)) return false;
  if (f.to && end >= Date.parse(f.to)) return false;
  return true;
}

// ---- history (REST) ------------------------------------------------------------

async function loadProtocols(): Promise<void> {
  const f = currentFilters();
  const r = await getJSON<{ protocols: ProtocolCount[] }>("/api/protocols", { from: f.from, to: f.to });
  const total = r.protocols.reduce((s, p) => s + p.bytes, 0);
  const body = byId("protocols").querySelector("tbody") as HTMLElement;
  body.replaceChildren(
    ...r.protocols.map((p) => {
      const share = total > 0 ? p.bytes / total : 0;
      const meter = el("meter", { min: "0", max: "1", value: String(share), title: `${(share * 100).toFixed(1)} %` });
      return el("tr", { "data-protocol": p.protocol }, el("td", {}, p.protocol.toUpperCase()), el("td", { class: "num" }, int(p.packets)),
        el("td", { class: "num" }, si(p.bytes, "B")), el("td", {}, meter, ` ${(share * 100).toFixed(1)} %`));
    }),
  );
}

async function loadTopSources(): Promise<void> {
  const f = currentFilters();
  const by = byId<HTMLSelectElement>("top-by").value;
  const r = await getJSON<{ sources: SourceTotal[] }>("/api/top-sources", { by, from: f.from, to: f.to, limit: "10" });
  const body = byId("top-sources").querySelector("tbody") as HTMLElement;
  body.replaceChildren(
    ...r.sources.map((s) => {
      const link = el("a", { href: "#", "data-src": s.src, title: "filter on this source" }, s.src);
      link.addEventListener("click", (ev) => {
        ev.preventDefault();
        byId<HTMLInputElement>("src").value = s.src;
        applyFilters();
      });
      return el("tr", { "data-src": s.src }, el("td", {}, link), el("td", { class: "num" }, int(s.packets)), el("td", { class: "num" }, si(s.bytes, "B")));
    }),
  );
}

async function loadSource(): Promise<void> {
  const f = currentFilters();
  const panel = byId("source-panel");
  if (!f.src) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  byId("source-name").textContent = f.src;
  if (!sourceChart) sourceChart = new SourceChart(byId("chart-source"));
  const r = await getJSON<Features>("/api/features", { window: "5s", src: f.src, from: f.from, to: f.to, limit: "720" });
  sourceChart.set(
    r.rows.map((row) => Date.parse(row.start) / 1000),
    r.rows.map((row) => row.features["packet_rate_pps"] ?? null),
    r.rows.map((row) => row.features["bandwidth_bps"] ?? null),
  );
}

function severityClass(s: string): string {
  return `sev sev-${s}`;
}

function alertRow(a: Alert, fresh: boolean): HTMLTableRowElement {
  const tr = el(
    "tr",
    { "data-id": a.id, "data-src": a.src, "data-label": a.label, class: fresh ? "fresh" : "" },
    el("td", {}, time(a.end)),
    el("td", {}, a.src),
    el("td", {}, a.label),
    el("td", { class: "num" }, dec(a.score)),
    el("td", {}, el("span", { class: severityClass(a.severity) }, a.severity)),
    el("td", {}, a.detector),
    el("td", {}, a.window),
  );
  if (a.id === selected) tr.classList.add("selected");
  tr.addEventListener("click", () => showDetail(a.id));
  return tr;
}

async function loadAlerts(append: boolean): Promise<void> {
  const f = currentFilters();
  const page = await getJSON<AlertPage>("/api/alerts", { src: f.src, from: f.from, to: f.to, limit: "100", cursor: append ? nextCursor : undefined });
  const body = byId("alerts").querySelector("tbody") as HTMLElement;
  if (!append) {
    shownAlerts.clear();
    body.replaceChildren();
  }
  for (const a of page.alerts) {
    if (shownAlerts.has(a.id)) continue;
    shownAlerts.set(a.id, a);
    body.append(alertRow(a, false));
  }
  nextCursor = page.next_cursor;
  byId("more").hidden = !nextCursor;
}

function addLiveAlert(a: Alert): void {
  if (shownAlerts.has(a.id) || !alertMatches(a)) return;
  shownAlerts.set(a.id, a);
  const body = byId("alerts").querySelector("tbody") as HTMLElement;
  body.prepend(alertRow(a, true));
  while (body.children.length > MAX_ALERT_ROWS) {
    const last = body.lastElementChild as HTMLElement;
    shownAlerts.delete(last.dataset.id ?? "");
    last.remove();
  }
}

function showDetail(id: string): void {
  const a = shownAlerts.get(id);
  if (!a) return;
  selected = id;
  document.querySelectorAll("#alerts tr.selected").forEach((r) => r.classList.remove("selected"));
  document.querySelector(`#alerts tr[data-id="${CSS.escape(id)}"]`)?.classList.add("selected");
  byId("detail-empty").hidden = true;
  byId("detail-body").hidden = false;
  byId("d-label").textContent = a.label;
  byId("d-score").textContent = dec(a.score);
  byId("d-runner").textContent = a.runner_up ? `${a.runner_up} (${dec(a.runner_up_score)})` : "—";
  byId("d-severity").replaceChildren(el("span", { class: severityClass(a.severity) }, a.severity));
  byId("d-src").textContent = a.src;
  byId("d-window").textContent = `${a.window}: ${time(a.start)} → ${time(a.end)}`;
  byId("d-detector").textContent = a.sensor ? `${a.detector} on ${a.sensor}` : a.detector;
  (byId("d-features").querySelector("tbody") as HTMLElement).replaceChildren(
    ...a.top_features.map((f) => el("tr", {}, el("td", {}, f.name), el("td", { class: "num" }, dec(f.value)), el("td", { class: "num" }, dec(f.weight)))),
  );
  const pre = byId("d-details");
  pre.hidden = a.details === undefined;
  pre.textContent = a.details === undefined ? "" : JSON.stringify(a.details, null, 2);
}

async function refreshHistory(): Promise<void> {
  byId("filter-error").textContent = "";
  const results = await Promise.allSettled([loadProtocols(), loadTopSources(), loadSource()]);
  for (const r of results) if (r.status === "rejected") showError(r.reason);
}

function applyFilters(): void {
  readFilterForm();
  byId("filter-error").textContent = "";
  Promise.allSettled([refreshHistory(), loadAlerts(false)]).then((rs) => {
    for (const r of rs) if (r.status === "rejected") showError(r.reason);
  });
}

// ---- live (WebSocket) -----------------------------------------------------------

function renderActive(active: Active): void {
  setCounter("active-count", active.total, int(active.total));
  byId("active").replaceChildren(
    ...active.alerts.slice(0, 30).map((a) => {
      const chip = el("li", { class: severityClass(a.severity), "data-src": a.src, title: `${a.detector}, window ending ${time(a.end)}` },
        el("strong", {}, a.src), ` ${a.label} `, el("span", { class: "muted" }, dec(a.score)));
      return chip;
    }),
  );
}

function renderSnapshot(s: Snapshot): void {
  const badge = byId("status");
  badge.dataset.status = s.status;
  badge.textContent = s.status;
  byId("reasons").textContent = s.reasons.join("; ");
  setCounter("packets", s.packets, int(s.packets));
  setCounter("pps", s.packets_per_second, int(s.packets_per_second));
  setCounter("bps", s.bits_per_second, si(s.bits_per_second, "b/s"));
  setCounter("alerts-total", s.alerts, int(s.alerts));
  const w = s.windows ?? {};
  byId("windows").textContent = `${int(w["5s"] ?? 0)} / ${int(w["30s"] ?? 0)} / ${int(w["180s"] ?? 0)}`;
  const t = Date.parse(s.time) / 1000;
  ppsChart.push(t, s.packets_per_second);
  bpsChart.push(t, s.bits_per_second);
  renderActive(s.active);

  const queueOf = (kind: string, name: string): number | undefined =>
    kind === "detector" ? s.queues.detectors[name] : kind === "sink" ? s.queues.sinks[name] : undefined;
  (byId("plugins").querySelector("tbody") as HTMLElement).replaceChildren(
    ...s.plugins.map((p) => {
      const q = queueOf(p.kind, p.name);
      return el("tr", { "data-plugin": p.name },
        el("td", {}, p.name), el("td", {}, p.kind), el("td", {}, `${p.plugin} ${p.version}`),
        el("td", {}, el("span", { class: `state state-${p.state}` }, p.state)),
        el("td", { class: "num" }, int(p.restarts)), el("td", { class: "num" }, int(p.failures)),
        el("td", { class: "num" }, q === undefined ? "—" : int(q)));
    }),
  );
  byId("q-packets").textContent = int(s.queues.packets);
  byId("drop-kernel").textContent = int(s.drops.kernel);
  byId("drop-capture").textContent = int(s.drops.capture);
  byId("drop-aggregator").textContent = int(s.drops.aggregator);
  byId("drop-sink").textContent = int(s.drops.sink);
}

function setConn(state: string, text: string): void {
  const c = byId("conn");
  c.dataset.state = state;
  c.textContent = text;
}

let backoff = 1000;

async function connect(): Promise<void> {
  // A REST call first: it asks for the token when one is needed, which
  // the WebSocket handshake cannot report.
  try {
    await getJSON("/api/health");
  } catch {
    /* the socket attempt below reports the state */
  }
  const ws = openSocket();
  let opened = false;
  ws.onopen = () => {
    opened = true;
    backoff = 1000;
    setConn("live", "live");
  };
  ws.onmessage = (ev) => {
    let msg: Snapshot | AlertMessage;
    try {
      msg = JSON.parse(ev.data as string);
    } catch {
      return;
    }
    if (msg.type === "snapshot") renderSnapshot(msg);
    else if (msg.type === "alert") addLiveAlert(msg.alert);
  };
  ws.onclose = () => {
    setConn("down", opened ? "reconnecting…" : "cannot connect, retrying…");
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 15_000);
  };
}

// ---- start --------------------------------------------------------------------

function start(): void {
  ppsChart = new LiveChart(byId("chart-pps"), "packets/s", "pkt/s", "#4fc3f7");
  bpsChart = new LiveChart(byId("chart-bps"), "bandwidth", "b/s", "#81c784");
  byId("range").addEventListener("change", showCustom);
  byId<HTMLFormElement>("filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    applyFilters();
  });
  byId("reset").addEventListener("click", () => {
    byId<HTMLFormElement>("filters").reset();
    showCustom();
    applyFilters();
  });
  byId("top-by").addEventListener("change", () => loadTopSources().catch(showError));
  byId("more").addEventListener("click", () => loadAlerts(true).catch(showError));
  connect();
  applyFilters();
  setInterval(() => refreshHistory(), REFRESH_MS);
}

start();
