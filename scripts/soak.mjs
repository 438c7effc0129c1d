// `npm run soak`: a bounded soak test, not part of `npm test`. Many simulated clients at once run the
// whole account lifecycle against a running API (SOAK_URL, default http://localhost:8787) or, if
// nothing answers there, against a wrangler dev this script starts on a free port with fresh state.
// Env: SOAK_URL, SOAK_CLIENTS (default 40), SOAK_ROUNDS (1-3, default 3), SOAK_TIMEOUT (s, default 180).
// Exits 0 only if every check holds. Prints a table and one `SOAK_JSON {...}` line; never a token.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const int = (name, def, min, max) => {
  const v = process.env[name] ? Number(process.env[name]) : def;
  if (Number.isInteger(v) && v >= min && v <= max) return v;
  console.error(`soak: ${name} must be an integer from ${min} to ${max}`);
  process.exit(2);
};
const CLIENTS = int("SOAK_CLIENTS", 40, 1, 300);
// 3 logins a round per account: 3 rounds stay under the per-account login limit (10 a minute).
const ROUNDS = int("SOAK_ROUNDS", 3, 1, 3);
const TIMEOUT_S = int("SOAK_TIMEOUT", 180, 10, 290);
const RACE = 5; // concurrent refreshes with one token, from one client
// Correct logins at once for one account: more than the 5 password checks allowed in flight, and with
// the login after the burst (up to 2 tries) within the per-account limit, so it is never what refuses them.
const BURST = 8;
const BURSTS = Math.max(1, Math.ceil(CLIENTS / 5));
const runId = Date.now().toString(36);

// Wrangler needs Node >= 22.12: the `node` devDependency's binary goes first on PATH, however we were started.
const env = { ...process.env, PATH: join(root, "node_modules", ".bin") + delimiter + process.env.PATH, WRANGLER_SEND_METRICS: "false" };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const bump = (o, k, n = 1) => (o[k] = (o[k] ?? 0) + n);

