import { env } from "cloudflare:workers";
import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { generateKey } from "../src/auth/api-keys/format";
import { createKeyAs, exchange, keyRow, orgWith, removeMember, userWithKey } from "./api-keys-setup";
import { adminToken, call, countingD1, decodeJwtPart, expectError, inOneLimiterWindow, mailbox, PASSWORD, randomIp, registerUser, uniqueName } from "./helpers";

/**
 * An API key exchanged for an access token at POST /oauth2/token (RFC 8693; docs/api-keys.md): what
 * the token says and who accepts it, what each refusal costs (no lookup for a malformed key, no write
 * for a wrong, revoked or expired one), the limits, and the last-used time.
 */

const refusedGrant = (res: Awaited<ReturnType<typeof exchange>>, error = "invalid_grant") => {
  expect(res.status, res.text).toBe(400);
  expect(res.body).toMatchObject({ error, error_description: expect.any(String) });
};

/** As a resource server checks a token: the JWKS, the issuer, the audience, typ at+jwt. */
async function verifiedAsBackend(token: string) {
  const jwks = (await call<JSONWebKeySet>("GET", "/.well-known/jwks.json")).body;
  return jwtVerify(token, createLocalJWKSet(jwks), { issuer: env.ISSUER, audience: env.AUDIENCE, typ: "at+jwt", algorithms: ["ES256"] });
}

/** One exchange with a D1 binding that counts what it is asked, the work after the answer included. */
async function counted(key: string) {
  const { DB, trips } = countingD1();
  const res = await exchange(key, {}, { bindings: { DB } });
  return { res, ...trips };
}

describe("exchanging a user's key", () => {
  it("gives an access token a backend verifies with the JWKS, carrying the owner, the key and its scopes", async () => {
    const { reg, key, secret } = await userWithKey({ scopes: ["user"] });
    const res = await exchange(secret);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({
      access_token: expect.any(String),
      issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
      token_type: "Bearer",
      expires_in: Number(env.ACCESS_TOKEN_TTL),
      scope: "user",
    });
    const { payload, protectedHeader } = await verifiedAsBackend(res.body.access_token);
    expect(protectedHeader).toMatchObject({ alg: "ES256", typ: "at+jwt", kid: expect.any(String) });
    expect(payload).toEqual({
      iss: env.ISSUER,
      aud: env.AUDIENCE,
      sub: reg.user.id,
      client_id: key.id,
      key_id: key.id,
      owner_type: "user",
      scope: "user",
      jti: expect.any(String),
      iat: expect.any(Number),
      exp: payload.iat! + Number(env.ACCESS_TOKEN_TTL),
    });
  });

  it("is refused by the API's own routes: a key's token is a machine's, not a session's", async () => {
    const { secret } = await userWithKey();
    const token = (await exchange(secret)).body.access_token;
    expectError(await call("GET", "/me", { token }), 401, "invalid_token");
    expectError(await call("GET", "/protected", { token }), 401, "invalid_token");
    expectError(await call("GET", "/keys", { token }), 401, "invalid_token");
  });

  it("carries the key's scopes as the user's roles are now: a role taken away leaves the token", async () => {
    const admin = await adminToken();
    const made = await createKeyAs(admin, { scopes: ["user", "admin"] });
    expect((await exchange(made.body.secret)).body.scope).toBe("user admin");
    const { sub } = decodeJwtPart(admin, 1) as { sub: string };
    await env.DB.prepare(`UPDATE users SET roles = '["user"]' WHERE id = ?`).bind(sub).run();
    const after = await exchange(made.body.secret);
    expect(after.body.scope).toBe("user");
    expect((await verifiedAsBackend(after.body.access_token)).payload.scope).toBe("user");
  });

  it("narrows to the scope asked for; a wider one is invalid_scope", async () => {
    const admin = await adminToken();
    const { secret } = (await createKeyAs(admin, { scopes: ["user", "admin"] })).body;
    const narrow = await exchange(secret, { scope: "admin" });
    expect(narrow.status, narrow.text).toBe(200);
    expect(narrow.body.scope).toBe("admin");
    refusedGrant(await exchange(secret, { scope: "user auditor" }), "invalid_scope");
  });

  it("refuses a key of an account that is disabled or gone", async () => {
    const disabled = await userWithKey();
    await env.DB.prepare("UPDATE users SET disabled_at = ? WHERE id = ?").bind(Date.now(), disabled.reg.user.id).run();
    refusedGrant(await exchange(disabled.secret));
    const gone = await userWithKey();
    await env.DB.prepare("DELETE FROM users WHERE id = ?").bind(gone.reg.user.id).run();
    refusedGrant(await exchange(gone.secret));
  });

  it("asks for the grant's fields: no subject_token_type or another type is invalid_request; an unknown grant is named", async () => {
    const { secret } = await userWithKey();
    refusedGrant(await exchange(secret, { subject_token_type: "urn:ietf:params:oauth:token-type:access_token" }), "invalid_request");
    const { tokenRequest } = await import("./oauth");
    refusedGrant(await tokenRequest({ grant_type: "urn:ietf:params:oauth:grant-type:token-exchange", subject_token: secret }), "invalid_request");
    refusedGrant(await tokenRequest({ grant_type: "urn:ietf:params:oauth:grant-type:token-exchange" }), "invalid_request");
  });
});

