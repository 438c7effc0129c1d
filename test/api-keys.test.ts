import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ALPHABET, crc32, generateKey, KEY_LENGTH, keyHash, parseKey } from "../src/auth/api-keys/format";
import { housekeeping } from "../src/cron";
import { sha256Base64Url } from "../src/encoding";
import { createKeyAs, keyRow, orgWith, userWithKey } from "./api-keys-setup";
import { adminToken, call, decodeJwtPart, expectError, registerUser } from "./helpers";

/** API keys (docs/api-keys.md): their format, storage, scopes, owners, the per-owner bound, revocation and removal. */

const DAY = 86_400_000;
/** What docs/api-keys.md gives secret scanners. */
const SCANNER = /\beak_[0-9A-Za-z]{46}\b/;

describe("the key format", () => {
  it("is eak_, 40 random base62 characters (238 bits), then 6 base62 characters of their CRC32", () => {
    const key = generateKey();
    expect(key).toMatch(SCANNER);
    expect(key).toHaveLength(KEY_LENGTH);
    expect(KEY_LENGTH).toBe(50);
    expect(40 * Math.log2(62)).toBeGreaterThanOrEqual(128);
    // The checksum, as a scanner computes it: CRC32 of the 40 characters, base62, most significant first.
    const random = key.slice(4, 44);
    let n = crc32(random);
    let checksum = "";
    for (let i = 0; i < 6; i++) {
      checksum = ALPHABET[n % 62] + checksum;
      n = Math.floor(n / 62);
    }
    expect(key.slice(44)).toBe(checksum);
    expect(parseKey(key)).toBe(key);
  });

  it("accepts the example docs/api-keys.md shows, and refuses it with one character changed", () => {
    expect(parseKey("eak_3kP9wQz2LmN8vB4xR7tY1uJ6hG5fD0sA2qW9eE4r4PwhKB")).not.toBeNull();
    expect(parseKey("eak_3kP9wQz2LmN8vB4xR7tY1uJ6hG5fD0sA2qW9eE4r4PwhKC")).toBeNull();
  });

  it("computes the CRC-32 that zlib does", () => {
    expect(crc32("123456789")).toBe(0xcbf43926);
    expect(crc32("")).toBe(0);
  });

  it("refuses a typo anywhere, a wrong prefix, length or alphabet, without any lookup", () => {
    const key = generateKey();
    for (const at of [4, 20, 43, 44, 49]) {
      const c = key[at]!;
      const typo = key.slice(0, at) + (c === "a" ? "b" : "a") + key.slice(at + 1);
      expect(parseKey(typo), `a typo at ${at}`).toBeNull();
    }
    expect(parseKey(`xak_${key.slice(4)}`)).toBeNull();
    expect(parseKey(key.slice(0, -1))).toBeNull();
    expect(parseKey(`${key}0`)).toBeNull();
    expect(parseKey(`${key.slice(0, 10)}-${key.slice(11)}`)).toBeNull();
    expect(parseKey("")).toBeNull();
  });

  it("draws every character of the alphabet, none far more often than the rest", () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 500; i++) for (const c of generateKey().slice(4, 44)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // 20,000 draws: about 323 each. A bias toward the first 8 characters (no rejection) would show as about 400.
    expect(Math.max(...counts.values())).toBeLessThan(400);
    expect(Math.min(...counts.values())).toBeGreaterThan(250);
  });
});

