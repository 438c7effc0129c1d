import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { authenticateClient, usableClient } from "../src/auth/oauth-server/clients";
import { getConfig } from "../src/config";
import { getDb } from "../src/db/client";
import type { Deps } from "../src/deps";
import { sha256Base64Url } from "../src/encoding";
import { adminToken, call, expectError, kvPutFailsOnce, login, PASSWORD, registerUser, revokedEntries } from "./helpers";
import { countFor, grantRow, insertConsent, insertGrant, insertRequest, registerClient } from "./oauth";

/** The admin API for the authorization server's clients (POST|GET|PATCH|DELETE /admin/clients). */

const domainDeps = (): Deps => ({ db: getDb(env.DB), replica: () => getDb(env.DB), kv: env.REVOKED, config: getConfig(env) });

const auditOf = async (event: string, clientId: string) =>
  (
    await env.DB.prepare("SELECT user_id, detail FROM audit_events WHERE event = ? AND detail LIKE ?")
      .bind(event, `%${clientId}%`)
      .all<{ user_id: string | null; detail: string }>()
  ).results.map((r) => ({ user_id: r.user_id, ...JSON.parse(r.detail) }));

async function adminAndClient(body: Record<string, unknown> = {}) {
  const token = await adminToken();
  const res = await registerClient(token, body);
  expect(res.status, res.text).toBe(201);
  return { token, client: res.body as { client_id: string; client_secret?: string } };
}

describe("the clients' admin area is the admin's alone", () => {
  it("answers 401 without a token and 403 to a user without the admin role, on every route", async () => {
    const user = await registerUser();
    const routes: [string, string, unknown?][] = [
      ["GET", "/admin/clients"],
      ["POST", "/admin/clients", { name: "x", redirect_uris: ["https://a.example/cb"], type: "public", current_password: PASSWORD }],
      ["GET", "/admin/clients/some-id"],
      ["PATCH", "/admin/clients/some-id", { disabled: true }],
      ["DELETE", "/admin/clients/some-id"],
    ];
    for (const [method, path, body] of routes) {
      expectError(await call(method, path, { body }), 401, "invalid_token");
      expectError(await call(method, path, { body, token: user.access_token }), 403, "forbidden");
    }
    expect(await countFor("oauth_clients", "some-id")).toBe(0);
  });
});

