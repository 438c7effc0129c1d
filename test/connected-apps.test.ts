import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ConnectedApp } from "../client";
import { adminToken, call, expectError, kvPutFailsOnce, login, PASSWORD, registerUser, revokedEntries } from "./helpers";
import { countFor, grantRow, insertConsent, insertGrant, insertRequest, registerClient } from "./oauth";

/** A user's connected apps (GET /account/apps, DELETE /account/apps/{client_id}), and grants kept apart from the API's own sessions. */

let admin: string | undefined;
async function newClient(name: string) {
  admin ??= await adminToken();
  const res = await registerClient(admin, { name, uri: `https://${name.toLowerCase()}.example/` });
  expect(res.status, res.text).toBe(201);
  return res.body.client_id as string;
}

type App = ConnectedApp;
const appsOf = async (token: string) => {
  const res = await call<{ apps: App[] }>("GET", "/account/apps", { token });
  expect(res.status, res.text).toBe(200);
  return res.body.apps;
};

describe("GET /account/apps", () => {
  it("needs a bearer token", async () => {
    expectError(await call("GET", "/account/apps"), 401, "invalid_token");
    expectError(await call("DELETE", "/account/apps/anything"), 401, "invalid_token");
  });

  it("lists the user's live grants grouped by app, and apps with a remembered consent only; nothing of anyone else's", async () => {
    const [notes, photos, gone, others] = [await newClient("Notes"), await newClient("Photos"), await newClient("Gone"), await newClient("Others")];
    const alice = await registerUser();
    const bob = await registerUser();
    const t0 = Date.now() - 3_600_000;
    await insertGrant({ userId: alice.user.id, clientId: notes, scope: "openid profile", createdAt: t0, lastUsedAt: t0 + 1000 });
    await insertGrant({
      userId: alice.user.id,
      clientId: notes,
      scope: "openid email",
      resource: "https://api.notes.example/",
      createdAt: t0 + 5000,
      lastUsedAt: t0 + 9000,
    });
    await insertConsent(alice.user.id, notes, "openid profile email", "https://api.notes.example/");
    await insertConsent(alice.user.id, photos, "openid");
    await insertGrant({ userId: alice.user.id, clientId: gone, revokedAt: Date.now() - 1000, accessExpiresAt: Date.now() - 1000 });
    await insertGrant({ userId: bob.user.id, clientId: others });

    const apps = await appsOf(alice.access_token);
    expect(apps.map((a) => a.client_id).sort()).toEqual([notes, photos].sort());
    const n = apps.find((a) => a.client_id === notes)!;
    expect(n).toMatchObject({ name: "Notes", uri: "https://notes.example/", grants: 2, consent_remembered: true });
    expect(n.scopes.sort()).toEqual(["email", "openid", "profile"]);
    expect(n.resources).toEqual(["https://api.notes.example/"]);
    expect(n.connected_at).toBe(new Date(t0).toISOString());
    expect(n.last_used_at).toBe(new Date(t0 + 9000).toISOString());
    expect(apps.find((a) => a.client_id === photos)).toMatchObject({
      grants: 0,
      consent_remembered: true,
      scopes: ["openid"],
      resources: [],
      last_used_at: null,
    });
    expect(await appsOf(bob.access_token)).toMatchObject([{ client_id: others, grants: 1, consent_remembered: false }]);
    expect(await appsOf((await registerUser()).access_token)).toEqual([]);
  });
});

