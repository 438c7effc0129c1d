import { env, exports } from "cloudflare:workers";
import { it } from "vitest";
import { hashPassword, verifyPassword } from "../../src/auth/passwords";
import { isRevoked } from "../../src/auth/revocations";
import { signAccessToken, verifyAccessToken } from "../../src/auth/tokens";
import { getConfig } from "../../src/config";

/**
 * Benchmark, not a test: `npm run bench` prints wall times inside local workerd, a proxy for the
 * CPU time Workers bills (the free plan allows 10 ms a request). Local D1/KV calls are in-process,
 * so routes that touch them read faster here than at the edge. Nothing here asserts a speed.
 */

// workerd's clock ticks in whole milliseconds, so time a batch and report the mean per call.
async function measure(name: string, runs: number, fn: () => Promise<unknown>) {
  await fn(); // warm-up: key import, JIT
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) await fn();
  return { name, runs, mean_ms: ((performance.now() - t0) / runs).toFixed(3) };
}

it("benchmark", { timeout: 120_000 }, async () => {
  const config = getConfig(env);
  const options = { iterations: config.PASSWORD_ITERATIONS, pepper: config.PASSWORD_PEPPER };
  const claims = { userId: "bench-user", username: "bench", roles: ["user"], sessionId: "bench-session", epoch: 0, emailVerified: false, now: new Date(), expiresAt: new Date(Date.now() + 900_000) };
  const { token } = await signAccessToken(config, claims);
  const stored = await hashPassword("bench password 1", options);
  // Each call from its own address, and logins spread over users, so no rate limit answers instead.
  let n = 0;
  const call = async (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set("cf-connecting-ip", `10.1.${Math.floor(n / 250) % 250}.${n++ % 250}`);
    const res = await exports.default.fetch(new Request(`http://localhost${path}`, { ...init, headers }));
    if (!res.ok) throw new Error(`${path} answered ${res.status}: the benchmark would time an error`);
    return res;
  };
  const json = (body: unknown) => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const users = Array.from({ length: 8 }, (_, i) => `bench_user_${i}`);
  for (const username of users) await call("/register", json({ username, password: "bench password 1" }));
  let turn = 0;

  const rows = [
    await measure("verifyAccessToken (ES256)", 2000, () => verifyAccessToken(config, token)),
    await measure("isRevoked (1 KV bulk read)", 2000, () => isRevoked(env.REVOKED, { sub: "u", sid: "s", epoch: 0 })),
    await measure("GET /protected (whole request)", 2000, () => call("/protected", { headers: { authorization: `Bearer ${token}` } })),
    await measure("signAccessToken", 2000, () => signAccessToken(config, claims)),
    await measure(`verifyPassword (PBKDF2 ${options.iterations})`, 30, () => verifyPassword("bench password 1", stored, options)),
    await measure("POST /login (whole request)", 40, () => call("/login", json({ username: users[turn++ % users.length], password: "bench password 1" }))),
  ];
  // stderr, apart from the request log lines on stdout.
  const lines = rows.map((r) => `| ${r.name.padEnd(36)} | ${String(r.runs).padStart(5)} | ${r.mean_ms.padStart(7)} |`);
  console.error(["| operation                            |  runs | mean ms |", "|---|---:|---:|", ...lines].join("\n"));
});
