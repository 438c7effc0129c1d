// The soak's report: a table per flow and route (count, p50, p95, p99, statuses), the checks' tallies,
// every failure once with how often, and one `SOAK_JSON {...}` line. Never a token.
import { count, report } from "./client.mjs";

const pct = (sorted, p) => Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? 0);
const list = (o) =>
  Object.entries(o)
    .map(([k, v]) => `${k}:${v}`)
    .join(" ");

/**
 * Prints the report and answers whether the run passed. `extra` is { name: value } lines for the
 * checks (each also in the JSON); any 5xx other than 503 with Retry-After fails the run.
 */
export function printReport({ title, secs, extra, json }) {
  const { stats, failures } = report();
  const routes = {};
  const statuses = {};
  let total = 0;
  for (const [route, s] of [...stats].sort()) {
    const ms = s.ms.sort((a, b) => a - b);
    const n = Object.values(s.status).reduce((a, b) => a + b, 0);
    total += n;
    routes[route] = { n, p50: pct(ms, 0.5), p95: pct(ms, 0.95), p99: pct(ms, 0.99), status: s.status };
    for (const [st, k] of Object.entries(s.status)) {
      statuses[st] = (statuses[st] ?? 0) + k;
      if (Number(st) >= 500 || st === "network_error") failures.set(`${route}: answered ${st}`, { n: k, where: "" });
    }
  }
  const nFailures = [...failures.values()].reduce((a, f) => a + f.n, 0);
  const ok = nFailures === 0;
  const rps = +(total / secs).toFixed(1);
  console.log(`\nsoak ${ok ? "PASS" : "FAIL"}: ${title}`);
  console.log(`duration ${secs.toFixed(1)} s, ${total} requests, ${rps} req/s`);
  const width = Math.max(30, ...Object.keys(routes).map((r) => r.length + 2));
  console.log(`${"flow: route".padEnd(width)}${["count", "p50", "p95", "p99"].map((h) => h.padStart(7)).join("")}  statuses (latency in ms)`);
  for (const [route, r] of Object.entries(routes))
    console.log(`${route.padEnd(width)}${[r.n, r.p50, r.p95, r.p99].map((v) => String(v).padStart(7)).join("")}  ${list(r.status)}`);
  console.log(`statuses: ${list(statuses)}`);
  console.log(`503 with Retry-After: ${count.retried} requests, completed by a retry: ${count.retriesCompleted}`);
  for (const [k, v] of Object.entries(extra)) console.log(`${k}: ${v}`);
  for (const [what, f] of failures) console.log(`  FAIL x${f.n} ${what}${f.where ? ` (first: ${f.where})` : ""}`);
  const summary = { result: ok ? "PASS" : "FAIL", duration_s: +secs.toFixed(1), requests: total, rps, statuses, ...json, failures: nFailures, routes };
  summary.retried = count.retried;
  summary.retries_completed = count.retriesCompleted;
  console.log(`SOAK_JSON ${JSON.stringify(summary)}`);
  return ok;
}
