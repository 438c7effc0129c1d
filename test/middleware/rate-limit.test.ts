import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { beforeAll, describe, expect, it } from "vitest";
import type { AppEnv } from "../../src/env";
import { onError } from "../../src/errors";
import { everyAnswer } from "../../src/middleware/every-answer";
import { enforceLimit, limitByIp } from "../../src/middleware/rate-limit";
import { inOneLimiterWindow, randomIp } from "../helpers";

// The real limiter bindings (wrangler.toml [[ratelimits]]: REGISTER_IP_LIMITER 10, MAIL_LIMITER 5 per minute).
let reached = 0;
const app = new Hono<AppEnv>();
app.use(everyAnswer);
app.post("/by-ip", limitByIp("REGISTER_IP_LIMITER"), (c) => {
  reached++;
  return c.json({ ok: true });
});
app.post("/by-key/:key", async (c) => {
  await enforceLimit(c, "MAIL_LIMITER", c.req.param("key"));
  return c.json({ ok: true });
});
app.onError(onError);
const post = (path: string, ip = randomIp()) => app.request(path, { method: "POST", headers: { "cf-connecting-ip": ip } }, env);

async function expectLimited(res: Response) {
  expect(res.status).toBe(429);
  expect(res.headers.get("retry-after")).toBe("60");
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(await res.json()).toEqual({ error: "rate_limited", message: expect.any(String) });
}

// The tests fill budgets within one limiter window (together they take a second or two), wherever in a minute they start.
beforeAll(() => inOneLimiterWindow(), 20_000);

describe("limitByIp", () => {
  it("lets a client through within its budget, then answers 429 with Retry-After before the route runs; others pass", async () => {
    const ip = randomIp();
    reached = 0;
    for (let i = 0; i < 10; i++) expect((await post("/by-ip", ip)).status).toBe(200);
    await expectLimited(await post("/by-ip", ip));
    expect(reached).toBe(10);
    expect((await post("/by-ip")).status).toBe(200);
  });

  it("keys IPv6 clients by their /64: other addresses of the prefix share the budget, another prefix does not", async () => {
    const prefix = `2001:db8:${Math.floor(Math.random() * 65535).toString(16)}:9`;
    for (let i = 0; i < 10; i++) expect((await post("/by-ip", `${prefix}::${i + 1}`)).status).toBe(200);
    await expectLimited(await post("/by-ip", `${prefix}:1:2:3:4`));
    expect((await post("/by-ip", `${prefix.replace(/:9$/, ":a")}::1`)).status).toBe(200);
  });

  it("writes one rate_limited audit row per limiter and key in a period, however many requests it refuses", async () => {
    const ip = randomIp();
    for (let i = 0; i < 15; i++) await post("/by-ip", ip);
    const rows = await env.DB.prepare("SELECT detail, request_id FROM audit_events WHERE event = 'rate_limited' AND ip = ?")
      .bind(ip)
      .all<{ detail: string; request_id: string }>();
    expect(rows.results.map((r) => JSON.parse(r.detail))).toEqual([{ limiter: "REGISTER_IP_LIMITER", key: `ip:${ip}` }]);
    expect(rows.results[0]!.request_id).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("enforceLimit", () => {
  it("counts per the key it is given, whatever the address", async () => {
    const key = `mail:${crypto.randomUUID()}`;
    for (let i = 0; i < 5; i++) expect((await post(`/by-key/${key}`)).status).toBe(200);
    await expectLimited(await post(`/by-key/${key}`));
    expect((await post(`/by-key/mail:${crypto.randomUUID()}`)).status).toBe(200);
  });
});
