import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { needs } from "../src/auth/core/ways-in";
import { housekeeping } from "../src/cron";
import { claimsOf, newGuest, startGuest, uniqueEmail, userRow } from "./guests";
import {
  call,
  d1WriteBeforeBatch,
  expectError,
  inOneLimiterWindow,
  login,
  mailbox,
  PASSWORD,
  randomIp,
  refreshWith,
  registerUser,
  uniqueName,
} from "./helpers";

/**
 * Guests (docs/guests.md): creation (off, on, cookie mode, per-client limit, Turnstile), the upgrade by
 * address and password keeping the id and what is stored under it, its refusals with the guest intact,
 * its race, the claim gone after it, and the cron's idle rule. The route groups a guest is refused are
 * in test/guests-limits.test.ts; a passkey or a provider as the first way in in test/guests-ways-in.test.ts.
 */

const guestCount = async () => (await env.DB.prepare("SELECT count(*) AS n FROM users WHERE is_guest = 1").first<{ n: number }>())!.n;

describe("starting a guest", () => {
  it("is 404 while GUESTS is off (the default)", async () => {
    const before = await guestCount();
    expectError(await call("POST", "/guests"), 404, "not_found");
    expect(await guestCount()).toBe(before);
  });

  it("answers 201 with a signed-in account that has its own id and nothing else; the token says guest, amr guest", async () => {
    const res = await startGuest();
    expect(res.status, res.text).toBe(201);
    expect(res.body.user).toMatchObject({ username: null, email: null, email_verified: false, roles: ["user"] });
    expect(res.body.refresh_token).toEqual(expect.any(String));
    const claims = claimsOf(res.body.access_token);
    expect(claims).toMatchObject({ sub: res.body.user.id, guest: true, amr: ["guest"], roles: ["user"] });
    expect(claims.username).toBeUndefined();
    expect(await userRow(res.body.user.id)).toMatchObject({ username: "", email: null, password_hash: "", is_guest: 1 });
    // Two guests are two accounts.
    expect((await startGuest()).body.user.id).not.toBe(res.body.user.id);
    // A guest's session works like any other: its refresh keeps the claim; /me and /protected answer.
    const refreshed = await refreshWith(res.body.refresh_token);
    expect(refreshed.status, refreshed.text).toBe(200);
    expect(claimsOf(refreshed.body.access_token)).toMatchObject({ sub: res.body.user.id, guest: true, amr: ["guest"] });
    expect((await call("GET", "/me", { token: refreshed.body.access_token })).body.user.id).toBe(res.body.user.id);
    expect((await call("GET", "/protected", { token: refreshed.body.access_token })).status).toBe(200);
    // A member's token carries no guest claim.
    expect(claimsOf((await registerUser()).access_token).guest).toBeUndefined();
  });

  it("in cookie mode sets the refresh cookie instead of returning it, for an allowed origin", async () => {
    const res = await startGuest({ body: { use_cookie: true }, headers: { origin: "http://localhost:5173" } });
    expect(res.status, res.text).toBe(201);
    expect(res.body.refresh_token).toBeUndefined();
    expect(res.headers.get("set-cookie")).toMatch(/refresh_token=[^;]+;.*HttpOnly/);
    expectError(await startGuest({ body: { use_cookie: true }, headers: { origin: "https://evil.example" } }), 403, "forbidden");
  });

  it("is limited per client address (GUEST_IP_LIMITER): the 11th in a minute is 429, another client still starts one", async () => {
    await inOneLimiterWindow();
    const ip = randomIp();
    for (let i = 0; i < 10; i++) expect((await startGuest({ headers: { "cf-connecting-ip": ip } })).status).toBe(201);
    const before = await guestCount();
    const refused = await startGuest({ headers: { "cf-connecting-ip": ip } });
    expectError(refused, 429, "rate_limited");
    expect(refused.headers.get("retry-after")).toBe("60");
    expect(await guestCount()).toBe(before);
    expect((await startGuest()).status).toBe(201);
  }, 30_000);

  it("takes a Turnstile token when TURNSTILE_SECRET is set: none is 400 turnstile_required, nothing made", async () => {
    const before = await guestCount();
    const turnstileOn = { TURNSTILE_SECRET: "test-secret" } as Partial<Env>;
    expectError(await startGuest({ bindings: turnstileOn }), 400, "turnstile_required");
    // A token siteverify refuses (the local stand-in, test/vitest.config.ts), and siteverify unreachable: fails closed.
    expectError(await startGuest({ bindings: turnstileOn, headers: { "cf-turnstile-response": "token" } }), 403, "turnstile_failed");
    const unreachable = { ...turnstileOn, TURNSTILE_VERIFY_URL: "http://127.0.0.1:9/siteverify" } as Partial<Env>;
    expectError(await startGuest({ bindings: unreachable, headers: { "cf-turnstile-response": "pass" } }), 503, "turnstile_unavailable");
    expect(await guestCount()).toBe(before);
  });

  it("is refused by config while every address must be verified first (a guest has none)", async () => {
    const res = await startGuest({ bindings: { REQUIRE_VERIFIED_EMAIL: "on" } as Partial<Env> });
    expectError(res, 500, "internal_error");
  });
});

