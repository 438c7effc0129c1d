// `npm run soak`: a bounded soak of the whole product, not part of `npm test`. It starts its own
// wrangler dev (fresh local state, every way in switched on: soak/server.mjs) and runs simulated
// clients of every flow in soak/flows/ at once, each for SOAK_ROUNDS rounds or more: meanwhile
// soak/faults.mjs injects its faults one after another, and every client goes on until the whole cycle
// has run and one more round of its own started after it (recovery). Then it checks what the product
// promises (soak/sessions.mjs, the faults' and the flows' own checks, D1's counts) and prints a table
// per flow and one `SOAK_JSON {...}` line. Exits 0 only if every check holds.
// Env: SOAK_CLIENTS (clients per flow, default 8), SOAK_ROUNDS (default 3), SOAK_TIMEOUT (s, default 480),
// SOAK_SHORT=1 (CI's short form: 3 clients per flow, 2 rounds).
// SOAK_ONLY=social,mail runs only the flows named.
import { copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runId, setBase, stop } from "./soak/client.mjs";
import * as faults from "./soak/faults.mjs";
import * as guests from "./soak/flows/guests.mjs";
import * as keys from "./soak/flows/keys.mjs";
import * as mail from "./soak/flows/mail.mjs";
import * as oauth from "./soak/flows/oauth.mjs";
import * as orgs from "./soak/flows/orgs.mjs";
import * as passkeys from "./soak/flows/passkeys.mjs";
import * as password from "./soak/flows/password.mjs";
import * as social from "./soak/flows/social.mjs";
import * as totp from "./soak/flows/totp.mjs";
import { setLog } from "./soak/mailbox.mjs";
import { printReport } from "./soak/report.mjs";
import { d1, startServer, stopServer } from "./soak/server.mjs";
import { finalCheck, liveCount, revokedCount, tally } from "./soak/sessions.mjs";

const int = (name, def, min, max) => {
  const v = process.env[name] ? Number(process.env[name]) : def;
  if (Number.isInteger(v) && v >= min && v <= max) return v;
  console.error(`soak: ${name} must be an integer from ${min} to ${max}`);
  process.exit(2);
};
const SHORT = process.env.SOAK_SHORT === "1";
const CLIENTS = int("SOAK_CLIENTS", SHORT ? 3 : 8, 1, 100);
const ROUNDS = int("SOAK_ROUNDS", SHORT ? 2 : 3, 1, 10);
const TIMEOUT_S = int("SOAK_TIMEOUT", 480, 10, 900);
// Every flow: { name, run(i, round), expectedRows?(), tally? }.
const FLOWS = [password, totp, passkeys, social, mail, oauth, orgs, keys, guests].filter(
  (f) => !process.env.SOAK_ONLY || process.env.SOAK_ONLY.split(",").includes(f.name),
);

let t0 = performance.now();
const rounds = {}; // client -> rounds it ran
let serverLog;
let finishing = false;
async function finish(code, reason) {
  if (finishing) return;
  finishing = true;
  stop.abort();
  const { fail } = await import("./soak/client.mjs");
  if (reason) fail(reason);
  const extra = {
    "refresh races": `${tally.races}, exactly one winner: ${tally.winners}`,
    "revoked sessions": `${revokedCount()}; tokens refused right after: ${tally.revokedNow}; at the end: ${tally.finalAccess} access, ${tally.finalRefresh} refresh`,
    "live sessions at the end": `${liveCount()}, each refreshed: ${tally.liveChecked}`,
  };
  const json = { clients_per_flow: CLIENTS, rounds: ROUNDS, flows: FLOWS.map((f) => f.name), races: tally.races, race_winners: tally.winners };
  const ran = Object.values(rounds);
  Object.assign(json, { faults: faults.injected, fault_checks: faults.tally, rounds_run: { min: Math.min(...ran), max: Math.max(...ran) } });
  for (const f of faults.injected) extra[`fault at ${f.at_s} s`] = `${f.what} (${f.for_s} s): ${f.detail}`;
  extra["fault checks"] = JSON.stringify(faults.tally);
  extra["rounds run per client"] = `${json.rounds_run.min} to ${json.rounds_run.max}`;
  Object.assign(json, { revoked_sessions: revokedCount(), live_sessions: liveCount() });
  for (const f of FLOWS) if (f.tally) extra[`${f.name}`] = JSON.stringify(f.tally);
  if (code === 0) Object.assign(extra, checkRows(fail));
  const ok = printReport({
    title: `${CLIENTS} clients per flow x ${ROUNDS} rounds, flows: ${json.flows.join(", ")}`,
    secs: (performance.now() - t0) / 1000,
    extra,
    json,
  });
  // A 500's cause is in the server's log (names and messages, never a value): kept beside the report.
  if (!ok && serverLog) {
    const kept = join(tmpdir(), `soak-${runId}-wrangler.log`);
    copyFileSync(serverLog, kept);
    console.log(`server log kept: ${kept}`);
  }
  await stopServer().catch(() => {});
  process.exit(ok && code === 0 ? 0 : 1);
}

/** D1 at the end holds what the clients expect (each flow's rows). */
function checkRows(fail) {
  const lines = {};
  for (const f of FLOWS) {
    for (const [label, sql, expected] of f.expectedRows?.() ?? []) {
      const n = d1(sql)[0]?.n;
      lines[`D1 ${label}`] = `${n} (expected ${expected})`;
      if (n !== expected) fail(`D1 ${label}: ${n}, expected ${expected}`);
    }
  }
  return lines;
}

for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => finish(130, `interrupted (${sig})`));
process.on("uncaughtException", (e) => finish(1, `uncaught: ${e.message}`));

async function main() {
  console.error("soak: starting wrangler dev with fresh local state");
  const { base, log } = await startServer(faults.VARS);
  serverLog = log;
  setBase(base);
  setLog(log);
  console.error(`soak: ${base}: ${FLOWS.length} flows x ${CLIENTS} clients x ${ROUNDS} rounds (hard timeout ${TIMEOUT_S} s)`);
  t0 = performance.now();
  const { fail } = await import("./soak/client.mjs");
  // SOAK_ROUNDS at the least, and on until a round that started after the last fault has run.
  const client = async (flow, i) => {
    for (let round = 0; ; round++) {
      const afterFaults = faults.faultsDone();
      try {
        await flow.run(i, round);
      } catch (e) {
        if (!stop.signal.aborted) fail(`${flow.name}: ${e.message}`, `${flow.name} client${i} round ${round}`);
        return;
      }
      rounds[`${flow.name}${i}`] = round + 1;
      if (round + 1 >= ROUNDS && afterFaults) return;
    }
  };
  await Promise.all([faults.runFaults(t0), ...FLOWS.flatMap((flow) => Array.from({ length: CLIENTS }, (_, i) => client(flow, i)))]);
  await finalCheck();
}

setTimeout(() => finish(1, `hard timeout: aborted after ${TIMEOUT_S} s`), TIMEOUT_S * 1000).unref();
main().then(
  () => finish(0),
  (e) => finish(1, e.message),
);