describe("DELETE /account/apps/{client_id}", () => {
  it("ends the user's grants of the app in D1 and KV, forgets the consents and kills a code not yet exchanged; another user's grants stay", async () => {
    const notes = await newClient("Notes");
    const alice = await registerUser();
    const bob = await registerUser();
    const g1 = await insertGrant({ userId: alice.user.id, clientId: notes });
    const g2 = await insertGrant({ userId: alice.user.id, clientId: notes, accessExpiresAt: Date.now() - 1000 });
    const bobs = await insertGrant({ userId: bob.user.id, clientId: notes });
    await insertConsent(alice.user.id, notes);
    await insertConsent(bob.user.id, notes);
    await insertRequest(notes, alice.user.id);
    const bobsRequest = await insertRequest(notes, bob.user.id);

    const res = await call("DELETE", `/account/apps/${notes}`, { token: alice.access_token });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ message: expect.any(String), grants_revoked: 2, consents_removed: 1 });
    expect((await grantRow(g1))!.revoked_at).not.toBeNull();
    expect((await grantRow(g2))!.revoked_at).not.toBeNull();
    expect((await grantRow(bobs))!.revoked_at).toBeNull();
    const kv = await revokedEntries("sid:");
    expect(kv.has(g1)).toBe(true);
    expect(kv.has(g2)).toBe(false); // no access token of it is valid any more
    expect(kv.has(bobs)).toBe(false);
    expect(await countFor("oauth_consents", notes)).toBe(1); // bob's
    const requests = (await env.DB.prepare("SELECT id FROM oauth_requests WHERE client_id = ?").bind(notes).all<{ id: string }>()).results;
    expect(requests.map((r) => r.id)).toEqual([bobsRequest]);
    expect(await appsOf(alice.access_token)).toEqual([]);
    expect((await appsOf(bob.access_token)).map((a) => a.client_id)).toEqual([notes]);
    // The user's own sign-in goes on.
    expect((await call("GET", "/protected", { token: alice.access_token })).status).toBe(200);
    const audited = await env.DB.prepare("SELECT user_id, detail FROM audit_events WHERE event = 'oauth_app_disconnected' AND user_id = ?")
      .bind(alice.user.id)
      .first<{ user_id: string; detail: string }>();
    expect(JSON.parse(audited!.detail)).toMatchObject({ client_id: notes, grants_revoked: 2, consents_removed: 1 });
  });

  it("answers 404 for another user's app or an unknown id, changing nothing", async () => {
    const notes = await newClient("Notes");
    const alice = await registerUser();
    const bob = await registerUser();
    const bobs = await insertGrant({ userId: bob.user.id, clientId: notes });
    await insertConsent(bob.user.id, notes);
    expectError(await call("DELETE", `/account/apps/${notes}`, { token: alice.access_token }), 404, "not_found");
    expectError(await call("DELETE", "/account/apps/no-such-client", { token: alice.access_token }), 404, "not_found");
    expectError(await call("DELETE", `/account/apps/${"x".repeat(600)}`, { token: alice.access_token }), 400, "validation_failed");
    expect((await grantRow(bobs))!.revoked_at).toBeNull();
    expect(await countFor("oauth_consents", notes)).toBe(1);
  });

  it("a failed KV write answers 503 with the grant ended in D1; repeating it completes the revocation", async () => {
    const notes = await newClient("Notes");
    const alice = await registerUser();
    const grant = await insertGrant({ userId: alice.user.id, clientId: notes });
    const res = await call("DELETE", `/account/apps/${notes}`, { token: alice.access_token, bindings: { REVOKED: kvPutFailsOnce() } });
    expectError(res, 503, "service_unavailable");
    expect((await grantRow(grant))!.revoked_at).not.toBeNull();
    expect((await revokedEntries("sid:")).has(grant)).toBe(false);
    expect((await call("DELETE", `/account/apps/${notes}`, { token: alice.access_token })).status).toBe(200);
    expect((await revokedEntries("sid:")).has(grant)).toBe(true);
  });
});

describe("grants are not the API's own sessions", () => {
  it("a grant shows in neither GET /sessions nor is ended by the per-user session cap", async () => {
    const notes = await newClient("Notes");
    const alice = await registerUser(); // session 1
    // The oldest of the user's rows: the first the cap would end, were grants counted.
    const grant = await insertGrant({ userId: alice.user.id, clientId: notes, createdAt: Date.now() - 86_000_000 });
    const listed = await call("GET", "/sessions?limit=100", { token: alice.access_token });
    expect(listed.status).toBe(200);
    expect(listed.body.sessions.map((s: { id: string }) => s.id)).not.toContain(grant);
    expect(listed.body.sessions).toHaveLength(1);

    const bindings = { MAX_SESSIONS_PER_USER: "2" } as Partial<Env>;
    for (let i = 0; i < 2; i++) {
      const res = await call("POST", "/login", { body: { username: alice.input.username, password: PASSWORD }, bindings });
      expect(res.status, res.text).toBe(200);
    }
    // Three sign-ins with a cap of 2: the first session ended, the grant untouched.
    expect((await grantRow(grant))!.revoked_at).toBeNull();
    expect((await revokedEntries("sid:")).has(grant)).toBe(false);
    const after = await call("GET", "/sessions?limit=100", { token: (await login(alice.input.username)).body.access_token });
    expect(after.body.sessions.map((s: { id: string }) => s.id)).not.toContain(grant);
    expectError(await call("GET", "/protected", { token: alice.access_token }), 401, "invalid_token");
  });
});
