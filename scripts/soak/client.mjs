// The soak's simulated clients and their bookkeeping: one address and User-Agent each (wrangler dev
// passes CF-Connecting-IP through, so each has its own per-IP rate-limit budget), every answer timed
// per flow and route, failures counted by kind, and the sessions each client holds.
export const runId = Date.now().toString(36);
export const stop = new AbortController(); // the hard timeout cancels everything in flight
const stats = new Map(); // "flow: route" -> { ms: [], status: { code: n } }
const failures = new Map(); // what went wrong -> { n, where }: 40 clients hitting one bug make one line
// Requests answered 503 + Retry-After at first, and of them those a retry completed.
export const count = { retried: 0, retriesCompleted: 0, retiredRenewed: 0 };
// Keys retired mid-run (soak/faults.mjs), and how a client gets a fresh access token for one of its
// sessions (soak/sessions.mjs): a token a retired key signed is refused, and a client refreshes, as
// real clients do ("refresh tokens are not signed, nobody is signed out"), then sends the request again.
export const retiredKids = new Set();
let renew = async () => null;
export const setRenew = (fn) => (renew = fn);
export const bump = (o, k, n = 1) => (o[k] = (o[k] ?? 0) + n);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let base;
export const setBase = (url) => (base = url);
export const baseUrl = () => base;

export function fail(what, where = "", n = 1) {
  const f = failures.get(what);
  if (f) f.n += n;
  else failures.set(what, { n, where });
}
export const report = () => ({ stats, failures });

const usedIps = new Set();
const rand = (n) => Math.floor(Math.random() * n);
/** A client of `flow`: its own address and User-Agent; `where` names it in failures. */
export function newClient(flow, name) {
  let ip;
  do ip = `10.${rand(256)}.${rand(256)}.${1 + rand(254)}`;
  while (usedIps.has(ip));
  usedIps.add(ip);
  return { flow, name, where: `${flow} ${name}`, ip, ua: `soak/${runId} (${flow} ${name})`, cookies: new Map() };
}

/**
 * One request, timed under "<flow>: <route>". JSON `body` or urlencoded `form`; redirects are not
 * followed (`location` answers them). A 503 with Retry-After is what the API promises when a
 * dependency is briefly unavailable: the client waits as told and sends the same request again (up to
 * 5 times); `retries` 0 turns that off for requests whose first answer is the point. A 401 for a
 * token of a retired key is renewed (the session refreshed) and sent again, unless `renewing` is false.
 */
export async function call(client, method, path, { route = `${method} ${path}`, token, body, form, headers: extra = {}, retries = 5, renewing = true } = {}) {
  const first = await send(client, method, path, { route, token, body, form, extra, retries });
  if (first.status !== 401 || !token || !renewing || !retiredKids.has(header(token).kid)) return first;
  const fresh = await renew(token);
  if (!fresh) return first;
  count.retiredRenewed++;
  return send(client, method, path, { route, token: fresh, body, form, extra, retries });
}

async function send(client, method, path, { route, token, body, form, extra, retries }) {
  const headers = { "cf-connecting-ip": client.ip, "user-agent": client.ua, ...extra };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body) headers["content-type"] = "application/json";
  if (form) headers["content-type"] = "application/x-www-form-urlencoded";
  const key = `${client.flow}: ${route}`;
  const s = stats.get(key) ?? stats.set(key, { ms: [], status: {} }).get(key);
  for (let attempt = 0; ; attempt++) {
    const t0 = performance.now();
    let res;
    try {
      res = await fetch(base + path, {
        method,
        headers,
        body: form ? new URLSearchParams(form).toString() : body && JSON.stringify(body),
        redirect: "manual",
        signal: AbortSignal.any([stop.signal, AbortSignal.timeout(30_000)]),
      });
    } catch (err) {
      if (!stop.signal.aborted) bump(s.status, "network_error");
      throw err;
    }
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // an HTML page (consent, a redirect's body)
    }
    s.ms.push(performance.now() - t0);
    const retryAfter = res.headers.get("retry-after");
    const promised = res.status === 503 && retryAfter !== null;
    bump(s.status, promised ? "503+retry" : res.status);
    if (promised && attempt === 0) count.retried++;
    if (promised && attempt < retries) {
      await sleep(Math.min(5, Number(retryAfter) || 1) * 1000);
      continue;
    }
    if (promised) fail(`${key}: still 503 after ${retries} retries`, client.where);
    else if (attempt > 0) count.retriesCompleted++;
    return { status: res.status, json, text, retryAfter, location: res.headers.get("location"), headers: res.headers, attempts: attempt + 1 };
  }
}

export function expect(r, status, what) {
  if (r.status !== status) throw new Error(`${what}: ${r.status}${r.json?.error ? ` ${r.json.error}` : ""} (expected ${status})`);
  return r.json;
}

/** Claims of a JWT, unverified (the soak only reads its own tokens' sid, kid and the like). */
export const claims = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url"));
export const header = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[0], "base64url"));