// ---- our own wrangler dev, when nothing answers at the URL ----------------------------------------
let server; // { dir, log, child }
function run(cmd, args, extra = {}) {
  const r = spawnSync(cmd, args, { cwd: root, env: { ...env, ...extra }, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed:\n${(r.stdout + r.stderr).slice(-2000)}`);
}
const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer().once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const health = (url) =>
  fetch(`${url}/health`, { signal: AbortSignal.timeout(3000) }).then(
    (r) => r.status,
    () => 0,
  );
async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), "soak-"));
  const state = join(dir, "state");
  server = { dir, log: join(dir, "wrangler.log") };
  if (!existsSync(join(root, ".dev.vars"))) run("node", ["scripts/dev-setup.mjs"]); // dev secrets
  run("npx", ["wrangler", "d1", "migrations", "apply", "DB", "--local", "--persist-to", state], { CI: "true" });
  const port = await freePort();
  const out = openSync(server.log, "a");
  const args = ["wrangler", "dev", "--port", String(port), "--persist-to", state, "--var", `ISSUER:http://localhost:${port}`];
  // Its own process group, so one kill reaches npx, wrangler and both workerd processes.
  server.child = spawn("npx", args, { cwd: root, env, detached: true, stdio: ["ignore", out, out] });
  const url = `http://localhost:${port}`;
  for (const end = Date.now() + 60_000; Date.now() < end && server.child.exitCode === null; await sleep(500)) {
    if ((await health(url)) === 200) return url;
  }
  throw new Error(`wrangler dev gave no 200 on /health within 60 s; its log ends:\n${readFileSync(server.log, "utf8").slice(-1500)}`);
}
const killGroup = (pid, sig) => {
  try {
    return process.kill(-pid, sig);
  } catch {
    return false; // ESRCH: the group is gone
  }
};
async function stopServer() {
  const s = server;
  server = undefined;
  if (s?.child) {
    killGroup(s.child.pid, "SIGTERM");
    for (let i = 0; i < 50 && killGroup(s.child.pid, 0); i++) await sleep(100);
    killGroup(s.child.pid, "SIGKILL");
  }
  if (s) rmSync(s.dir, { recursive: true, force: true });
}
process.on("exit", () => {
  // Last resort, synchronous: whatever path got here, no server outlives us.
  if (server?.child) killGroup(server.child.pid, "SIGKILL");
  if (server) rmSync(server.dir, { recursive: true, force: true });
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => finish(130, `interrupted (${sig})`));
process.on("uncaughtException", (e) => finish(1, `uncaught: ${e.message}`));

// ---- clients, HTTP, bookkeeping ---------------------------------------------------------------------
let base;
const stop = new AbortController(); // the hard timeout cancels everything in flight
const stats = new Map(); // route -> { ms: [], status: { code: n } }
// What went wrong -> how often, and where first: 40 clients hitting one bug make one line.
const failures = new Map();
function fail(what, where = "", n = 1) {
  const f = failures.get(what);
  if (f) f.n += n;
  else failures.set(what, { n, where });
}
const count = { races: 0, winners: 0, racePasses: {}, bursts: 0, burstAnswers: {}, revokedNow: 0, finalAccess: 0, finalRefresh: 0 };

// wrangler dev passes a client's CF-Connecting-IP through to the Worker, so each simulated client has
// its own address (and User-Agent) and its own per-IP rate-limit budget.
const usedIps = new Set();
const rand = (n) => Math.floor(Math.random() * n);
function newClient(name) {
  let ip;
  do ip = `10.${rand(256)}.${rand(256)}.${1 + rand(254)}`;
  while (usedIps.has(ip));
  usedIps.add(ip);
  return { name, where: name, ip, ua: `soak/${runId} (${name})` };
}

async function call(client, method, path, { route = `${method} ${path}`, token, body } = {}) {
  const headers = { "cf-connecting-ip": client.ip, "user-agent": client.ua };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body) headers["content-type"] = "application/json";
  const s = stats.get(route) ?? stats.set(route, { ms: [], status: {} }).get(route);
  const t0 = performance.now();
  let res;
  try {
    res = await fetch(base + path, {
      method,
      headers,
      body: body && JSON.stringify(body),
      signal: AbortSignal.any([stop.signal, AbortSignal.timeout(30_000)]),
    });
  } catch (err) {
    if (!stop.signal.aborted) bump(s.status, "network_error");
    throw err;
  }
  const json = await res.json().catch(() => null);
  s.ms.push(performance.now() - t0);
  bump(s.status, res.status);
  return { status: res.status, json, retryAfter: res.headers.get("retry-after") };
}
function expect(r, status, what) {
  if (r.status !== status) throw new Error(`${what}: ${r.status}${r.json?.error ? ` ${r.json.error}` : ""} (expected ${status})`);
  return r.json;
}
const login = (c, name, password) => call(c, "POST", "/login", { body: { username: name, password } });
const refresh = (c, token) => call(c, "POST", "/refresh", { body: { refresh_token: token } });

// A session as its client knows it: every access and refresh token it was ever given.
const revoked = []; // sessions that must be dead; all their tokens are tried again at the end
function session(issued) {
  const sid = JSON.parse(Buffer.from(issued.access_token.split(".")[1], "base64url")).sid;
  return { sid, access: [issued.access_token], refresh: [issued.refresh_token] };
}
const last = (a) => a[a.length - 1];
async function refreshed(c, s, what) {
  const r = expect(await refresh(c, last(s.refresh)), 200, what);
  s.access.push(r.access_token);
  s.refresh.push(r.refresh_token);
}
// Right after a revocation: every access token of the session and its current refresh token refused.
async function mustBeDead(c, sessions, why, live) {
  for (const s of sessions) {
    live.delete(s);
    revoked.push(s);
    const answers = await Promise.all([...s.access.map((t) => call(c, "GET", "/protected", { token: t })), refresh(c, last(s.refresh))]);
    count.revokedNow += answers.length;
    const bad = answers.filter((a) => a.status !== 401).map((a) => a.status);
    if (bad.length) fail(`right after ${why}: a token of the revoked session answered ${[...new Set(bad)].join("/")} (expected 401)`, c.where);
  }
}

// One token, RACE refreshes at once from one client: exactly one successor (every 200 carries the
// same one; the others may be 401), and that successor works.
async function race(c, s) {
  const answers = await Promise.all(Array.from({ length: RACE }, () => refresh(c, last(s.refresh))));
  const wins = answers.filter((a) => a.status === 200);
  const successors = new Set(wins.map((a) => a.json.refresh_token));
  count.races++;
  bump(count.racePasses, wins.length);
  const others = answers.filter((a) => a.status !== 200 && a.status !== 401).map((a) => a.status);
  if (others.length) fail(`refresh race: answers ${[...new Set(others)].join("/")} besides 200/401`, c.where);
  for (const w of wins) s.access.push(w.json.access_token);
  s.refresh.push(...successors);
  if (successors.size !== 1) throw new Error(`refresh race: ${wins.length} answers 200 with ${successors.size} distinct refresh tokens (expected 1)`);
  count.winners++;
  await refreshed(c, s, "refresh with the race's successor");
}

// ---- the workload ---------------------------------------------------------------------------------
async function lifecycle(i) {
  const c = newClient(`client${i}`);
  try {
    await rounds(c, i);
  } catch (e) {
    fail(e.message, c.where);
  }
}
async function rounds(c, i) {
  const user = { username: `soak_${runId}_${i}`, email: `soak_${runId}_${i}@example.com`, password: `Soak pass ${i}0` };
  const live = new Set([session(expect(await call(c, "POST", "/register", { body: user }), 201, "register"))]);
  for (let r = 0; r < ROUNDS; r++) {
    c.where = `${c.name} round ${r}`;
    const s1 = session(expect(await login(c, user.username, user.password), 200, "login by username"));
    const byEmail = await Promise.all([login(c, user.email, user.password), login(c, user.email, user.password)]);
    const [s2, s3] = byEmail.map((a) => session(expect(a, 200, "login by email")));
    for (const s of [s1, s2, s3]) live.add(s);
    for (const a of await Promise.all([...live].map((s) => call(c, "GET", "/protected", { token: last(s.access) })))) expect(a, 200, "GET /protected");
    await refreshed(c, s1, "refresh");
    await race(c, s1);

    const listed = new Set(expect(await call(c, "GET", "/sessions", { token: last(s1.access) }), 200, "GET /sessions").sessions.map((x) => x.id));
    if ([...live].some((s) => !listed.has(s.sid)) || revoked.some((s) => listed.has(s.sid)))
      fail("GET /sessions does not list exactly the live sessions", c.where);
    expect(await call(c, "DELETE", `/sessions/${s2.sid}`, { route: "DELETE /sessions/:id", token: last(s1.access) }), 200, "DELETE /sessions/:id");
    await mustBeDead(c, [s2], "DELETE /sessions/:id", live);
    expect(await call(c, "POST", "/logout", { token: last(s3.access) }), 200, "logout");
    await mustBeDead(c, [s3], "logout", live);

    const others = [...live].filter((s) => s !== s1);
    const body = { current_password: user.password, new_password: `Soak pass ${i}${r + 1}` };
    const changed = expect(await call(c, "POST", "/password", { token: last(s1.access), body }), 200, "password change");
    user.password = body.new_password;
    if (changed.sessions_revoked !== others.length) fail(`password change: sessions_revoked ${changed.sessions_revoked}, expected ${others.length}`, c.where);
    await mustBeDead(c, others, "password change", live);
    const all = expect(await call(c, "POST", "/logout/all", { token: last(s1.access) }), 200, "logout/all");
    if (all.sessions_revoked !== 1) fail(`logout/all: sessions_revoked ${all.sessions_revoked}, expected 1`, c.where);
    await mustBeDead(c, [s1], "logout/all", live);
  }
}

// Correct logins for one account, all at once from different addresses: 200, or 429 Retry-After: 1
// (too many checks in flight). A longer 429 means correct logins locked the account.
async function burst(b) {
  const user = { username: `soakb_${runId}_${b}`, email: `soakb_${runId}_${b}@example.com`, password: `Burst pass ${b}0` };
  expect(await call(newClient(`burst${b}`), "POST", "/register", { body: user }), 201, "burst: register");
  const logins = Array.from({ length: BURST }, (_, k) => login(newClient(`burst${b}.${k}`), k % 2 ? user.email : user.username, user.password));
  const answers = await Promise.all(logins);
  count.bursts++;
  const key = (a) => (a.status === 429 ? `429 Retry-After ${a.retryAfter}` : String(a.status));
  for (const a of answers) bump(count.burstAnswers, key(a));
  // A lock can read as Retry-After: 1 when a concurrent success clears it first: the message tells them apart.
  const inFlight = (a) => a.status === 429 && a.retryAfter === "1" && /in progress/.test(a.json?.message ?? "");
  const bad = answers.filter((a) => !(a.status === 200 || inFlight(a)));
  if (bad.length) fail(`burst: correct logins answered ${[...new Set(bad.map(key))].join(", ")}`, `burst ${b}`);
  const after = newClient(`burst${b}.after`);
  for (let k = 0; k < 2; k++) {
    const a = await login(after, user.username, user.password);
    if (a.status === 200) return;
    if (a.status !== 429 || a.retryAfter !== "1" || k === 1) return fail(`burst: the correct login after it answered ${key(a)}`, `burst ${b}`);
    await sleep(1000);
  }
}

// Every token of every revoked session. /refresh is limited to 60 a minute per address: a fresh
// checker address for each 50.
async function finalCheck() {
  const jobs = revoked.flatMap((s) => [...s.access.map((t) => ["access", t]), ...s.refresh.map((t) => ["refresh", t])]);
  const checker = newClient("checker");
  const refreshers = [];
  let sent = 0; // counted when sent, not when answered, so no address goes over 50
  const worker = async () => {
    for (let job; (job = jobs.pop()); ) {
      const [kind, t] = job;
      const k = kind === "refresh" ? Math.floor(sent++ / 50) : 0;
      const a = kind === "access" ? await call(checker, "GET", "/protected", { token: t }) : await refresh((refreshers[k] ??= newClient(`checker${k}`)), t);
      count[kind === "access" ? "finalAccess" : "finalRefresh"]++;
      if (a.status !== 401) fail(`final check: a revoked session's ${kind} token answered ${a.status} (expected 401)`);
    }
  };
  await Promise.all(Array.from({ length: 20 }, worker));
}

// ---- report ---------------------------------------------------------------------------------------
const pct = (sorted, p) => Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? 0);
const list = (o) =>
  Object.entries(o)
    .map(([k, v]) => `${k}:${v}`)
    .join(" ");
let t0 = performance.now();
let finishing = false;
async function finish(code, reason) {
  if (finishing) return;
  finishing = true;
  stop.abort();
  if (reason) fail(reason);
  const secs = (performance.now() - t0) / 1000;
  const routes = {};
  const statuses = {};
  let total = 0;
  for (const [route, s] of [...stats].sort()) {
    const ms = s.ms.sort((a, b) => a - b);
    const n = Object.values(s.status).reduce((a, b) => a + b, 0);
    total += n;
    routes[route] = { n, p50: pct(ms, 0.5), p95: pct(ms, 0.95), p99: pct(ms, 0.99), status: s.status };
    for (const [st, k] of Object.entries(s.status)) {
      bump(statuses, st, k);
      if (Number(st) >= 500 || st === "network_error") fail(`${route}: answered ${st}`, "", k);
    }
  }
  const nFailures = [...failures.values()].reduce((a, f) => a + f.n, 0);
  const ok = nFailures === 0 && code === 0;
  const rps = +(total / secs).toFixed(1);
  console.log(
    `\nsoak ${ok ? "PASS" : "FAIL"}: ${base ?? "(no server)"}${server ? " (own wrangler dev)" : ""}, ${CLIENTS} clients x ${ROUNDS} rounds, ${BURSTS} login bursts of ${BURST}`,
  );
  console.log(`duration ${secs.toFixed(1)} s, ${total} requests, ${rps} req/s`);
  console.log(`${"route".padEnd(22)}${["count", "p50", "p95", "p99"].map((h) => h.padStart(7)).join("")}  statuses (latency in ms)`);
  for (const [route, r] of Object.entries(routes))
    console.log(`${route.padEnd(22)}${[r.n, r.p50, r.p95, r.p99].map((v) => String(v).padStart(7)).join("")}  ${list(r.status)}`);
  console.log(`statuses: ${list(statuses)}`);
  console.log(`refresh races: ${count.races}, exactly one winner: ${count.winners} (races by number of 200 answers: ${list(count.racePasses)})`);
  console.log(
    `revoked sessions: ${revoked.length}; tokens refused right after revocation: ${count.revokedNow}; at the end: ${count.finalAccess} access, ${count.finalRefresh} refresh`,
  );
  console.log(
    `login bursts: ${count.bursts} x ${BURST}: ${Object.entries(count.burstAnswers)
      .map(([k, v]) => `${k} x${v}`)
      .join(", ")}`,
  );
  for (const [what, f] of failures) console.log(`  FAIL x${f.n} ${what}${f.where ? ` (first: ${f.where})` : ""}`);
  const revokedChecked = count.revokedNow + count.finalAccess + count.finalRefresh;
  const summary = { result: ok ? "PASS" : "FAIL", duration_s: +secs.toFixed(1), requests: total, rps, clients: CLIENTS, rounds: ROUNDS, statuses, routes };
  Object.assign(summary, { races: count.races, race_winners: count.winners, revoked_sessions: revoked.length, revoked_checked: revokedChecked });
  Object.assign(summary, { bursts: count.bursts, burst_answers: count.burstAnswers, failures: nFailures });
  console.log(`SOAK_JSON ${JSON.stringify(summary)}`);
  await stopServer().catch(() => {});
  process.exit(ok ? 0 : 1);
}

async function main() {
  base = (process.env.SOAK_URL ?? "http://localhost:8787").replace(/\/$/, "");
  const status = await health(base);
  if (status === 0) {
    console.error(`soak: nothing answers at ${base}; starting wrangler dev with fresh local state`);
    base = await startServer();
  } else if (status !== 200) throw new Error(`${base}/health answered ${status}`);
  console.error(`soak: ${base}: ${CLIENTS} clients x ${ROUNDS} rounds, ${BURSTS} login bursts of ${BURST} (hard timeout ${TIMEOUT_S} s)`);
  t0 = performance.now();
  const bursts = Array.from({ length: BURSTS }, (_, b) => burst(b).catch((e) => fail(e.message, `burst ${b}`)));
  await Promise.all([...Array.from({ length: CLIENTS }, (_, i) => lifecycle(i)), ...bursts]);
  await finalCheck();
}

setTimeout(() => finish(1, `hard timeout: aborted after ${TIMEOUT_S} s`), TIMEOUT_S * 1000);
main().then(
  () => finish(0),
  (e) => finish(1, e.message),
);