describe("POST /admin/clients", () => {
  it("registers a confidential client: its secret is in this answer once, stored only as its SHA-256, and authenticates", async () => {
    const token = await adminToken();
    const res = await registerClient(token, { name: "Notes", uri: "https://notes.example", scope: "openid email", resources: ["https://api.notes.example/"] });
    expect(res.status, res.text).toBe(201);
    const { client_id, client_secret } = res.body;
    expect(client_id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 bits
    expect(res.body).toMatchObject({
      name: "Notes",
      type: "confidential",
      grant_types: ["authorization_code", "refresh_token"],
      scope: "openid email",
      resources: ["https://api.notes.example/"],
      source: "admin",
      disabled: false,
    });
    const row = await env.DB.prepare("SELECT secret_hash FROM oauth_clients WHERE id = ?").bind(client_id).first<{ secret_hash: string }>();
    expect(row!.secret_hash).toBe(await sha256Base64Url(client_secret));
    expect(JSON.stringify(await env.DB.prepare("SELECT * FROM oauth_clients WHERE id = ?").bind(client_id).first())).not.toContain(client_secret);

    // Never again: not in GET, not in the list.
    const got = await call("GET", `/admin/clients/${client_id}`, { token });
    expect(got.status).toBe(200);
    expect(got.body.client_secret).toBeUndefined();
    expect(got.text).not.toContain(client_secret);
    const list = await call("GET", "/admin/clients?limit=100", { token });
    expect(list.text).not.toContain(client_secret);
    expect(list.body.clients.map((c: { client_id: string }) => c.client_id)).toContain(client_id);

    const deps = domainDeps();
    expect((await authenticateClient(deps, { clientId: client_id, secret: client_secret, method: "client_secret_basic" })).id).toBe(client_id);
    await expect(authenticateClient(deps, { clientId: client_id, secret: `${client_secret}x`, method: "client_secret_post" })).rejects.toMatchObject({
      error: "invalid_client",
    });
    expect((await auditOf("oauth_client_created", client_id))[0]).toMatchObject({ user_id: expect.any(String), type: "confidential" });
  });

  it("registers a public client without a secret, with the defaults", async () => {
    const token = await adminToken();
    const res = await registerClient(token, { type: "public", redirect_uris: ["com.example.notes:/callback", "http://127.0.0.1/cb", "http://[::1]:8080/cb"] });
    expect(res.status, res.text).toBe(201);
    expect(res.body.client_secret).toBeUndefined();
    expect(res.body).toMatchObject({ type: "public", scope: "openid profile email offline_access", resources: [], uri: null });
    const row = await env.DB.prepare("SELECT secret_hash FROM oauth_clients WHERE id = ?").bind(res.body.client_id).first<{ secret_hash: string | null }>();
    expect(row!.secret_hash).toBeNull();
  });

  it.each([
    ["http on a host that is not loopback", { redirect_uris: ["http://app.example/cb"] }, "redirect_uris.0"],
    ["a fragment", { redirect_uris: ["https://app.example/cb#x"] }, "redirect_uris.0"],
    ["a javascript: URI", { redirect_uris: ["https://ok.example/cb", "javascript:alert(1)"] }, "redirect_uris.1"],
    ["a relative URI", { redirect_uris: ["/callback"] }, "redirect_uris.0"],
    ["credentials in the URI", { redirect_uris: ["https://user:pw@app.example/cb"] }, "redirect_uris.0"],
    ["a space in the URI", { redirect_uris: ["https://app.example/c b"] }, "redirect_uris.0"],
    ["more than 10 redirect URIs", { redirect_uris: Array.from({ length: 11 }, (_, i) => `https://app.example/${i}`) }, "redirect_uris"],
    ["no redirect URI for the code grant", { redirect_uris: [] }, "redirect_uris"],
    ["an unknown scope", { scope: "openid admin" }, "scope"],
    ["an empty scope", { scope: "  " }, "scope"],
    ["client_credentials for a public client", { type: "public", grant_types: ["client_credentials"] }, "grant_types"],
    ["an unknown grant type", { grant_types: ["password"] }, "grant_types.0"],
    ["a resource with a fragment", { resources: ["https://api.example/#x"] }, "resources.0"],
    ["a relative resource", { resources: ["api"] }, "resources.0"],
    ["a uri that is not http(s)", { uri: "javascript:alert(1)" }, "uri"],
    ["a name with control characters", { name: "App\u202e" }, "name"],
    ["no type", { type: undefined }, "type"],
  ])("refuses %s: 400 validation_failed, nothing registered", async (_what, body, field) => {
    const token = await adminToken();
    const before = (await env.DB.prepare("SELECT count(*) AS n FROM oauth_clients").first<{ n: number }>())!.n;
    const res = await registerClient(token, body);
    expectError(res, 400, "validation_failed");
    expect(Object.keys(res.body.fields)).toContain(field);
    expect((await env.DB.prepare("SELECT count(*) AS n FROM oauth_clients").first<{ n: number }>())!.n).toBe(before);
  });

  it("refuses this API's own audience as a resource", async () => {
    const bindings = { AUDIENCE: "https://api.auth.example/" } as Partial<Env>;
    const reg = await registerUser();
    await env.DB.prepare(`UPDATE users SET roles = '["user","admin"]' WHERE id = ?`).bind(reg.user.id).run();
    const signedIn = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD }, bindings });
    const token = signedIn.body.access_token as string;
    const res = await registerClient(token, { resources: ["https://api.auth.example"] }, bindings);
    expectError(res, 400, "validation_failed");
    expect(res.body.fields["resources.0"]).toMatch(/audience/);
    // Another resource is fine under the same configuration.
    expect((await registerClient(token, { resources: ["https://other.example/"] }, bindings)).status).toBe(201);
  });

  it("takes the acting admin's step-up: no password, or a wrong one, registers nothing", async () => {
    const token = await adminToken();
    const before = (await env.DB.prepare("SELECT count(*) AS n FROM oauth_clients").first<{ n: number }>())!.n;
    expectError(await registerClient(token, { current_password: undefined }), 400, "validation_failed");
    expectError(await registerClient(token, { current_password: "not the password" }), 401, "invalid_credentials");
    expect((await env.DB.prepare("SELECT count(*) AS n FROM oauth_clients").first<{ n: number }>())!.n).toBe(before);
  });
});

