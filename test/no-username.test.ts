import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, decodeJwtPart, expectError, login, makeAdmin, PASSWORD, registerOptions, registerUser, uniqueName } from "./helpers";
import { addMember, createOrg } from "./orgs";

/**
 * Accounts without a username (issue 31 item 2): a sign-up with only an address and a password, the
 * username set later with PATCH /me, and every place that shows a name shows null (never "").
 */

const address = () => `${uniqueName("nameless")}@example.com`;

async function namelessUser() {
  const email = address();
  const res = await call("POST", "/register", { body: { email, password: PASSWORD } });
  expect(res.status, res.text).toBe(201);
  return { email, id: res.body.user.id as string, token: res.body.access_token as string, body: res.body };
}

describe("POST /register without a username", () => {
  it("with an address and a password: an account whose username is null, that signs in by its address", async () => {
    const { email, body } = await namelessUser();
    expect(body.user).toMatchObject({ username: null, email });
    expect(decodeJwtPart(body.access_token, 1)).not.toHaveProperty("username");
    const signedIn = await login(email.toUpperCase());
    expect(signedIn.status, signedIn.text).toBe(200);
    expect(signedIn.body.user.username).toBeNull();
    const hello = await call("GET", "/protected", { token: signedIn.body.access_token });
    expect(hello.body).toMatchObject({ username: null });
    expect(hello.body.message).not.toMatch(/undefined|null/);
  });

  it("many accounts may have none: a second and a third sign up alike", async () => {
    await namelessUser();
    await namelessUser();
    expect((await env.DB.prepare("SELECT count(*) AS n FROM users WHERE username = ''").first<{ n: number }>())!.n).toBeGreaterThanOrEqual(2);
  });

  it("with neither a username nor an address: 400 validation_failed on email, nothing made", async () => {
    const res = await call("POST", "/register", { body: { password: PASSWORD } });
    expectError(res, 400, "validation_failed");
    expect(res.body.fields).toHaveProperty("email");
  });

  it("an empty login never names the accounts without a username", async () => {
    await namelessUser();
    expectError(await call("POST", "/login", { body: { username: "", password: PASSWORD } }), 400, "validation_failed");
  });
});

describe("PATCH /me {username}", () => {
  it("an account without one adds it; then it signs in with it, and its next token carries it", async () => {
    const u = await namelessUser();
    const name = uniqueName("later");
    const res = await call("PATCH", "/me", { token: u.token, body: { username: name } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.user).toMatchObject({ id: u.id, username: name, email: u.email });
    const signedIn = await login(name);
    expect(signedIn.status, signedIn.text).toBe(200);
    expect(decodeJwtPart(signedIn.body.access_token, 1).username).toBe(name);
  });

  it("taken by another account, in any case: 409 username_taken, nothing changed", async () => {
    const other = await registerUser();
    const u = await namelessUser();
    expectError(await call("PATCH", "/me", { token: u.token, body: { username: other.input.username.toUpperCase() } }), 409, "username_taken");
    expect((await call("GET", "/me", { token: u.token })).body.user.username).toBeNull();
  });

  it("a malformed name is 400; without a token 401", async () => {
    const u = await namelessUser();
    expectError(await call("PATCH", "/me", { token: u.token, body: { username: "a b" } }), 400, "validation_failed");
    expectError(await call("PATCH", "/me", { body: { username: uniqueName() } }), 401, "invalid_token");
  });
});

describe("null names where names are shown", () => {
  it("the admin's user list and an organization's member list show null, not an empty string", async () => {
    const admin = await registerUser();
    await makeAdmin(admin.user.id);
    const adminToken = (await login(admin.input.username)).body.access_token;
    const u = await namelessUser();
    const listed = await call("GET", `/admin/users/${u.id}`, { token: adminToken });
    expect(listed.status, listed.text).toBe(200);
    expect(listed.body.user.username).toBeNull();

    const orgId = await createOrg(admin.access_token);
    await addMember(orgId, u.id);
    const members = await call("GET", `/orgs/${orgId}/members`, { token: admin.access_token });
    expect(members.status, members.text).toBe(200);
    expect(members.body.members.find((m: { user_id: string }) => m.user_id === u.id)).toMatchObject({ username: null, email: u.email });
  });

  it("a passkey's options name the account by its address", async () => {
    const u = await namelessUser();
    const options = await registerOptions(u.token);
    expect(options.user.name).toBe(u.email);
  });
});