describe("exchanging an organization's key", () => {
  it("gives a token whose subject is the organization, and keeps working after its creator leaves", async () => {
    const [owner, creator] = await Promise.all([registerUser(), registerUser()]);
    const org = await orgWith({ [owner.user.id]: "owner", [creator.user.id]: "admin" });
    const made = await createKeyAs(creator.access_token, { org_id: org.id, scopes: ["org:read", "members:read"] });
    expect(made.status, made.text).toBe(201);
    await removeMember(org.id, creator.user.id);
    const res = await exchange(made.body.secret);
    expect(res.status, res.text).toBe(200);
    const { payload } = await verifiedAsBackend(res.body.access_token);
    expect(payload).toMatchObject({
      sub: org.id,
      client_id: made.body.key.id,
      key_id: made.body.key.id,
      owner_type: "organization",
      org_id: org.id,
      org_slug: org.slug,
      scope: "org:read members:read",
    });
    // Even the creator's account going does not end it.
    await env.DB.prepare("DELETE FROM users WHERE id = ?").bind(creator.user.id).run();
    expect((await exchange(made.body.secret)).status).toBe(200);
  });

  it("is refused once the organization is deleted", async () => {
    const owner = await registerUser();
    const org = await orgWith({ [owner.user.id]: "owner" });
    const made = await createKeyAs(owner.access_token, { org_id: org.id, scopes: ["org:read"] });
    await env.DB.prepare("DELETE FROM organizations WHERE id = ?").bind(org.id).run();
    refusedGrant(await exchange(made.body.secret));
    expect(await keyRow(made.body.key.id)).toBeNull(); // its keys went with it (ON DELETE CASCADE)
  });
});

describe("what a refusal costs", () => {
  it("a key with a broken checksum: invalid_grant without any D1 read", async () => {
    const { secret } = await userWithKey();
    const broken = `${secret.slice(0, 20)}${secret[20] === "A" ? "B" : "A"}${secret.slice(21)}`;
    for (const key of [broken, secret.slice(0, -1), `x${secret}`, "not a key"]) {
      const { res, n, statements } = await counted(key);
      refusedGrant(res);
      expect([n, statements], key).toEqual([0, 0]);
    }
  });

  it("a well-formed key nobody holds: invalid_grant after one read, no write", async () => {
    const { res, n, statements, writes } = await counted(generateKey());
    refusedGrant(res);
    expect([n, statements, writes]).toEqual([1, 1, 0]);
  });

  it("a revoked key: refused at the next exchange, with no write", async () => {
    const { reg, key, secret } = await userWithKey();
    expect((await exchange(secret)).status).toBe(200);
    expect((await call("DELETE", `/keys/${key.id}`, { token: reg.access_token })).status).toBe(200);
    const { res, statements, writes } = await counted(secret);
    refusedGrant(res);
    expect([statements, writes]).toEqual([1, 0]);
  });

  it("an expired key: refused, with no write", async () => {
    const { key, secret } = await userWithKey({ expires_in_days: 1 });
    await env.DB.prepare("UPDATE api_keys SET expires_at = ?, last_used_at = NULL WHERE id = ?")
      .bind(Date.now() - 1, key.id)
      .run();
    const { res, writes } = await counted(secret);
    refusedGrant(res);
    expect(writes).toBe(0);
    expect((await keyRow(key.id))?.last_used_at).toBeNull();
  });

  it("logs a refused exchange with the key's id and why, never the key", async () => {
    const { key, secret } = await userWithKey();
    await env.DB.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ?").bind(Date.now(), key.id).run();
    const lines: string[] = [];
    const original = console.log;
    const originalWarn = console.warn;
    console.log = (...args: unknown[]) => void lines.push(args.map(String).join(" "));
    console.warn = console.log;
    try {
      refusedGrant(await exchange(secret));
    } finally {
      console.log = original;
      console.warn = originalWarn;
    }
    const refused = lines.find((l) => l.includes("api_key_exchange_refused"));
    expect(refused).toBeDefined();
    expect(JSON.parse(refused!)).toMatchObject({ key_id: key.id, reason: "revoked" });
    expect(lines.join("\n")).not.toContain(secret.slice(4, 44));
    const stored = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE event = 'api_key_exchange_refused'").first<{ n: number }>();
    expect(stored?.n).toBe(0);
  });
});

