import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, expectError, login, mailbox, PASSWORD, registerUser, uniqueName } from "./helpers";
import { signInLocally } from "./social";

/**
 * A link that proves an address for an account (verification, an address change) proves the
 * mailbox, not who made the account: whoever follows it must hold the account (its Bearer token or
 * its password), so a person whose address a squatter registered never ends up sharing the
 * squatter's account. The squatter's way out for that person is a reset, which hands the account
 * over and ends everything its creator set up. Issue 27 item 2 (the mailed path; the provider path
 * is in test/social.test.ts).
 */

const address = () => `${uniqueName("proof")}@example.com`;
const verifiedAt = async (id: string) =>
  (await env.DB.prepare("SELECT email_verified_at FROM users WHERE id = ?").bind(id).first<{ email_verified_at: number | null }>())!.email_verified_at;
const failedLogins = async (id: string) =>
  (await env.DB.prepare("SELECT failed_logins FROM users WHERE id = ?").bind(id).first<{ failed_logins: number }>())!.failed_logins;

describe("a verification link takes proof of the account, not only of the mailbox", () => {
  it("the squatter's sign-up mail: the address's owner cannot confirm it into the squatter's account; the mail says what to do instead", async () => {
    const box = mailbox();
    const email = address();
    const squatter = await box.send("POST", "/register", { body: { username: uniqueName("squat"), email, password: PASSWORD } });
    const mail = box.sent.find((m) => m.to === email)!;
    expect(mail.text).toMatch(/If you did not make an account with this address, do not confirm it.*reset that account's password by mail/s);
    const token = box.link(email, "verify-email");
    // The owner of the address follows the link, signed in to nothing and without the squatter's password.
    const refused = await call("POST", "/email/verify", { body: { token } });
    expectError(refused, 401, "account_proof_required");
    expect(refused.body.message).toMatch(/Reset its password by mail instead/);
    expect(await verifiedAt(squatter.body.user.id)).toBeNull();
    // Signed in to another account (their own): refused the same way, and the link still works for the holder.
    const mine = await registerUser();
    expectError(await call("POST", "/email/verify", { token: mine.access_token, body: { token } }), 401, "account_proof_required");
    // A guessed password is a failed login of that account (its lock applies).
    expectError(await call("POST", "/email/verify", { body: { token, password: "not the password 1" } }), 401, "invalid_credentials");
    expect(await failedLogins(squatter.body.user.id)).toBe(1);
    expect(await verifiedAt(squatter.body.user.id)).toBeNull();

    // The reset is the owner's way: it hands the account over; the squatter's password and session end.
    await box.send("POST", "/password/forgot", { body: { email } });
    const reset = await call("POST", "/password/reset", { body: { token: box.link(email, "reset-password"), new_password: "the owner's own 1" } });
    expect(reset.status, reset.text).toBe(200);
    expectError(await login(squatter.body.user.username), 401, "invalid_credentials");
    expectError(await call("GET", "/protected", { token: squatter.body.access_token }), 401, "invalid_token");
    expect(await verifiedAt(squatter.body.user.id)).not.toBeNull();
  });

  it("the account's holder confirms it: with its Bearer token (any session of it), or with its password", async () => {
    const box = mailbox();
    const email = address();
    const reg = await box.send("POST", "/register", { body: { username: uniqueName(), email, password: PASSWORD } });
    const byToken = await call("POST", "/email/verify", { token: reg.body.access_token, body: { token: box.link(email, "verify-email") } });
    expect(byToken.status, byToken.text).toBe(200);
    expect(await verifiedAt(reg.body.user.id)).not.toBeNull();

    const other = address();
    const second = await box.send("POST", "/register", { body: { username: uniqueName(), email: other, password: PASSWORD } });
    await call("POST", `/login`, { body: { username: second.body.user.username, password: "wrong one 123" } }); // a failure to clear
    const byPassword = await call("POST", "/email/verify", { body: { token: box.link(other, "verify-email"), password: PASSWORD } });
    expect(byPassword.status, byPassword.text).toBe(200);
    expect(await failedLogins(second.body.user.id)).toBe(0); // a right password clears the count, as a login does
  });

  it("with REQUIRE_VERIFIED_EMAIL on (no session before the address is proved), the password does it", async () => {
    const box = mailbox();
    const email = address();
    const bindings = { REQUIRE_VERIFIED_EMAIL: "on" } as Partial<Env>;
    const reg = await box.send("POST", "/register", { body: { username: uniqueName(), email, password: PASSWORD }, bindings });
    expect(reg.body.access_token).toBeUndefined();
    const token = box.link(email, "verify-email");
    expectError(await call("POST", "/email/verify", { body: { token }, bindings }), 401, "account_proof_required");
    expect((await call("POST", "/email/verify", { body: { token, password: PASSWORD }, bindings })).status).toBe(200);
    expect((await call("POST", "/login", { body: { username: reg.body.user.username, password: PASSWORD }, bindings })).status).toBe(200);
  });
});

describe("an address-change link takes the same proof", () => {
  it("someone asks to move their account to a stranger's address: the stranger following the link confirms nothing", async () => {
    const box = mailbox();
    const asker = await registerUser({ email: address() });
    const stranger = address();
    expect((await box.send("POST", "/email", { token: asker.access_token, body: { new_email: stranger, current_password: PASSWORD } })).status).toBe(202);
    const token = box.link(stranger, "confirm-email");
    expect(box.sent.find((m) => m.to === stranger)!.text).toMatch(/where you are signed in to that account or with its password/);
    expectError(await call("POST", "/email/confirm", { body: { token } }), 401, "account_proof_required");
    expect((await call("GET", "/me", { token: asker.access_token })).body.user.email).not.toBe(stranger);
    // The one who asked, signed in: done.
    expect((await call("POST", "/email/confirm", { token: asker.access_token, body: { token } })).status).toBe(200);
    expect((await call("GET", "/me", { token: asker.access_token })).body.user).toMatchObject({ email: stranger, email_verified: true });
  });
});

describe("the round's scenario, end to end: a squatter's account is never shared with the address's owner", () => {
  it("social sign-in says account_exists, the squatter's verification mail confirms nothing, a second social sign-in still lands nowhere; a reset takes the account over", async () => {
    const box = mailbox();
    const victim = uniqueName("victim").toLowerCase();
    const email = `${victim}@example.test`; // the address the local identity provider vouches for
    const squatter = await box.send("POST", "/register", { body: { username: uniqueName("squat"), email, password: PASSWORD } });
    expect(squatter.status, squatter.text).toBe(201);

    expect((await signInLocally(victim)).fragment.get("oauth_error")).toBe("account_exists");
    expectError(await call("POST", "/email/verify", { body: { token: box.link(email, "verify-email") } }), 401, "account_proof_required");
    const again = await signInLocally(victim);
    expect(again.fragment.get("oauth_error")).toBe("account_exists");
    expect(again.fragment.get("oauth_code")).toBeNull();
    const identities = await env.DB.prepare("SELECT count(*) AS n FROM identities WHERE user_id = ?").bind(squatter.body.user.id).first<{ n: number }>();
    expect(identities!.n).toBe(0);

    // The reset hands the account to the address's owner and ends the squatter's password and session.
    await box.send("POST", "/password/forgot", { body: { email } });
    expect((await call("POST", "/password/reset", { body: { token: box.link(email, "reset-password"), new_password: "mine after all 7" } })).status).toBe(200);
    expectError(await login(squatter.body.user.username, PASSWORD), 401, "invalid_credentials");
    expectError(await call("GET", "/protected", { token: squatter.body.access_token }), 401, "invalid_token");
    expect((await login(squatter.body.user.username, "mine after all 7")).status).toBe(200);
  });
});
