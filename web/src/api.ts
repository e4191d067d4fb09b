// REST and WebSocket access with the optional bearer token. The token is
// asked for once (on the first 401) and kept in sessionStorage, so it
// lives as long as the tab.

const TOKEN_KEY = "netguardian.token";

export class HttpError extends Error {
  constructor(public status: number, message: string, public parameter?: string) {
    super(message);
  }
}

let token: string | null = sessionStorage.getItem(TOKEN_KEY);
let asking: Promise<void> | null = null;

export function hasToken(): boolean {
  return token !== null && token !== "";
}

// askToken shows the token dialog once for any number of concurrent 401s.
function askToken(rejected: boolean): Promise<void> {
  if (asking) return asking;
  const dialog = document.getElementById("token-dialog") as HTMLDialogElement;
  const form = document.getElementById("token-form") as HTMLFormElement;
  const input = document.getElementById("token-input") as HTMLInputElement;
  const err = document.getElementById("token-error") as HTMLElement;
  err.textContent = rejected ? "That token was not accepted." : "";
  asking = new Promise<void>((resolve) => {
    const done = (ev: Event) => {
      ev.preventDefault();
      const t = input.value.trim();
      if (!t) return;
      token = t;
      sessionStorage.setItem(TOKEN_KEY, t);
      input.value = "";
      form.removeEventListener("submit", done);
      dialog.close();
      asking = null;
      resolve();
    };
    form.addEventListener("submit", done);
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
  return asking;
}

// getJSON fetches an API path, asking for the token when the server wants one.
export async function getJSON<T>(path: string, params: Record<string, string | undefined> = {}): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, v);
  const url = q.toString() ? `${path}?${q}` : path;
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (hasToken()) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(url, { headers, cache: "no-store" });
    if (res.status === 401) {
      await askToken(hasToken() || attempt > 0);
      continue;
    }
    const body = await res.json().catch(() => ({ error: res.statusText }));
    if (!res.ok) throw new HttpError(res.status, body.error ?? res.statusText, body.parameter);
    return body as T;
  }
}

function base64url(s: string): string {
  let bin = "";
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// openSocket opens the dashboard feed. Browsers cannot set headers on a
// WebSocket, so the token travels as a subprotocol the server recognises
// (and never echoes).
export function openSocket(): WebSocket {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const protocols = ["netguardian.v1"];
  if (hasToken()) protocols.push("netguardian.token." + base64url(token as string));
  return new WebSocket(`${proto}//${location.host}/ws/dashboard`, protocols);
}
