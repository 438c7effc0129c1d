// `npm run bench:forgot` (wrap it: `flock /tmp/edge-auth-ports.lock npm run bench:forgot`): does
// POST /password/forgot answer in the same time whatever the address? Starts the worker under
// `wrangler dev` on a port of its own (8798) with fresh local state, registers one account per pair,
// then sends BENCH_PAIRS (30) interleaved pairs, a known address (an account's, each used once, so
// every one gets its link and mail) and an unknown one, alternating which goes first, with a pause
// around each so every answer is timed on its own. Prints the median answer time of each, and their
// ratio. Prints and records; asserts nothing (a loaded machine moves these numbers: docs/performance.md).
//   BENCH_PAIRS (30), BENCH_PAUSE_MS (250), BENCH_PATH (/password/forgot, or /email/verify/request).

import { mkdtempSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import os from "node:os";
import path from "node:path";
import { prepareState, start, stop, waitFor } from "./servers.mjs";

const PORT = 8798;
const PAIRS = Number(process.env.BENCH_PAIRS ?? 30);
const PAUSE_MS = Number(process.env.BENCH_PAUSE_MS ?? 250);
const ROUTE = process.env.BENCH_PATH ?? "/password/forgot";
const state = mkdtempSync(path.join(os.tmpdir(), "bench-forgot-"));
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let ip = 0;
/** One request from its own address (the per-client limits never answer instead); its status and time in ms. */
function send(method, pathname, body) {
  const n = ip++;
  const headers = { "cf-connecting-ip": `10.77.${(n >> 8) & 255}.${n & 255}`, "content-type": "application/json", "user-agent": "bench" };
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: PORT, method, path: pathname, headers, agent }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, ms: performance.now() - t0 }));
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

async function timed(email) {
  await sleep(PAUSE_MS);
  const { status, ms } = await send("POST", ROUTE, { email });
  if (status !== 202) throw new Error(`${ROUTE} answered ${status}`);
  return ms;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const quartiles = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return [s[Math.floor(s.length / 4)], s[Math.floor((3 * s.length) / 4)]];
};

async function main() {
  prepareState(state);
  const vars = ["ISSUER:http://localhost:8798", "APP_URL:http://localhost:5173/", "LOG_REQUESTS:off", "REQUIRE_VERIFIED_EMAIL:off"];
  start("wrangler", ["dev", "--port", String(PORT), "--persist-to", state, ...vars.flatMap((v) => ["--var", v])], { quiet: true });
  await waitFor(`http://localhost:${PORT}/health`, "the API");

  // One account per pair (and a few for the warm-up): a known address is asked for once.
  const run = Date.now().toString(36);
  const known = [];
  for (let i = 0; i < PAIRS + 3; i++) {
    const email = `bench_${run}_${i}@example.com`;
    const res = await send("POST", "/register", { username: `bench_${run}_${i}`, email, password: "bench password 1" });
    if (res.status !== 201) throw new Error(`POST /register answered ${res.status}`);
    known.push(email);
  }
  const unknown = (i) => `nobody_${run}_${i}@example.com`;
  for (let i = 0; i < 3; i++) {
    await timed(known.pop());
    await timed(unknown(`warm${i}`));
  }

  const times = { known: [], unknown: [] };
  for (let i = 0; i < PAIRS; i++) {
    const order = i % 2 ? ["known", "unknown"] : ["unknown", "known"];
    for (const kind of order) times[kind].push(await timed(kind === "known" ? known[i] : unknown(i)));
  }
  // The deferred or queued work of the last requests finishes before the worker is stopped.
  await sleep(2000);

  const fmt = (n) => n.toFixed(2);
  const [k, u] = [median(times.known), median(times.unknown)];
  console.log(`${ROUTE}, ${PAIRS} interleaved pairs, ${PAUSE_MS} ms apart (wrangler dev, local):`);
  for (const kind of ["known", "unknown"]) {
    const [q1, q3] = quartiles(times[kind]);
    console.log(`  ${kind.padEnd(7)} address: median ${fmt(median(times[kind]))} ms (quartiles ${fmt(q1)} to ${fmt(q3)} ms)`);
  }
  console.log(`  ratio known / unknown: ${fmt(k / u)}x`);
  console.log(
    `  machine: ${os.cpus()[0]?.model ?? "?"}, ${os.cpus().length} cores, load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}, Node ${process.version}`,
  );
}

try {
  await main();
} catch (error) {
  console.error(`bench:forgot: ${error.message}`);
  process.exitCode = 1;
} finally {
  stop();
  rmSync(state, { recursive: true, force: true });
}