describe("GET /admin/clients", () => {
  it("pages through every client, newest first, each once", async () => {
    const token = await adminToken();
    const mine: string[] = [];
    for (let i = 0; i < 3; i++) mine.push((await registerClient(token, { name: `Paged ${i}` })).body.client_id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { status: number; body: { clients: { client_id: string; created_at: string }[]; next_cursor: string | null } } = await call(
        "GET",
        `/admin/clients?limit=2${cursor ? `&cursor=${cursor}` : ""}`,
        { token },
      );
      expect(res.status).toBe(200);
      expect(res.body.clients.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.clients.map((c) => c.client_id));
      cursor = res.body.next_cursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    const positions = mine.map((id) => seen.indexOf(id));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect(positions).toEqual([...positions].sort((a, b) => b - a)); // newest first
  });

  it("refuses a bad cursor or limit with 400, and an unknown client with 404", async () => {
    const token = await adminToken();
    expectError(await call("GET", "/admin/clients?cursor=nonsense", { token }), 400, "validation_failed");
    expectError(await call("GET", "/admin/clients?limit=0", { token }), 400, "validation_failed");
    expectError(await call("GET", "/admin/clients/no-such-client", { token }), 404, "not_found");
    expectError(await call("PATCH", "/admin/clients/no-such-client", { token, body: { disabled: true } }), 404, "not_found");
    expectError(await call("DELETE", "/admin/clients/no-such-client", { token }), 404, "not_found");
  });
});

describe("PATCH /admin/clients/{id}", () => {
  it("changes a client with the step-up, audited with what changed; refuses without it and validates like a registration", async () => {
    const { token, client } = await adminAndClient();
    const path = `/admin/clients/${client.client_id}`;
    expectError(await call("PATCH", path, { token, body: { name: "Renamed" } }), 400, "validation_failed");
    const bad = await call("PATCH", path, { token, body: { redirect_uris: ["http://evil.example/cb"], current_password: PASSWORD } });
    expectError(bad, 400, "validation_failed");
    expect(bad.body.fields["redirect_uris.0"]).toBeDefined();
    expectError(await call("PATCH", path, { token, body: { current_password: PASSWORD } }), 400, "validation_failed");

    const res = await call("PATCH", path, {
      token,
      body: { name: "Renamed", redirect_uris: ["https://app.example/new"], scope: "openid", current_password: PASSWORD },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ name: "Renamed", redirect_uris: ["https://app.example/new"], scope: "openid", disabled: false });
    expect(res.body.client_secret).toBeUndefined();
    expect((await auditOf("oauth_client_updated", client.client_id))[0]).toMatchObject({ changed: "name,redirect_uris,scope", step_up: true });
  });

  it("disabling (no step-up) ends every grant of the client in D1 and KV, and the client is refused; enabling brings no grant back", async () => {
    const { token, client } = await adminAndClient();
    const other = await adminAndClient();
    const alice = await registerUser();
    const bob = await registerUser();
    const live = await insertGrant({ userId: alice.user.id, clientId: client.client_id });
    const idle = await insertGrant({ userId: bob.user.id, clientId: client.client_id, accessExpiresAt: Date.now() - 1000 });
    const untouched = await insertGrant({ userId: alice.user.id, clientId: other.client.client_id });
    const firstParty = (await login(alice.input.username)).body.access_token as string;

    const res = await call("PATCH", `/admin/clients/${client.client_id}`, { token, body: { disabled: true } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ disabled: true, disabled_at: expect.any(String) });

    expect((await grantRow(live))!.revoked_at).not.toBeNull();
    expect((await grantRow(idle))!.revoked_at).not.toBeNull();
    expect((await grantRow(untouched))!.revoked_at).toBeNull();
    const kv = await revokedEntries("sid:");
    expect(kv.has(live)).toBe(true);
    expect(kv.has(idle)).toBe(false); // its access tokens are all expired: nothing to list
    expect(kv.has(untouched)).toBe(false);
    // The user's own sign-in is not the client's: it goes on.
    expect((await call("GET", "/protected", { token: firstParty })).status).toBe(200);

    const deps = domainDeps();
    expect(await usableClient(deps, client.client_id)).toBeNull();
    await expect(authenticateClient(deps, { clientId: client.client_id, secret: client.client_secret, method: "client_secret_basic" })).rejects.toMatchObject({
      error: "invalid_client",
    });
    expect((await auditOf("oauth_client_updated", client.client_id))[0]).toMatchObject({
      changed: "disabled",
      disabled: true,
      grants_revoked: 2,
      step_up: false,
    });

    // Enabling takes the step-up, and the grants stay ended.
    expectError(await call("PATCH", `/admin/clients/${client.client_id}`, { token, body: { disabled: false } }), 400, "validation_failed");
    const on = await call("PATCH", `/admin/clients/${client.client_id}`, { token, body: { disabled: false, current_password: PASSWORD } });
    expect(on.body).toMatchObject({ disabled: false, disabled_at: null });
    expect((await usableClient(deps, client.client_id))?.id).toBe(client.client_id);
    expect((await grantRow(live))!.revoked_at).not.toBeNull();
  });

  it("a failed KV write answers 503 with the grants ended in D1; repeating the change completes the revocation", async () => {
    const { token, client } = await adminAndClient();
    const alice = await registerUser();
    const grant = await insertGrant({ userId: alice.user.id, clientId: client.client_id });
    const res = await call("PATCH", `/admin/clients/${client.client_id}`, { token, body: { disabled: true }, bindings: { REVOKED: kvPutFailsOnce() } });
    expectError(res, 503, "service_unavailable");
    expect((await grantRow(grant))!.revoked_at).not.toBeNull();
    expect((await revokedEntries("sid:")).has(grant)).toBe(false);
    const firstDisabledAt = (await call("GET", `/admin/clients/${client.client_id}`, { token })).body.disabled_at;

    const again = await call("PATCH", `/admin/clients/${client.client_id}`, { token, body: { disabled: true } });
    expect(again.status, again.text).toBe(200);
    expect(again.body.disabled_at).toBe(firstDisabledAt);
    expect((await revokedEntries("sid:")).has(grant)).toBe(true);
  });
});

describe("DELETE /admin/clients/{id}", () => {
  it("ends the client's grants (D1 and KV), removes its requests and consents, then the client", async () => {
    const { token, client } = await adminAndClient();
    const alice = await registerUser();
    const grant = await insertGrant({ userId: alice.user.id, clientId: client.client_id });
    await insertConsent(alice.user.id, client.client_id);
    await insertRequest(client.client_id, alice.user.id);
    await insertRequest(client.client_id);
    expect(await countFor("oauth_requests", client.client_id)).toBe(2);

    const res = await call("DELETE", `/admin/clients/${client.client_id}`, { token });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ message: expect.any(String), grants_revoked: 1 });
    expect(await countFor("oauth_clients", client.client_id)).toBe(0);
    expect(await countFor("oauth_requests", client.client_id)).toBe(0);
    expect(await countFor("oauth_consents", client.client_id)).toBe(0);
    expect((await grantRow(grant))!.revoked_at).not.toBeNull(); // the row stays, revoked, until the cron's cleanup
    expect((await revokedEntries("sid:")).has(grant)).toBe(true);
    expect(await usableClient(domainDeps(), client.client_id)).toBeNull();
    expectError(await call("GET", `/admin/clients/${client.client_id}`, { token }), 404, "not_found");
    expectError(await call("DELETE", `/admin/clients/${client.client_id}`, { token }), 404, "not_found");
    expect((await auditOf("oauth_client_deleted", client.client_id))[0]).toMatchObject({ user_id: expect.any(String), grants_revoked: 1 });
  });

  it("a failed KV write leaves the client disabled, not gone: repeating the delete completes it", async () => {
    const { token, client } = await adminAndClient();
    const alice = await registerUser();
    const grant = await insertGrant({ userId: alice.user.id, clientId: client.client_id });
    expectError(await call("DELETE", `/admin/clients/${client.client_id}`, { token, bindings: { REVOKED: kvPutFailsOnce() } }), 503, "service_unavailable");
    expect((await call("GET", `/admin/clients/${client.client_id}`, { token })).body.disabled).toBe(true);
    expect(await usableClient(domainDeps(), client.client_id)).toBeNull();
    expect((await call("DELETE", `/admin/clients/${client.client_id}`, { token })).status).toBe(200);
    expect((await revokedEntries("sid:")).has(grant)).toBe(true);
    expect(await countFor("oauth_clients", client.client_id)).toBe(0);
  });
});