const upgrade = (token: string, body: Record<string, unknown>) => mailbox().send("POST", "/guests/upgrade", { token, body });

describe("upgrading with an address and a password", () => {
  it("keeps the account id, its sessions and its records; the guest claim goes now and at every refresh", async () => {
    const box = mailbox();
    const guest = await newGuest();
    const id = guest.user.id;
    const email = uniqueEmail();
    const res = await box.send("POST", "/guests/upgrade", { token: guest.access_token, body: { email, password: PASSWORD } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.user).toMatchObject({ id, email, email_verified: false, username: null });
    expect(res.body.refresh_token).toBeUndefined(); // the session keeps its own
    const claims = claimsOf(res.body.access_token);
    expect(claims).toMatchObject({ sub: id, sid: claimsOf(guest.access_token).sid });
    expect(claims.guest).toBeUndefined();
    expect(await userRow(id)).toMatchObject({ email, is_guest: 0 });
    // The usual verification mail went to the new address.
    expect(box.sent.map((m) => m.to)).toContain(email);
    // The guest's session lives on: its refresh token still works, without the claim.
    const refreshed = await refreshWith(guest.refresh_token);
    expect(refreshed.status, refreshed.text).toBe(200);
    expect(claimsOf(refreshed.body.access_token)).toMatchObject({ sub: id });
    expect(claimsOf(refreshed.body.access_token).guest).toBeUndefined();
    // What was stored under the guest is the member's: its audit trail, its session.
    const trail = await env.DB.prepare("SELECT event FROM audit_events WHERE user_id = ? ORDER BY id").bind(id).all<{ event: string }>();
    expect(trail.results.map((r) => r.event)).toEqual(expect.arrayContaining(["register", "guest_upgraded"]));
    const sessions = await call("GET", "/sessions", { token: refreshed.body.access_token });
    expect(sessions.body.sessions.map((s: { id: string }) => s.id)).toContain(claimsOf(guest.access_token).sid);
    // It signs in with the address and the password, as the same account.
    const signedIn = await login(email);
    expect(signedIn.status, signedIn.text).toBe(200);
    expect(signedIn.body.user.id).toBe(id);
    expect(claimsOf(signedIn.body.access_token).amr).toEqual(["pwd"]);
    // And a member may now do what a guest may not.
    expect((await call("GET", "/keys", { token: res.body.access_token })).status).toBe(200);
  });

  it("takes a username too, free regardless of case", async () => {
    const guest = await newGuest();
    const username = uniqueName("gst");
    const res = await upgrade(guest.access_token, { email: uniqueEmail(), password: PASSWORD, username });
    expect(res.status, res.text).toBe(200);
    expect(res.body.user.username).toBe(username);
    expect(claimsOf(res.body.access_token).username).toBe(username);
    expect((await login(username.toUpperCase())).body.user.id).toBe(guest.user.id);
  });

  it("to an address another account has: 409 email_taken, nothing written, the guest still a guest and signed in", async () => {
    const email = uniqueEmail("taken");
    const member = await registerUser({ email });
    const guest = await newGuest();
    expectError(await upgrade(guest.access_token, { email: email.toUpperCase(), password: PASSWORD }), 409, "email_taken");
    expect(await userRow(guest.user.id)).toMatchObject({ email: null, password_hash: "", is_guest: 1, username: "" });
    // Never merged: the member is untouched and its password still signs in to it alone.
    expect((await login(email)).body.user.id).toBe(member.user.id);
    const refreshed = await refreshWith(guest.refresh_token);
    expect(refreshed.status, refreshed.text).toBe(200);
    expect(claimsOf(refreshed.body.access_token)).toMatchObject({ sub: guest.user.id, guest: true });
    // A username taken: the same.
    expectError(await upgrade(guest.access_token, { email: uniqueEmail(), password: PASSWORD, username: member.input.username }), 409, "username_taken");
    expect(await userRow(guest.user.id)).toMatchObject({ email: null, is_guest: 1 });
  });

  it("an address taken between the check and the write: 409 email_taken from the unique index, nothing written", async () => {
    const other = await registerUser({ email: uniqueEmail("other") });
    const guest = await newGuest();
    const email = uniqueEmail("late");
    // Another account takes the address just before the upgrade's batch (the pre-check saw it free).
    const DB = d1WriteBeforeBatch(1, "UPDATE users SET email = ? WHERE id = ?", email, other.user.id);
    expectError(
      await call("POST", "/guests/upgrade", { token: guest.access_token, body: { email, password: PASSWORD }, bindings: { DB } }),
      409,
      "email_taken",
    );
    expect(await userRow(guest.user.id)).toMatchObject({ email: null, password_hash: "", is_guest: 1 });
    const audited = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE user_id = ? AND event = 'guest_upgraded'")
      .bind(guest.user.id)
      .first<{ n: number }>();
    expect(audited!.n).toBe(0);
    expect(claimsOf((await refreshWith(guest.refresh_token)).body.access_token).guest).toBe(true);
  });

  it("two upgrades at once: one wins, the other is 409 already_member, and the account has the winner's address", async () => {
    const guest = await newGuest();
    const [a, b] = [uniqueEmail("a"), uniqueEmail("b")];
    const answers = await Promise.all([
      upgrade(guest.access_token, { email: a, password: PASSWORD }),
      upgrade(guest.access_token, { email: b, password: PASSWORD }),
    ]);
    expect(answers.map((r) => r.status).sort()).toEqual([200, 409]);
    const won = answers.find((r) => r.status === 200)!;
    expectError(answers.find((r) => r.status === 409)!, 409, "already_member");
    expect((await userRow(guest.user.id))?.email).toBe(won.body.user.email);
    const audited = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE user_id = ? AND event = 'guest_upgraded'")
      .bind(guest.user.id)
      .first<{ n: number }>();
    expect(audited!.n).toBe(1);
  });

  it("is for guests only: a member is 409 already_member; bad input is 400 with fields", async () => {
    const member = await registerUser();
    expectError(await upgrade(member.access_token, { email: uniqueEmail(), password: PASSWORD }), 409, "already_member");
    const guest = await newGuest();
    const bad = await upgrade(guest.access_token, { email: "not an address", password: "short" });
    expectError(bad, 400, "validation_failed");
    expect(Object.keys(bad.body.fields)).toEqual(expect.arrayContaining(["email", "password"]));
    expectError(await call("POST", "/guests/upgrade", { body: { email: uniqueEmail(), password: PASSWORD } }), 401, "invalid_token");
  });

  it("a guest deletes itself on its own session (nothing else to prove); a guest with no password is not asked one", async () => {
    const guest = await newGuest();
    const res = await call("DELETE", "/me", { token: guest.access_token, body: {} });
    expect(res.status, res.text).toBe(200);
    expect(await userRow(guest.user.id)).toBeNull();
  });
});

describe("the step-up rule for a guest (auth/core/ways-in.ts needs)", () => {
  const guest = { totpEnabledAt: null, emailVerifiedAt: null, passwordHash: "", isGuest: true };
  const member = { ...guest, isGuest: false };
  it("a guest's session suffices to add its first way in or delete itself; nothing else opens up", () => {
    for (const action of ["add_passkey", "add_identity", "delete_account"] as const) {
      expect(needs(action, guest)).toEqual([]);
      // A member without a password still shows a recent sign-in.
      expect(needs(action, member)).toEqual(["recent_sign_in"]);
    }
    expect(needs("change_password", guest)).toEqual(["recent_sign_in"]);
    expect(needs("create_api_key", guest)).toEqual(["recent_sign_in"]);
  });
});

describe("idle guests (the daily cron)", () => {
  const DAY = 86_400_000;
  const age = async (id: string, createdDaysAgo: number, usedDaysAgo: number) => {
    await env.DB.prepare("UPDATE users SET created_at = ? WHERE id = ?")
      .bind(Date.now() - createdDaysAgo * DAY, id)
      .run();
    await env.DB.prepare("UPDATE sessions SET last_used_at = ? WHERE user_id = ?")
      .bind(Date.now() - usedDaysAgo * DAY, id)
      .run();
  };

  it("removes guests idle past GUEST_IDLE_TTL with their sessions; keeps active ones, new ones and every member", async () => {
    const idle = await newGuest();
    const active = await newGuest();
    const fresh = await newGuest();
    const member = await registerUser();
    const upgraded = await newGuest();
    expect((await upgrade(upgraded.access_token, { email: uniqueEmail(), password: PASSWORD })).status).toBe(200);
    await age(idle.user.id, 40, 31); // GUEST_IDLE_TTL is 30 days
    await age(active.user.id, 40, 29);
    await age(member.user.id, 400, 300);
    await age(upgraded.user.id, 400, 300);
    const removed = await housekeeping(env);
    expect(removed.idleGuests).toBeGreaterThanOrEqual(1);
    expect(await userRow(idle.user.id)).toBeNull();
    expect((await env.DB.prepare("SELECT count(*) AS n FROM sessions WHERE user_id = ?").bind(idle.user.id).first<{ n: number }>())!.n).toBe(0);
    expectError(await refreshWith(idle.refresh_token), 401, "invalid_token");
    for (const kept of [active, fresh, member, upgraded]) expect(await userRow(kept.user.id)).not.toBeNull();
    // A guest whose sessions all ended long ago (signed out) goes once it is old enough.
    const signedOut = await newGuest();
    await call("POST", "/logout", { token: signedOut.access_token });
    await age(signedOut.user.id, 31, 31);
    await housekeeping(env);
    expect(await userRow(signedOut.user.id)).toBeNull();
    // The rule follows GUEST_IDLE_TTL.
    await age(active.user.id, 40, 10);
    await housekeeping({ ...env, GUEST_IDLE_TTL: String(7 * 86_400) } as Env);
    expect(await userRow(active.user.id)).toBeNull();
  });
});

describe("guests and a closed sign-up", () => {
  it("a deployment cannot open guests while sign-up is closed, and an older guest's upgrade is refused once it closes", async () => {
    expectError(await startGuest({ bindings: { REGISTRATION: "closed" } as Partial<Env> }), 500, "internal_error");
    const guest = await newGuest();
    const closed = { REGISTRATION: "closed", GUESTS: "off" } as Partial<Env>;
    const res = await call("POST", "/guests/upgrade", {
      token: guest.access_token,
      body: { email: uniqueEmail(), password: "a long enough passphrase 7" },
      bindings: closed,
    });
    expectError(res, 403, "registration_closed");
    expect(await call("GET", "/me", { token: guest.access_token })).toMatchObject({ status: 200, body: { user: { email: null } } });
  });
});
