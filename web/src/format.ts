// Formatting and DOM helpers. Everything shown goes through textContent:
// labels and addresses come from plugins and the network.

const intFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const decFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

export function int(n: number): string {
  return intFmt.format(n);
}

export function dec(n: number | null | undefined): string {
  return n === null || n === undefined ? "—" : decFmt.format(n);
}

// si writes n with an SI prefix: 1.5 M, 320 k.
export function si(n: number, unit: string): string {
  const prefixes = ["", "k", "M", "G", "T", "P"];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < prefixes.length - 1) {
    n /= 1000;
    i++;
  }
  return `${decFmt.format(n)} ${prefixes[i]}${unit}`;
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

// time writes an ISO timestamp in local time, to the second.
export function time(iso: string): string {
  const d = new Date(iso);
  if (isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

type Child = Node | string | number | null | undefined;

// el builds an element; attributes starting with "data-" go to dataset.
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing #${id}`);
  return e as T;
}

// setCounter shows a formatted number and keeps the raw one in data-value,
// which is what tests and scripts read.
export function setCounter(id: string, value: number, text: string): void {
  const e = byId(id);
  e.dataset.value = String(value);
  e.textContent = text;
}