describe("the last use", () => {
  it("is written after the answer, at most once a minute", async () => {
    const { key, secret } = await userWithKey();
    const first = await counted(secret);
    expect(first.res.status).toBe(200);
    expect([first.statements, first.writes]).toEqual([2, 1]); // the read, then the last use after the answer
    const usedAt = (await keyRow(key.id))?.last_used_at as number;
    expect(usedAt).toBeGreaterThan(Date.now() - 10_000);
    // Within the minute: the read alone, and the time stays.
    const again = await counted(secret);
    expect(again.res.status).toBe(200);
    expect([again.statements, again.writes]).toEqual([1, 0]);
    expect((await keyRow(key.id))?.last_used_at).toBe(usedAt);
    // A minute on, written again.
    await env.DB.prepare("UPDATE api_keys SET last_used_at = ? WHERE id = ?")
      .bind(Date.now() - 61_000, key.id)
      .run();
    expect((await counted(secret)).writes).toBe(1);
    expect((await keyRow(key.id))?.last_used_at as number).toBeGreaterThan(Date.now() - 10_000);
  });

  it("a concurrent writer that recorded it within the minute is not overwritten", async () => {
    const { key, secret } = await userWithKey();
    const { touchApiKey } = await import("../src/db/api-keys");
    const { getDb } = await import("../src/db/client");
    const recent = Date.now() - 5_000;
    await env.DB.prepare("UPDATE api_keys SET last_used_at = ? WHERE id = ?").bind(recent, key.id).run();
    await touchApiKey(getDb(env.DB), key.id, new Date(), 60_000);
    expect((await keyRow(key.id))?.last_used_at).toBe(recent);
    expect((await exchange(secret)).status).toBe(200);
    expect((await keyRow(key.id))?.last_used_at).toBe(recent);
  });
});

describe("the limits", () => {
  it("per key: 60 exchanges a minute, then 429 rate_limited with Retry-After, from any address", async () => {
    await inOneLimiterWindow(25);
    const { secret, key } = await userWithKey();
    for (let i = 0; i < 60; i++) expect((await exchange(secret)).status).toBe(200);
    const res = await exchange(secret);
    expectError(res, 429, "rate_limited");
    expect(Number(res.headers.get("retry-after"))).toBe(60);
    // The limiter's audit row names the key by a digest, never by the hash D1 looks it up with.
    const { key_hash } = (await keyRow(key.id))!;
    const rows = await env.DB.prepare("SELECT detail FROM audit_events WHERE event = 'rate_limited' AND detail LIKE '%API_KEY_LIMITER%'").all<{
      detail: string;
    }>();
    expect(rows.results.length).toBeGreaterThan(0);
    for (const r of rows.results) expect(r.detail).not.toContain(key_hash as string);
    // Another key is not affected.
    expect((await exchange((await userWithKey()).secret)).status).toBe(200);
  }, 60_000);

  it("per client address, before any lookup: 120 exchanges a minute, then 429 without reading D1", async () => {
    await inOneLimiterWindow(25);
    const ip = randomIp();
    for (let i = 0; i < 120; i++) refusedGrant(await exchange(generateKey(), {}, { ip }));
    const { DB, trips } = countingD1();
    const res = await exchange(generateKey(), {}, { ip, bindings: { DB } });
    expectError(res, 429, "rate_limited");
    expect(Number(res.headers.get("retry-after"))).toBe(60);
    // The limiter's own record (one audit row per period), and no lookup of the key.
    expect(trips.statements).toBeLessThanOrEqual(1);
    expect(trips.writes).toBe(trips.statements);
    expect((await exchange(generateKey(), {}, { ip: randomIp() })).status).toBe(400);
  }, 60_000);
});

describe("a password reset by mail", () => {
  it("revokes the account's own keys (someone who had the password cannot keep one); the key's creation was mailed", async () => {
    const box = mailbox();
    const email = `${uniqueName("keys")}@example.com`;
    const reg = await registerUser({ email });
    await env.DB.prepare("UPDATE users SET email_verified_at = ? WHERE id = ?")
      .bind(Date.now() - 60_000, reg.user.id)
      .run();
    const created = await box.send("POST", "/keys", { token: reg.access_token, body: { name: "ci", scopes: ["user"], current_password: PASSWORD } });
    expect(created.status, created.text).toBe(201);
    expect(box.sent.filter((m) => m.to === email && m.text.includes('API key "ci"'))).toHaveLength(1);
    expect((await exchange(created.body.secret)).status).toBe(200);

    await box.send("POST", "/password/forgot", { body: { email } });
    const reset = await call("POST", "/password/reset", { body: { token: box.link(email, "reset-password"), new_password: "a brand new pass 77" } });
    expect(reset.status, reset.text).toBe(200);
    refusedGrant(await exchange(created.body.secret));
    expect((await keyRow(created.body.key.id))?.revoked_at).not.toBeNull();
  });
});
