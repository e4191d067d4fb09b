// uPlot charts: two live series (packets/s, bits/s) fed by snapshots, and
// one per-source chart from the feature history.
import uPlot from "uplot";
import { si } from "./format";

const HEIGHT = 200;
const LIVE_POINTS = 300; // 10 minutes at the default 2 s snapshot interval

function width(host: HTMLElement): number {
  return Math.max(200, host.clientWidth);
}

// fit keeps a chart as wide as its container.
function fit(u: uPlot, host: HTMLElement): void {
  new ResizeObserver(() => u.setSize({ width: width(host), height: HEIGHT })).observe(host);
}

function axisValues(unit: string) {
  return (_u: uPlot, splits: number[]) => splits.map((v) => si(v, unit));
}

export class LiveChart {
  private u: uPlot;
  private xs: number[] = [];
  private ys: number[] = [];

  constructor(host: HTMLElement, label: string, unit: string, color: string) {
    const opts: uPlot.Options = {
      width: width(host),
      height: HEIGHT,
      // At least a minute wide, so the first few points do not span the chart.
      scales: { x: { time: true, range: (_u, min, max) => [Math.min(min, max - 60), max] }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      series: [
        {},
        { label, stroke: color, fill: color + "33", width: 2, value: (_u, v) => (v == null ? "—" : si(v, unit)) },
      ],
      axes: [
        { stroke: "#9aa4b2", grid: { stroke: "#2a3140" } },
        { stroke: "#9aa4b2", grid: { stroke: "#2a3140" }, size: 70, values: axisValues(unit) },
      ],
      legend: { show: true },
    };
    this.u = new uPlot(opts, [[], []], host);
    fit(this.u, host);
  }

  push(tSeconds: number, y: number): void {
    this.xs.push(tSeconds);
    this.ys.push(y);
    if (this.xs.length > LIVE_POINTS) {
      this.xs.shift();
      this.ys.shift();
    }
    this.u.setData([this.xs, this.ys]);
  }
}

// SourceChart shows one source's packet rate and bandwidth per window.
export class SourceChart {
  private u: uPlot;

  constructor(host: HTMLElement) {
    const opts: uPlot.Options = {
      width: width(host),
      height: HEIGHT,
      scales: { x: { time: true }, pps: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] }, bps: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      series: [
        {},
        { label: "packets/s", scale: "pps", stroke: "#4fc3f7", width: 2, value: (_u, v) => (v == null ? "—" : si(v, "pkt/s")) },
        { label: "bandwidth", scale: "bps", stroke: "#ffb74d", width: 2, value: (_u, v) => (v == null ? "—" : si(v, "b/s")) },
      ],
      axes: [
        { stroke: "#9aa4b2", grid: { stroke: "#2a3140" } },
        { scale: "pps", stroke: "#4fc3f7", grid: { stroke: "#2a3140" }, size: 70, values: axisValues("") },
        { scale: "bps", side: 1, stroke: "#ffb74d", grid: { show: false }, size: 70, values: axisValues("b/s") },
      ],
    };
    this.u = new uPlot(opts, [[], [], []], host);
    fit(this.u, host);
  }

  set(xs: number[], pps: (number | null)[], bps: (number | null)[]): void {
    this.u.setData([xs, pps, bps]);
  }
}
