// `npm run bench`: the API's cost per request next to its floors, measured in one run on this machine.
// Starts the real worker and a floor worker (test/bench/floors/) under `wrangler dev`, each with
// fresh local state, drives each endpoint for a few seconds at a fixed concurrency, and prints per
// endpoint: worker CPU ms per request (CPU of the workerd process that runs the worker, the dev
// proxy left out), throughput, and both as a ratio to the endpoint's floor. Then the bundle and the
// worker's startup time. Prints and records; asserts no speed. Worker CPU needs Linux (/proc).
// Second factors too: requests that are good once (a login challenge, a TOTP code, a recovery code,
// a WebAuthn challenge) cannot be repeated for seconds, so each round prepares BENCH_COUNT of them
// (fresh users, challenges, signed assertions: none of it measured), fires them at the same
// concurrency, and divides the worker's CPU by their count.
// The authorization server's token endpoint likewise (scripts/bench-oauth.mjs): codes and refresh tokens;
// and the API key exchange (scripts/bench-keys.mjs). Then better-auth beside it (scripts/bench-peer.mjs, "peer").
//   BENCH_SECONDS (default 2) per measurement, BENCH_ROUNDS (5), BENCH_CONCURRENCY (8), BENCH_COUNT
//   (40) single-use requests a round, BENCH_ONLY (row names, or "mfa" / "passkey" / "oauth" / "peer" for their group).

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { KEYS, keyRows } from "./bench-keys.mjs";
import { OAUTH, oauthRows } from "./bench-oauth.mjs";
import { peerRows } from "./bench-peer.mjs";
import { bundleSize } from "./bundle.mjs";
import { root, start, stop, waitFor } from "./servers.mjs";
import { standInArgs, startStandIns } from "./stand-ins.mjs";
import { activeMs } from "./startup.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const API_PORT = 8796;
const FLOOR_PORT = 8797;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const COUNT = Number(process.env.BENCH_COUNT ?? 40);
const ONLY = process.env.BENCH_ONLY?.split(","); // e.g. root,protected or mfa,passkey-login
const selected = (key) => !ONLY || ONLY.includes(key) || ONLY.includes(key.split("-")[0]);
// [endpoint, its floor, label, floor label, the floor sending the API's headers and body]
const PAIRS = [
  ["root", "bare", "GET /", "bare Hono route", "bareSame"],
  ["protected", "verify", "GET /protected", "ES256 verify + 1 KV read", "verifySame"],
  ["refresh", "sign", "POST /refresh", "ES256 sign + 1 D1 write"],
  ["refresh-org", "sign", "POST /refresh (an active organization)", "ES256 sign + 1 D1 write"],
  ["login", "hash", "POST /login", "PBKDF2 %i"],
  ["register", "hash", "POST /register", "PBKDF2 %i"],
];
// Second factors: [row, its floor, label, floor label]. The setup (a password check, then a new
// pending secret) and the passkey login options can be sent again and again, and are measured as
// above; the other rows are single use (COUNT a round).
const SECOND = [
  ["mfa-setup", "hash", "POST /mfa/totp/setup", "PBKDF2 %i"],
  ["mfa-login", "hash", "POST /login (TOTP on)", "PBKDF2 %i"],
  ["mfa-code", "sign", "POST /login/mfa (code)", "ES256 sign + 1 D1 write"],
  ["mfa-recovery", "sign", "POST /login/mfa (recovery code)", "ES256 sign + 1 D1 write"],
  ["passkey-options", "write", "POST /passkeys/login/options", "1 D1 write"],
  ["passkey-register", "verifyWrite", "POST /passkeys/register/verify", "ES256 verify + 1 KV read + 1 D1 write"],
  ["passkey-login", "verifySign", "POST /passkeys/login/verify", "ES256 verify + sign + 1 D1 write"],
];
// The page origin and relying-party id the bench's API accepts for passkeys (set on it explicitly).
const WEBAUTHN_ORIGIN = "http://localhost:5173";
const WEBAUTHN_RP_ID = "localhost";
const PASSWORD = "bench password 1";
const env = { ...process.env, PATH: path.join(root, "node_modules", ".bin") + path.delimiter + process.env.PATH, WRANGLER_SEND_METRICS: "false" };
const state = mkdtempSync(path.join(os.tmpdir(), "bench-"));