describe("POST /keys", () => {
  it("answers the key once, and stores only its SHA-256 and its first 12 characters", async () => {
    const { reg, key, secret } = await userWithKey({ name: "CI", scopes: ["user"], expires_in_days: 30 });
    expect(secret).toMatch(SCANNER);
    expect(parseKey(secret)).toBe(secret);
    expect(key).toMatchObject({
      name: "CI",
      start: secret.slice(0, 12),
      scopes: ["user"],
      owner: { type: "user", id: reg.user.id },
      created_by: reg.user.id,
      last_used_at: null,
      revoked_at: null,
    });
    expect(Date.parse(key.expires_at!) - Date.parse(key.created_at)).toBe(30 * DAY);
    const row = await keyRow(key.id);
    expect(row?.key_hash).toBe(await sha256Base64Url(secret));
    expect(row?.key_hash).toBe(await keyHash(secret));
    // Listed without it.
    const list = await call("GET", "/keys", { token: reg.access_token });
    expect(list.status).toBe(200);
    expect(list.text).not.toContain(secret);
    expect(list.text).not.toContain(secret.slice(12));
  });

  it("never stores a key in plain text: no text in any column of any D1 table holds one", async () => {
    const secrets: string[] = [];
    for (let i = 0; i < 3; i++) secrets.push((await userWithKey()).secret);
    const admin = await adminToken();
    const me = await call("GET", "/me", { token: admin });
    const org = await orgWith({ [me.body.user.id]: "owner" });
    const orgKey = await createKeyAs(admin, { org_id: org.id, scopes: ["keys:read"] });
    expect(orgKey.status, orgKey.text).toBe(201);
    secrets.push(orgKey.body.secret);
    const tables = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'").all<{
      name: string;
    }>();
    expect(tables.results.map((t) => t.name)).toContain("api_keys");
    let scanned = 0;
    for (const { name } of tables.results) {
      const rows = await env.DB.prepare(`SELECT * FROM "${name}"`).all<Record<string, unknown>>();
      for (const row of rows.results) {
        for (const value of Object.values(row)) {
          if (typeof value !== "string") continue;
          scanned++;
          for (const secret of secrets) {
            expect(value, `${name}`).not.toContain(secret.slice(4, 44)); // the random part, anywhere
            expect(value).not.toMatch(SCANNER);
          }
        }
      }
    }
    expect(scanned).toBeGreaterThan(20);
  });

  it("refuses a user's key with scopes beyond the user's roles: 403 scope_not_allowed", async () => {
    const reg = await registerUser();
    expectError(await createKeyAs(reg.access_token, { scopes: ["user", "admin"] }), 403, "scope_not_allowed");
    const admin = await adminToken();
    const res = await createKeyAs(admin, { scopes: ["user", "admin"] });
    expect(res.status, res.text).toBe(201);
    expect(res.body.key.scopes).toEqual(["user", "admin"]);
  });

  it("judges a user's scopes by the roles in D1, not the token's: a role taken away is refused at once", async () => {
    const admin = await adminToken();
    const { sub } = decodeJwtPart(admin, 1) as { sub: string };
    await env.DB.prepare(`UPDATE users SET roles = '["user"]' WHERE id = ?`).bind(sub).run();
    expectError(await createKeyAs(admin, { scopes: ["admin"] }), 403, "scope_not_allowed");
  });

  it("takes the step-up: no password, no key", async () => {
    const reg = await registerUser();
    const res = await call("POST", "/keys", { token: reg.access_token, body: { name: "k", scopes: ["user"] } });
    expectError(res, 400, "validation_failed");
    expectError(
      await call("POST", "/keys", { token: reg.access_token, body: { name: "k", scopes: ["user"], current_password: "wrong one 1" } }),
      401,
      "invalid_credentials",
    );
  });

  it("validates the body", async () => {
    const reg = await registerUser();
    for (const body of [{ scopes: [] }, { name: "" }, { scopes: ["a b"] }, { expires_in_days: 0 }, { expires_in_days: 3651 }, { name: "x".repeat(101) }]) {
      const res = await createKeyAs(reg.access_token, body);
      expectError(res, 400, "validation_failed");
    }
  });

  it("organization keys: keys:manage to create, scopes within the creator's role, 404 for an organization the caller is not in", async () => {
    const [owner, admin, member, stranger] = await Promise.all([registerUser(), registerUser(), registerUser(), registerUser()]);
    const org = await orgWith({ [owner.user.id]: "owner", [admin.user.id]: "admin", [member.user.id]: "member" });
    expectError(await createKeyAs(member.access_token, { org_id: org.id, scopes: ["org:read"] }), 403, "forbidden");
    expectError(await createKeyAs(stranger.access_token, { org_id: org.id, scopes: ["org:read"] }), 404, "not_found");
    // An admin may not hand a key what only an owner may do; the owner may.
    expectError(await createKeyAs(admin.access_token, { org_id: org.id, scopes: ["org:read", "org:delete"] }), 403, "scope_not_allowed");
    expectError(await createKeyAs(admin.access_token, { org_id: org.id, scopes: ["user"] }), 403, "scope_not_allowed");
    const made = await createKeyAs(admin.access_token, { org_id: org.id, scopes: ["org:read", "keys:read"] });
    expect(made.status, made.text).toBe(201);
    expect(made.body.key).toMatchObject({ owner: { type: "organization", id: org.id }, created_by: admin.user.id, scopes: ["org:read", "keys:read"] });
    expect((await createKeyAs(owner.access_token, { org_id: org.id, scopes: ["org:delete"] })).status).toBe(201);
    const row = await keyRow(made.body.key.id);
    expect(row).toMatchObject({ user_id: null, org_id: org.id });
  });

  it("holds an owner to 100 live keys, in the insert itself; a revoked or expired one frees a place", async () => {
    const reg = await registerUser();
    const insert = (i: number, expiresAt: number | null) =>
      env.DB.prepare(
        "INSERT INTO api_keys (id, key_hash, start, name, user_id, created_by, scopes, created_at, expires_at) VALUES (?, ?, 'eak_x', 'filler', ?, ?, '[\"user\"]', ?, ?)",
      ).bind(`filler-${reg.user.id}-${i}`, `hash-${reg.user.id}-${i}`, reg.user.id, reg.user.id, Date.now(), expiresAt);
    await env.DB.batch(Array.from({ length: 99 }, (_, i) => insert(i, null)));
    await insert(99, Date.now() - 1000).run(); // expired: not live
    const hundredth = await createKeyAs(reg.access_token);
    expect(hundredth.status, hundredth.text).toBe(201);
    expectError(await createKeyAs(reg.access_token), 409, "too_many_api_keys");
    expect((await call("DELETE", `/keys/${hundredth.body.key.id}`, { token: reg.access_token })).status).toBe(200);
    expect((await createKeyAs(reg.access_token)).status).toBe(201);
    const live = await env.DB.prepare("SELECT count(*) AS n FROM api_keys WHERE user_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)")
      .bind(reg.user.id, Date.now())
      .first<{ n: number }>();
    expect(live?.n).toBe(100);
  });

  it("holds an owner to 300 rows with the revoked ones the cron has not removed yet: creating and revoking in a loop stops", async () => {
    const reg = await registerUser();
    const revoked = (i: number) =>
      env.DB.prepare(
        "INSERT INTO api_keys (id, key_hash, start, name, user_id, created_by, scopes, created_at, revoked_at) VALUES (?, ?, 'eak_x', 'old', ?, ?, '[\"user\"]', ?, ?)",
      ).bind(`old-${reg.user.id}-${i}`, `old-hash-${reg.user.id}-${i}`, reg.user.id, reg.user.id, Date.now(), Date.now());
    await env.DB.batch(Array.from({ length: 299 }, (_, i) => revoked(i)));
    const made = await createKeyAs(reg.access_token); // the 300th row
    expect(made.status, made.text).toBe(201);
    expectError(await createKeyAs(reg.access_token), 409, "too_many_api_keys");
    // Older than every revoked one, the live key still leads the list (which holds 200): never hidden behind them.
    await env.DB.prepare("UPDATE api_keys SET created_at = created_at - 3600000 WHERE id = ?").bind(made.body.key.id).run();
    const list = await call("GET", "/keys", { token: reg.access_token });
    expect(list.body.keys[0].id).toBe(made.body.key.id);
  });

  it("refuses a name with control or invisible characters (it is shown in lists and mailed)", async () => {
    const reg = await registerUser();
    for (const name of ["line\nbreak", "zero\u200bwidth"]) {
      const res = await createKeyAs(reg.access_token, { name });
      expectError(res, 400, "validation_failed");
      expect(res.body.fields).toHaveProperty("name");
    }
  });
});

