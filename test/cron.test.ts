import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { housekeeping } from "../src/cron";
import { call, login, PASSWORD, refreshWith, registerUser, sidOf, uniqueName } from "./helpers";
import { createOrg } from "./orgs";
import { start } from "./social";

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

describe("housekeeping of what anonymous callers grow", () => {
  it("drops social sign-in flows a day after they (and their one-time code) expired, used or not", async () => {
    const flows = () => count("SELECT count(*) AS n FROM oauth_flows");
    await start("local");
    await start("local");
    const all = await flows();
    expect(all).toBeGreaterThanOrEqual(2);
    // Expired (10 minutes) but not yet a day past that: kept for investigation.
    expect((await housekeeping(env, new Date(Date.now() + 11 * 60_000))).flows).toBe(0);
    const { flows: deleted } = await housekeeping(env, new Date(Date.now() + DAY + 11 * 60_000));
    expect(deleted).toBe(all);
    expect(await flows()).toBe(0);
  });

  describe("with REQUIRE_VERIFIED_EMAIL on: accounts that never proved their address", () => {
    const verifyFirst = { ...env, REQUIRE_VERIFIED_EMAIL: "on" } as Env;
    const signUp = async (bindings: Partial<Env> = { REQUIRE_VERIFIED_EMAIL: "on" }) => {
      const email = `${uniqueName("squat")}@example.com`;
      const res = await call("POST", "/register", { body: { username: uniqueName(), email, password: PASSWORD }, bindings });
      expect(res.status, res.text).toBe(201);
      return { id: res.body.user.id as string, email };
    };
    const exists = async (id: string) => (await count("SELECT count(*) AS n FROM users WHERE id = ?", id)) === 1;
    const pastDeadline = () => new Date(Date.now() + 7 * DAY + 1000);

    it("are removed once UNVERIFIED_ACCOUNT_DAYS (7) passed, with their links, and the address signs up again", async () => {
      const squatter = await signUp();
      expect(await count("SELECT count(*) AS n FROM account_tokens WHERE user_id = ?", squatter.id)).toBe(1);
      expect((await housekeeping(verifyFirst, new Date(Date.now() + 6 * DAY))).unverifiedAccounts).toBe(0);
      expect(await exists(squatter.id)).toBe(true);
      await housekeeping(verifyFirst, pastDeadline());
      expect(await exists(squatter.id)).toBe(false);
      expect(await count("SELECT count(*) AS n FROM account_tokens WHERE user_id = ?", squatter.id)).toBe(0);
      expect(await count("SELECT count(*) AS n FROM audit_events WHERE event = 'unverified_accounts_removed'")).toBeGreaterThanOrEqual(1);
      const again = await call("POST", "/register", { body: { username: uniqueName(), email: squatter.email, password: PASSWORD } });
      expect(again.status, again.text).toBe(201);
    });

    it("keep accounts that proved their address, went further, were disabled, or signed up without the rule", async () => {
      const verified = await signUp();
      await env.DB.prepare("UPDATE users SET email_verified_at = ? WHERE id = ?").bind(Date.now(), verified.id).run();
      const disabled = await signUp();
      await env.DB.prepare("UPDATE users SET disabled_at = ? WHERE id = ?").bind(Date.now(), disabled.id).run();
      const admin = await signUp();
      await env.DB.prepare(`UPDATE users SET roles = '["user","admin"]' WHERE id = ?`).bind(admin.id).run();
      // An account made while the setting was off has a session and no deadline.
      const before = await signUp({});
      await housekeeping(verifyFirst, pastDeadline());
      for (const kept of [verified, disabled, admin, before]) expect(await exists(kept.id), kept.email).toBe(true);
    });

    it("are kept while the setting is off (they can sign in then)", async () => {
      const squatter = await signUp();
      expect((await housekeeping(env, pastDeadline())).unverifiedAccounts).toBe(0);
      expect(await exists(squatter.id)).toBe(true);
    });
  });
});

describe("empty organizations", () => {
  it("are removed a day after their last member's account went, with their keys; an organization with a member stays", async () => {
    const gone = await registerUser();
    const stays = await registerUser();
    const emptyOrg = await createOrg(gone.access_token);
    const keptOrg = await createOrg(stays.access_token);
    await env.DB.prepare("INSERT INTO api_keys (id, key_hash, start, name, org_id, created_by, scopes, created_at) VALUES (?, ?, 'eak_x', 'k', ?, ?, '[]', ?)")
      .bind(crypto.randomUUID(), crypto.randomUUID(), emptyOrg, gone.user.id, Date.now())
      .run();
    // The account deletion's effect on the organization: its membership goes by cascade.
    await env.DB.prepare("DELETE FROM users WHERE id = ?").bind(gone.user.id).run();

    await housekeeping(env); // created less than a day ago: kept
    expect(await count("SELECT count(*) AS n FROM organizations WHERE id = ?", emptyOrg)).toBe(1);
    const { emptyOrganizations } = await housekeeping(env, new Date(Date.now() + DAY + 1000));
    expect(emptyOrganizations).toBeGreaterThanOrEqual(1);
    expect(await count("SELECT count(*) AS n FROM organizations WHERE id = ?", emptyOrg)).toBe(0);
    expect(await count("SELECT count(*) AS n FROM api_keys WHERE org_id = ?", emptyOrg)).toBe(0);
    expect(await count("SELECT count(*) AS n FROM organizations WHERE id = ?", keptOrg)).toBe(1);
  });
});