// --- HTTP: keep-alive sockets, so the numbers are the worker's and not connection setup ---------
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
let ipCounter = 0;
const HEADERS = Symbol("headers"); // an answer's headers, beside its JSON
/**
 * One request; every call from its own address, so the per-IP rate limits never answer instead. A
 * JSON `body` or a `form` (urlencoded), more `headers`; with `redirect`, a 3xx answers `{ location }` instead of failing.
 */
function send(port, method, pathname, { body, form, token, redirect, headers: extra } = {}) {
  const n = ipCounter++;
  const headers = { "cf-connecting-ip": `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, "user-agent": "bench", ...extra };
  if (token) headers.authorization = `Bearer ${token}`;
  const payload = form ? new URLSearchParams(form).toString() : body === undefined ? undefined : JSON.stringify(body);
  if (payload) headers["content-type"] = form ? "application/x-www-form-urlencoded" : "application/json";
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path: pathname, headers, agent }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        if (redirect && res.statusCode >= 300 && res.statusCode < 400 && res.headers.location) resolve({ location: res.headers.location });
        else if (res.statusCode >= 300) reject(new Error(`${method} ${pathname} answered ${res.statusCode}: ${text.slice(0, 200)}`));
        else resolve(text ? Object.defineProperty(JSON.parse(text), HEADERS, { value: res.headers }) : null);
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}

// --- Worker CPU: the workerd process under a wrangler dev that is not its proxy ---------------
const TICK_MS = 1000 / Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim() || 100);
function workerPid(wranglerPid, port) {
  const procs = existsSync("/proc") ? readdirSync("/proc").filter((d) => /^\d+$/.test(d)) : [];
  const parent = new Map();
  for (const pid of procs) {
    try {
      parent.set(pid, readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")[1]);
    } catch {
      // gone
    }
  }
  const under = (pid) => {
    for (let p = pid; p && p !== "1"; p = parent.get(p)) if (p === String(wranglerPid)) return true;
    return false;
  };
  for (const pid of procs) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      // Two workerd processes per `wrangler dev`: the proxy listens on our port, the worker does not.
      if (path.basename(cmd[0]) === "workerd" && under(pid) && !cmd.some((a) => a.endsWith(`:${port}`))) return pid;
    } catch {
      // gone
    }
  }
  return null;
}
function cpuMs(pid) {
  if (!pid) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime + stime
}

/** Drives `fn` from CONCURRENCY loops for SECONDS (after a short warm-up); CPU of `pid` meanwhile. */
async function measure(pid, fn) {
  const drive = async (ms) => {
    let count = 0;
    const end = Date.now() + ms;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, loop) => {
        while (Date.now() < end) await fn(loop, count++);
      }),
    );
    return count;
  };
  await drive(500);
  const cpu0 = cpuMs(pid);
  const t0 = performance.now();
  const count = await drive(SECONDS * 1000);
  const elapsed = (performance.now() - t0) / 1000;
  return { count, rps: count / elapsed, cpu: (cpuMs(pid) - cpu0) / count };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** `fn` on every item of `items`, from CONCURRENCY loops. */
async function inParallel(items, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
  return items;
}
/**
 * Single-use requests: `fn` on each prepared item from CONCURRENCY loops, the first CONCURRENCY as
 * the warm-up; CPU of `pid` per request over the rest. The CPU is read after a pause on either side,
 * so the preparation's deferred work (waitUntil) is not counted and the requests' own is.
 */
async function measureEach(pid, items, fn) {
  await inParallel(items.slice(0, CONCURRENCY), fn);
  const rest = items.slice(CONCURRENCY);
  await sleep(200);
  const cpu0 = cpuMs(pid);
  const t0 = performance.now();
  await inParallel(rest, fn);
  const elapsed = (performance.now() - t0) / 1000;
  await sleep(200);
  return { count: rest.length, rps: rest.length / elapsed, cpu: (cpuMs(pid) - cpu0) / rest.length };
}

async function main() {
  spawnSync(process.execPath, ["scripts/dev-setup.mjs"], { cwd: root, stdio: "ignore", env });
  const migrate = spawnSync("wrangler", ["d1", "migrations", "apply", "DB", "--local", "--persist-to", path.join(state, "api")], {
    cwd: root,
    env,
    encoding: "utf8",
    shell: process.platform === "win32",
  });
  if (migrate.status !== 0) throw new Error(`migrations failed:\n${migrate.stdout}${migrate.stderr}`);
  // Secrets (the signing key, pepper and MFA_ENCRYPTION_KEY) come from .dev.vars, which dev-setup completes.
  const webauthn = ["--var", `WEBAUTHN_ORIGINS:${WEBAUTHN_ORIGIN}`, "--var", `WEBAUTHN_RP_ID:${WEBAUTHN_RP_ID}`];
  const apiServer = start(
    "wrangler",
    [
      "dev",
      "--port",
      String(API_PORT),
      "--persist-to",
      path.join(state, "api"),
      "--var",
      `ISSUER:http://localhost:${API_PORT}`,
      "--var",
      "LOG_REQUESTS:off",
      // New passwords' range query: the local stand-in (one loopback fetch), never the internet.
      ...standInArgs(await startStandIns({ unref: true })),
      // The authorization server (bench-oauth.mjs): its consent page's address, and self-registered clients.
      "--var",
      "APP_URL:http://localhost:5173/",
      "--var",
      "OAUTH_REGISTRATION:open",
      // Guests (bench-peer.mjs's row beside better-auth's anonymous sign-in).
      "--var",
      "GUESTS:on",
      ...webauthn,
    ],
    { quiet: true },
  );
  await waitFor(`http://localhost:${API_PORT}/health`, "the API");
  const jwks = await send(API_PORT, "GET", "/.well-known/jwks.json");
  // The API's answer to GET /, for the floors' ?same variants (the transport's own headers left out).
  const rootAnswer = await send(API_PORT, "GET", "/");
  const transport = new Set(["content-type", "content-length", "date", "connection", "keep-alive", "transfer-encoding"]);
  const answer = { headers: Object.entries(rootAnswer[HEADERS]).filter(([name]) => !transport.has(name)), body: { ...rootAnswer } };
  const iterations = /PASSWORD_ITERATIONS\s*=\s*"(\d+)"/.exec(readFileSync(path.join(root, "wrangler.toml"), "utf8"))[1];
  const floorServer = start(
    "wrangler",
    [
      "dev",
      "-c",
      "test/bench/floors/wrangler.toml",
      "--port",
      String(FLOOR_PORT),
      "--persist-to",
      path.join(state, "floors"),
      "--var",
      `JWKS:${JSON.stringify(jwks)}`,
      "--var",
      `PASSWORD_ITERATIONS:${iterations}`,
      "--var",
      `ANSWER:${JSON.stringify(answer)}`,
    ],
    { quiet: true },
  );
  await waitFor(`http://localhost:${FLOOR_PORT}/bare`, "the floor worker");
  const apiPid = workerPid(apiServer.pid, API_PORT);
  const floorPid = workerPid(floorServer.pid, FLOOR_PORT);
  if (!apiPid || !floorPid) console.error("bench: cannot read worker CPU here (needs Linux /proc); throughput only");

  const registered = [];
  const users = [];
  const register = async () => {
    const username = `bench_${registered.length}_${Math.random().toString(36).slice(2, 8)}`;
    registered.push(await send(API_PORT, "POST", "/register", { body: { username, password: PASSWORD } }));
    users.push(username);
  };
  // Logins spread over accounts, at most 8 each (LOGIN_USER_LIMITER allows 10 a minute) at up to 100
  // logins a second, for each row that logs in; one refresh chain per loop.
  const loginRows = ["login", "peer-login", "peer-login-pbkdf2"].filter(selected).length;
  while (users.length < (loginRows ? Math.ceil((loginRows * ROUNDS * (SECONDS + 0.5) * 100) / 8) : CONCURRENCY)) await register();
  let token = registered[0].access_token; // any live access token: the later rows renew it (15 minutes)
  const chains = registered.slice(0, CONCURRENCY).map((r) => r.refresh_token);
  // Sessions acting for an organization (docs/organizations.md): users of their own, since a switch
  // revokes the access token it was sent with; one refresh chain per loop.
  const orgChains = [];
  for (let i = 0; selected("refresh-org") && i < CONCURRENCY; i++) {
    const suffix = `${i}_${Math.random().toString(36).slice(2, 8)}`;
    const r = await send(API_PORT, "POST", "/register", { body: { username: `bench_org_${suffix}`, password: PASSWORD } });
    const { organization } = await send(API_PORT, "POST", "/orgs", {
      token: r.access_token,
      body: { name: "Bench", slug: `bench-${suffix.replace("_", "-")}` },
    });
    await send(API_PORT, "POST", "/orgs/switch", { token: r.access_token, body: { org_id: organization.id } });
    orgChains.push(r.refresh_token);
  }
  let loginTurn = 0; // one count over every round, so no account gets more than its share
  const api = {
    root: () => send(API_PORT, "GET", "/"),
    protected: () => send(API_PORT, "GET", "/protected", { token }),
    refresh: async (loop) => {
      chains[loop] = (await send(API_PORT, "POST", "/refresh", { body: { refresh_token: chains[loop] } })).refresh_token;
    },
    "refresh-org": async (loop) => {
      orgChains[loop] = (await send(API_PORT, "POST", "/refresh", { body: { refresh_token: orgChains[loop] } })).refresh_token;
    },
    login: () => send(API_PORT, "POST", "/login", { body: { username: users[loginTurn++ % users.length], password: PASSWORD } }),
    register,
  };
  const floor = {
    bare: () => send(FLOOR_PORT, "GET", "/bare"),
    bareSame: () => send(FLOOR_PORT, "GET", "/bare?same"),
    verify: () => send(FLOOR_PORT, "GET", "/verify", { token }),
    verifySame: () => send(FLOOR_PORT, "GET", "/verify?same", { token }),
    verifyWrite: () => send(FLOOR_PORT, "POST", "/verify-write", { token }),
    sign: () => send(FLOOR_PORT, "POST", "/sign"),
    verifySign: () => send(FLOOR_PORT, "POST", "/verify-sign"),
    hash: () => send(FLOOR_PORT, "POST", "/hash"),
    read: () => send(FLOOR_PORT, "GET", "/read"),
    write: () => send(FLOOR_PORT, "POST", "/write"),
  };
  // Endpoint and floor take turns, ROUNDS times; the median of each resists a neighbour's burst of load.
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rows = {};
  const summarize = (runs) => {
    const summary = (rs) => ({ cpu: median(rs.map((r) => r.cpu)), rps: median(rs.map((r) => r.rps)) });
    // Ratios are taken within each round (endpoint and floor minutes apart share the machine's mood),
    // then the median of those.
    const ratio = (of, to, field) => median(runs.api.map((_, i) => (of === "api" ? runs.api[i] : runs[of][i])[field] / runs[to][i][field]));
    return {
      api: summary(runs.api),
      floor: summary(runs.floor),
      cpuRatio: ratio("api", "floor", "cpu"),
      rpsRatio: ratio("api", "floor", "rps"),
      sameRatio: runs.same.length ? ratio("api", "same", "cpu") : undefined,
    };
  };
  for (const [key, floorKey, , , sameKey] of PAIRS.filter(([key]) => selected(key))) {
    const runs = { api: [], floor: [], same: [] };
    for (let round = 0; round < ROUNDS; round++) {
      runs.api.push(await measure(apiPid, api[key]));
      runs.floor.push(await measure(floorPid, floor[floorKey]));
      if (sameKey) runs.same.push(await measure(floorPid, floor[sameKey]));
    }
    rows[key] = summarize(runs);
  }
  Object.assign(rows, await secondFactors({ apiPid, floorPid, floor, summarize, renew: (t) => (token = t) }));
  const kit = { send, measure, measureEach, inParallel, summarize, selected, floor, apiPid, floorPid, port: API_PORT };
  Object.assign(rows, await oauthRows({ ...kit, ROUNDS, COUNT, CONCURRENCY, PASSWORD, renew: (t) => (token = t) }));
  Object.assign(rows, await keyRows({ ...kit, ROUNDS, COUNT, CONCURRENCY, PASSWORD, renew: (t) => (token = t) }));
  const peer = await peerRows({ ...kit, api, ROUNDS, CONCURRENCY, PASSWORD, HEADERS, iterations, workerPid, state, env, root });

  const fmt = (n, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
  const line = (cells) => `| ${cells.join(" | ")} |`;
  const table = [
    line(["endpoint", "worker ms", "req/s", "floor", "floor ms", "floor req/s", "CPU ratio", "throughput ratio", "CPU ratio, same answer"]),
    line(["---", "---:", "---:", "---", "---:", "---:", "---:", "---:", "---:"]),
  ];
  for (const [key, , name, floorName] of [...PAIRS, ...SECOND, ...OAUTH, ...KEYS].filter(([key]) => rows[key])) {
    const { api: r, floor: f, cpuRatio, rpsRatio, sameRatio } = rows[key];
    const x = (n) => (n === undefined ? "" : `${fmt(n)}x`);
    table.push(line([name, fmt(r.cpu), fmt(r.rps, 0), floorName.replace("%i", iterations), fmt(f.cpu), fmt(f.rps, 0), x(cpuRatio), x(rpsRatio), x(sameRatio)]));
  }
  if (table.length > 2) console.log(table.join("\n"));
  if (peer.table.length) console.log(`\n${peer.table.join("\n")}`);

  // One D1 statement on its own, less the bare route: local SQLite inside workerd (capacity model).
  if (!ONLY) {
    const cost = async (fn) => {
      const cpus = [];
      for (let round = 0; round < ROUNDS; round++) cpus.push((await measure(floorPid, fn)).cpu);
      return fmt(median(cpus) - rows.root.floor.cpu);
    };
    console.log(`\nD1, one statement on its own (local, less the bare route): read by key ${await cost(floor.read)} ms, write ${await cost(floor.write)} ms`);
  }
  stop();

  if (ONLY) return;
  // Bundle and startup: the deployable bundle, and its startup profiled by `wrangler check startup`.
  const out = path.join(state, "bundle");
  const build = spawnSync("wrangler", ["deploy", "--dry-run", "--outdir", out], { cwd: root, env, encoding: "utf8", shell: process.platform === "win32" });
  if (build.status !== 0) throw new Error(`build failed:\n${build.stdout}${build.stderr}`);
  const size = bundleSize(path.join(out, "index.js"));
  const startups = [];
  for (let i = 0; i < 5; i++) {
    const profile = path.join(state, `startup-${i}.cpuprofile`);
    const run = spawnSync("wrangler", ["check", "startup", "--outfile", profile], { cwd: root, env, encoding: "utf8", shell: process.platform === "win32" });
    if (run.status === 0) startups.push(activeMs(JSON.parse(readFileSync(profile, "utf8"))));
  }
  startups.sort((a, b) => a - b);
  console.log(`\nbundle: ${fmt(size.raw / 1024, 0)} KiB, ${fmt(size.gzip / 1024, 0)} KiB gzipped (budget ${size.budget})`);
  console.log(`startup: ${fmt(startups[Math.floor(startups.length / 2)], 1)} ms CPU, median of ${startups.length} (wrangler check startup)`);
  console.log(
    `machine: ${os.cpus()[0]?.model ?? "?"}, ${os.cpus().length} cores, Node ${process.version}; median of ${ROUNDS} rounds of ${SECONDS} s (single-use rows: ${COUNT} requests) at concurrency ${CONCURRENCY}`,
  );
}

