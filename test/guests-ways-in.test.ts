import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SoftAuthenticator } from "./authenticator";
import { claimsOf, newGuest, userRow } from "./guests";
import { call, expectError, ORIGIN, refreshWith } from "./helpers";
import { atLocalIdp, callback, exchange, socialSignIn } from "./social";

/**
 * A passkey or a provider as a guest's first way in (docs/guests.md): the guest becomes a member in
 * the write that stores it, keeping its id; the guest's own session is the step-up's proof (it has no
 * password and cannot sign in again). A provider identity another account has is refused, the guest intact.
 */

/** The guest's sign-in an hour ago: past STEP_UP_MAX_AGE, so a recent sign-in would not do (a guest cannot sign in again). */
const signedInLongAgo = (userId: string) => env.DB.prepare("UPDATE sessions SET auth_time = auth_time - 3600000 WHERE user_id = ?").bind(userId).run();

async function passkeyFor(token: string) {
  const options = await call("POST", "/passkeys/register/options", { token, body: {} });
  expect(options.status, options.text).toBe(200);
  const authenticator = new SoftAuthenticator(ORIGIN);
  const res = await call("POST", "/passkeys/register/verify", { token, body: { response: await authenticator.register(options.body.options) } });
  return { authenticator, res, options: options.body.options };
}

describe("a passkey as a guest's first way in", () => {
  it("needs only the guest's session, and makes it a member keeping its id; the passkey then signs in to it", async () => {
    const guest = await newGuest();
    await signedInLongAgo(guest.user.id);
    const { authenticator, res, options } = await passkeyFor(guest.access_token);
    expect(res.status, res.text).toBe(201);
    expect(options.user.name).toBe("Edge Auth account"); // no username, no address: a name for the device's list
    expect(await userRow(guest.user.id)).toMatchObject({ is_guest: 0, email: null, password_hash: "" });
    const refreshed = await refreshWith(guest.refresh_token);
    expect(claimsOf(refreshed.body.access_token).guest).toBeUndefined();
    expect(claimsOf(refreshed.body.access_token).sub).toBe(guest.user.id);
    const audited = await env.DB.prepare("SELECT detail FROM audit_events WHERE user_id = ? AND event = 'guest_upgraded'")
      .bind(guest.user.id)
      .first<{ detail: string }>();
    expect(JSON.parse(audited!.detail)).toMatchObject({ with: "passkey" });
    // Sign in with it: the same account, a member.
    const loginOptions = await call("POST", "/passkeys/login/options");
    const signedIn = await call("POST", "/passkeys/login/verify", { body: { response: await authenticator.assert(loginOptions.body.options) } });
    expect(signedIn.status, signedIn.text).toBe(200);
    expect(signedIn.body.user.id).toBe(guest.user.id);
    expect(claimsOf(signedIn.body.access_token).guest).toBeUndefined();
    // A member now: the session suffices no longer (no password: a recent sign-in, which this one is).
    const security = await call("GET", "/me/security", { token: signedIn.body.access_token });
    expect(security.body.step_up.add_passkey).toEqual(["recent_sign_in"]);
  });

  it("a refused registration leaves the guest a guest", async () => {
    const guest = await newGuest();
    const options = await call("POST", "/passkeys/register/options", { token: guest.access_token, body: {} });
    const authenticator = new SoftAuthenticator("https://evil.example");
    const res = await call("POST", "/passkeys/register/verify", {
      token: guest.access_token,
      body: { response: await authenticator.register(options.body.options) },
    });
    expectError(res, 400, "passkey_rejected");
    expect(await userRow(guest.user.id)).toMatchObject({ is_guest: 1 });
  });
});

describe("a provider as a guest's first way in", () => {
  async function linkTrip(token: string, login: string) {
    const asked = await call("POST", "/me/identities/local/link", { token, body: {} });
    expect(asked.status, asked.text).toBe(200);
    const url = new URL(asked.body.url);
    const started = await call("GET", url.pathname + url.search);
    expect(started.status, started.text).toBe(302);
    const cookie = /oauth_flow=([^;]+)/.exec(started.headers.get("set-cookie") ?? "")![1]!;
    const landing = await callback("local", await atLocalIdp(new URL(started.headers.get("location")!), login), cookie);
    return landing.fragment.get("oauth_code")!;
  }

  it("linking one makes the guest a member keeping its id; the provider then signs in to it", async () => {
    const guest = await newGuest();
    await signedInLongAgo(guest.user.id);
    const name = `gl_${Date.now().toString(36)}`;
    const linked = await exchange(await linkTrip(guest.access_token, name), { token: guest.access_token });
    expect(linked.status, linked.text).toBe(200);
    expect(await userRow(guest.user.id)).toMatchObject({ is_guest: 0 });
    expect(claimsOf((await refreshWith(guest.refresh_token)).body.access_token).guest).toBeUndefined();
    expect((await socialSignIn(name)).user.id).toBe(guest.user.id);
  });

  it("an identity another account has: 409 identity_in_use, never merged, the guest intact", async () => {
    const name = `gt_${Date.now().toString(36)}`;
    const owner = await socialSignIn(name);
    const guest = await newGuest();
    expectError(await exchange(await linkTrip(guest.access_token, name), { token: guest.access_token }), 409, "identity_in_use");
    expect(await userRow(guest.user.id)).toMatchObject({ is_guest: 1, email: null });
    expect((await socialSignIn(name)).user.id).toBe(owner.user.id);
    expect(claimsOf((await refreshWith(guest.refresh_token)).body.access_token).guest).toBe(true);
  });
});
