import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { housekeeping } from "../src/cron";
import { call, login, refreshWith, registerUser, sidOf } from "./helpers";

const DAY = 24 * 60 * 60 * 1000;
const count = async (sql: string, ...args: unknown[]) =>
  (await env.DB.prepare(sql)
    .bind(...args)
    .first<{ n: number }>())!.n;

describe("daily housekeeping", () => {
  it("drops sessions expired or revoked over a day ago, with their rotation history; keeps the rest", async () => {
    const reg = await registerUser();
    await refreshWith(reg.refresh_token); // one row of rotation history
    const revoked = await login(reg.input.username);
    await call("POST", "/logout", { token: revoked.body.access_token });
    const live = await login(reg.input.username);

    // Nothing is a day dead yet.
    expect((await housekeeping(env)).sessions).toBe(0);

    await env.DB.prepare("UPDATE sessions SET expires_at = ? WHERE id = ?")
      .bind(Date.now() - 2 * DAY, sidOf(reg.access_token))
      .run();
    const { sessions: deleted } = await housekeeping(env, new Date(Date.now() + DAY + 1000));
    expect(deleted).toBe(2); // the expired one and the logged-out one
    expect(await count("SELECT count(*) AS n FROM sessions WHERE id = ?", sidOf(live.body.access_token))).toBe(1);
    expect(await count("SELECT count(*) AS n FROM rotated_refresh_tokens WHERE session_id = ?", sidOf(reg.access_token))).toBe(0);
    expect((await refreshWith(live.body.refresh_token)).status).toBe(200);
  });

  it("drops audit rows older than AUDIT_RETENTION_DAYS (90), keeps newer ones", async () => {
    const reg = await registerUser();
    const count = async () => (await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE user_id = ?").bind(reg.user.id).first<{ n: number }>())!.n;
    expect(await count()).toBe(1); // register
    await housekeeping(env, new Date(Date.now() + 89 * DAY));
    expect(await count()).toBe(1);
    await housekeeping(env, new Date(Date.now() + 91 * DAY));
    expect(await count()).toBe(0);
  });

  it("drops mailed links used or expired over a day ago, with the former addresses they went to", async () => {
    const reg = await registerUser({ email: `cron_${Date.now()}@example.com` });
    const links = () => count("SELECT count(*) AS n FROM account_tokens WHERE user_id = ?", reg.user.id);
    expect(await links()).toBe(1); // the verification link
    await env.DB.prepare(
      "INSERT INTO account_tokens (token_hash, user_id, purpose, email, created_at, expires_at) VALUES (?, ?, 'change_email', 'former@example.com', ?, ?)",
    )
      .bind(`h${Date.now()}`, reg.user.id, Date.now(), Date.now() + DAY)
      .run();
    expect((await housekeeping(env)).links).toBe(0);
    const { links: deleted } = await housekeeping(env, new Date(Date.now() + 2 * DAY + 1000));
    expect(deleted).toBe(2);
    expect(await links()).toBe(0);
  });
});