describe("a client with many grants", () => {
  it("is disabled within Workers' KV budget: D1 at once, KV over repeated tries (503 until done), never over 1,000 KV operations a request", async () => {
    const { token, client } = await adminAndClient();
    const alice = await registerUser();
    const now = Date.now();
    const ids = Array.from({ length: 620 }, () => crypto.randomUUID());
    const rows = ids.map((id) =>
      env.DB.prepare(
        "INSERT INTO sessions (id, user_id, refresh_token_hash, created_at, last_used_at, access_expires_at, expires_at, client_id, scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'openid')",
      ).bind(id, alice.user.id, crypto.randomUUID(), now - 1000, now - 1000, now + 600_000, now + 86_400_000, client.client_id),
    );
    for (let i = 0; i < rows.length; i += 100) await env.DB.batch(rows.slice(i, i + 100));
    const ops = { n: 0 };
    const counted = new Proxy(env.REVOKED, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? (...args: unknown[]) => (ops.n++, value.apply(target, args)) : value;
      },
    });
    const written = async () => {
      const kv = await revokedEntries("sid:");
      return ids.filter((id) => kv.has(id)).length;
    };

    const first = await call("PATCH", `/admin/clients/${client.client_id}`, { token, body: { disabled: true }, bindings: { REVOKED: counted } });
    expectError(first, 503, "service_unavailable");
    expect(first.headers.get("retry-after")).toBe("1");
    expect(ops.n).toBeLessThanOrEqual(1000);
    const live = await env.DB.prepare("SELECT count(*) AS n FROM sessions WHERE client_id = ? AND revoked_at IS NULL")
      .bind(client.client_id)
      .first<{ n: number }>();
    expect(live!.n).toBe(0); // D1 is complete from the first try
    expect(await written()).toBe(500);

    ops.n = 0;
    const again = await call("PATCH", `/admin/clients/${client.client_id}`, { token, body: { disabled: true }, bindings: { REVOKED: counted } });
    expect(again.status, again.text).toBe(200);
    expect(ops.n).toBeLessThanOrEqual(1000);
    expect(await written()).toBe(620);
  }, 30_000);
});