/**
 * The rows of SECOND that were asked for, each round: POST /mfa/totp/setup (CONCURRENCY fresh users,
 * each replacing its pending secret again and again) and the passkey login options, measured like
 * the rows above; then COUNT + CONCURRENCY fresh users with TOTP on, each through a password login (the
 * challenge), the code step, another login and the recovery-code step (four of the ten sign-ins a
 * minute LOGIN_USER_LIMITER allows an account); and as many fresh users registering one passkey each
 * and signing in with it once (no passkey signs twice, so no counters race). Each measured step is
 * followed by its floor. Everything the client signs or computes is ready before a step starts.
 */
async function secondFactors({ apiPid, floorPid, floor, summarize, renew }) {
  const asked = SECOND.map(([key]) => key).filter(selected);
  if (!asked.length) return {};
  const outfile = path.join(state, "clients.mjs");
  await build({ entryPoints: [path.join(root, "test", "bench", "clients.ts")], bundle: true, format: "esm", platform: "node", outfile, logLevel: "silent" });
  const { SoftAuthenticator, fromBase32, totpCode } = await import(pathToFileURL(outfile).href);

  const runs = Object.fromEntries(asked.map((key) => [key, { api: [], floor: [], same: [] }]));
  const floorOf = Object.fromEntries(SECOND.map(([key, floorKey]) => [key, floorKey]));
  const timed = async (key, fn) => {
    runs[key].api.push(await measure(apiPid, fn));
    runs[key].floor.push(await measure(floorPid, floor[floorOf[key]]));
  };
  /** A single-use step over `items`: measured next to its floor when its row was asked for, else only done. */
  const step = async (key, items, fn) => {
    if (!runs[key]) return inParallel(items, fn);
    runs[key].api.push(await measureEach(apiPid, items, fn));
    runs[key].floor.push(await measure(floorPid, floor[floorOf[key]]));
  };

  const freshCheck = { current_password: PASSWORD }; // what adding a way in asks first (no TOTP on yet)
  let made = 0;
  const newUser = async () => {
    const username = `bench_2f_${made++}_${Math.random().toString(36).slice(2, 8)}`;
    const { access_token } = await send(API_PORT, "POST", "/register", { body: { username, password: PASSWORD } });
    renew(access_token);
    return { username, token: access_token };
  };
  const fresh = (count, make) =>
    inParallel(
      Array.from({ length: count }, () => ({})),
      async (item) => Object.assign(item, await make()),
    );
  const signedIn = (what) => (answer) => {
    if (!answer?.access_token) throw new Error(`${what} answered without tokens: ${JSON.stringify(answer).slice(0, 200)}`);
  };
  const signIn = async (u) => {
    const answer = await send(API_PORT, "POST", "/login", { body: { username: u.username, password: PASSWORD } });
    if (answer?.mfa_required !== true) throw new Error("POST /login with TOTP on answered without a challenge");
    u.challenge = answer.challenge;
  };

  for (let round = 0; round < ROUNDS; round++) {
    if (runs["mfa-setup"]) {
      const tokens = (await fresh(CONCURRENCY, newUser)).map((u) => u.token);
      await timed("mfa-setup", (loop) => send(API_PORT, "POST", "/mfa/totp/setup", { token: tokens[loop], body: freshCheck }));
    }
    if (runs["passkey-options"]) await timed("passkey-options", () => send(API_PORT, "POST", "/passkeys/login/options"));

    if (runs["mfa-login"] || runs["mfa-code"] || runs["mfa-recovery"]) {
      const users = await fresh(COUNT + CONCURRENCY, async () => {
        const user = await newUser();
        const key = fromBase32((await send(API_PORT, "POST", "/mfa/totp/setup", { token: user.token, body: freshCheck })).secret);
        const { recovery_codes } = await send(API_PORT, "POST", "/mfa/totp/enable", { token: user.token, body: { code: await totpCode(key, new Date()) } });
        return { ...user, key, recovery: recovery_codes };
      });
      await step("mfa-login", users, signIn);
      if (runs["mfa-code"]) {
        // The next step's code: later than the step enable used up, and good (±1 step) for 60 s more.
        const at = new Date(Date.now() + 30_000);
        for (const u of users) u.code = await totpCode(u.key, at);
        await step("mfa-code", users, async (u) =>
          signedIn("POST /login/mfa")(await send(API_PORT, "POST", "/login/mfa", { body: { challenge: u.challenge, code: u.code } })),
        );
        await inParallel(users, signIn);
      }
      if (runs["mfa-recovery"]) {
        await step("mfa-recovery", users, async (u) =>
          signedIn("POST /login/mfa")(await send(API_PORT, "POST", "/login/mfa", { body: { challenge: u.challenge, recovery_code: u.recovery[0] } })),
        );
      }
    }

    if (runs["passkey-register"] || runs["passkey-login"]) {
      const owners = await fresh(COUNT + CONCURRENCY, async () => {
        const user = await newUser();
        const { options } = await send(API_PORT, "POST", "/passkeys/register/options", { token: user.token, body: freshCheck });
        const authenticator = new SoftAuthenticator(WEBAUTHN_ORIGIN, WEBAUTHN_RP_ID);
        return { ...user, authenticator, credential: await authenticator.register(options) };
      });
      await step("passkey-register", owners, (o) =>
        send(API_PORT, "POST", "/passkeys/register/verify", { token: o.token, body: { response: o.credential, name: "bench" } }),
      );
      if (runs["passkey-login"]) {
        await inParallel(owners, async (o) => {
          const { options } = await send(API_PORT, "POST", "/passkeys/login/options");
          o.assertion = await o.authenticator.assert(options);
        });
        await step("passkey-login", owners, async (o) =>
          signedIn("POST /passkeys/login/verify")(await send(API_PORT, "POST", "/passkeys/login/verify", { body: { response: o.assertion } })),
        );
      }
    }
  }
  return Object.fromEntries(asked.map((key) => [key, summarize(runs[key])]));
}

try {
  await main();
} catch (error) {
  console.error(`bench: ${error.message}`);
  process.exitCode = 1;
} finally {
  stop();
  rmSync(state, { recursive: true, force: true });
}