describe("GET /keys and DELETE /keys/{id}", () => {
  it("lists the caller's own keys, never another user's", async () => {
    const a = await userWithKey({ name: "a's" });
    const b = await userWithKey({ name: "b's" });
    const list = await call("GET", "/keys", { token: a.reg.access_token });
    expect(list.body.keys.map((k: { id: string }) => k.id)).toEqual([a.key.id]);
    expect(list.body.keys.map((k: { id: string }) => k.id)).not.toContain(b.key.id);
  });

  it("lists an organization's keys for keys:read; 403 for a member without it, 404 for a stranger", async () => {
    const [admin, member, stranger] = await Promise.all([registerUser(), registerUser(), registerUser()]);
    const org = await orgWith({ [admin.user.id]: "admin", [member.user.id]: "member" });
    const made = await createKeyAs(admin.access_token, { org_id: org.id, scopes: ["org:read"] });
    const list = await call("GET", `/keys?org_id=${org.id}`, { token: admin.access_token });
    expect(list.status, list.text).toBe(200);
    expect(list.body.keys.map((k: { id: string }) => k.id)).toEqual([made.body.key.id]);
    // Not among the admin's own.
    expect((await call("GET", "/keys", { token: admin.access_token })).body.keys).toEqual([]);
    expectError(await call("GET", `/keys?org_id=${org.id}`, { token: member.access_token }), 403, "forbidden");
    expectError(await call("GET", `/keys?org_id=${org.id}`, { token: stranger.access_token }), 404, "not_found");
  });

  it("revokes the owner's key, audited with the actor; another user gets 404 and changes nothing", async () => {
    const { reg, key } = await userWithKey();
    const other = await registerUser();
    expectError(await call("DELETE", `/keys/${key.id}`, { token: other.access_token }), 404, "not_found");
    expect((await keyRow(key.id))?.revoked_at).toBeNull();
    const res = await call("DELETE", `/keys/${key.id}`, { token: reg.access_token });
    expect(res.status, res.text).toBe(200);
    expect((await keyRow(key.id))?.revoked_at).toEqual(expect.any(Number));
    const listed = (await call("GET", "/keys", { token: reg.access_token })).body.keys[0];
    expect(listed.revoked_at).toEqual(expect.any(String));
    // Again: the same answer, nothing more recorded.
    expect((await call("DELETE", `/keys/${key.id}`, { token: reg.access_token })).status).toBe(200);
    const events = await env.DB.prepare("SELECT event, user_id, detail FROM audit_events WHERE event LIKE 'api_key_%' AND detail LIKE ?")
      .bind(`%${key.id}%`)
      .all<{ event: string; user_id: string; detail: string }>();
    expect(events.results.map((e) => [e.event, e.user_id, JSON.parse(e.detail).owner_id])).toEqual([
      ["api_key_created", reg.user.id, reg.user.id],
      ["api_key_revoked", reg.user.id, reg.user.id],
    ]);
    expectError(await call("DELETE", "/keys/no-such-key", { token: reg.access_token }), 404, "not_found");
  });

  it("an organization's key is revoked by any member with keys:manage, not by a member without it", async () => {
    const [creator, admin, member] = await Promise.all([registerUser(), registerUser(), registerUser()]);
    const org = await orgWith({ [creator.user.id]: "admin", [admin.user.id]: "admin", [member.user.id]: "member" });
    const made = await createKeyAs(creator.access_token, { org_id: org.id, scopes: ["org:read"] });
    expectError(await call("DELETE", `/keys/${made.body.key.id}`, { token: member.access_token }), 403, "forbidden");
    expect((await call("DELETE", `/keys/${made.body.key.id}`, { token: admin.access_token })).status).toBe(200);
    const revoked = await env.DB.prepare("SELECT user_id, detail FROM audit_events WHERE event = 'api_key_revoked' AND detail LIKE ?")
      .bind(`%${made.body.key.id}%`)
      .first<{ user_id: string; detail: string }>();
    expect(revoked?.user_id).toBe(admin.user.id);
    expect(JSON.parse(revoked!.detail)).toMatchObject({ owner_type: "organization", owner_id: org.id });
  });
});

describe("the cron", () => {
  it("removes keys revoked or expired over 30 days ago, and no other", async () => {
    const revoked = await userWithKey();
    await call("DELETE", `/keys/${revoked.key.id}`, { token: revoked.reg.access_token });
    const expiring = await userWithKey({ expires_in_days: 1 });
    const live = await userWithKey();
    await housekeeping(env, new Date(Date.now() + 29 * DAY));
    expect(await keyRow(revoked.key.id)).not.toBeNull();
    expect(await keyRow(expiring.key.id)).not.toBeNull();
    const { apiKeys } = await housekeeping(env, new Date(Date.now() + 32 * DAY));
    expect(apiKeys).toBeGreaterThanOrEqual(2);
    expect(await keyRow(revoked.key.id)).toBeNull();
    expect(await keyRow(expiring.key.id)).toBeNull();
    expect(await keyRow(live.key.id)).not.toBeNull();
  });
});
