import { env } from "cloudflare:workers";
import { createLocalJWKSet, jwtVerify } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { usableClient } from "../src/auth/oauth-server/clients";
import { documentUrlProblem, loopbackDevelopment, specialUseHost } from "../src/auth/oauth-server/document-fetch";
import { clientFromDocument } from "../src/auth/oauth-server/metadata-document";
import { clientScopes } from "../src/auth/oauth-server/policy";
import { getConfig } from "../src/config";
import { housekeeping } from "../src/cron";
import { getDb } from "../src/db/client";
import { upsertSourcedClient } from "../src/db/oauth-clients";
import type { Deps } from "../src/deps";
import { toBase64Url } from "../src/encoding";
import { adminToken, call, registerUser } from "./helpers";
import { approvedCode, pkce, tokenRequest } from "./oauth";

// Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document; MCP 2025-11-25): a
// client_id that is a URL names its client by the JSON there. Documents come from a real server on
// loopback (scripts/client-documents.mjs); the test deployment's ISSUER is http://localhost, the
// local deployment in which loopback documents are allowed. The production rule is judged with an
// https ISSUER.

afterEach(() => vi.restoreAllMocks());

const DOCS = env.TEST_CLIENT_DOCUMENTS;
const unique = () => crypto.randomUUID().slice(0, 12);
const docUrl = (kind: string, arg?: string) => `${DOCS}/${kind}/${arg ? `${arg}/` : ""}${unique()}`;
const custom = (fields: Record<string, unknown>) => docUrl("custom", toBase64Url(new TextEncoder().encode(JSON.stringify(fields))));
const hits = async (url: string) => (await (await fetch(`${DOCS}/hits${new URL(url).pathname}`)).json<{ hits: number }>()).hits;
const row = (id: string) => env.DB.prepare("SELECT * FROM oauth_clients WHERE id = ?").bind(id).first<Record<string, unknown>>();
const rows = async (id: string) => (await env.DB.prepare("SELECT COUNT(*) AS n FROM oauth_clients WHERE id = ?").bind(id).first<{ n: number }>())!.n;
const lapse = (id: string) =>
  env.DB.prepare("UPDATE oauth_clients SET expires_at = ? WHERE id = ?")
    .bind(Date.now() - 1000, id)
    .run();

function deps(over: Partial<Env> = {}): Deps {
  return { db: getDb(env.DB), replica: () => getDb(env.DB), kv: env.REVOKED, config: getConfig({ ...env, ...over }), requestId: "test" };
}

/** The client_document_refused lines logged while `run` runs. */
async function refusals(run: () => Promise<unknown>) {
  const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
  await run();
  const lines = warn.mock.calls.map((c) => String(c[0]));
  warn.mockRestore();
  return lines.map((l) => JSON.parse(l)).filter((l) => l.event === "client_document_refused");
}

describe("a good document", () => {
  it("makes a public client of the document's name, site and redirect URIs, stored as a cache row", async () => {
    const id = docUrl("doc");
    const before = Date.now();
    const client = await usableClient(deps(), id);
    expect(client).toMatchObject({
      id,
      name: "Document Client",
      uri: `${DOCS}/`,
      redirectUris: ["http://127.0.0.1:3000/callback", "https://client.example.com/callback"],
      grantTypes: ["authorization_code", "refresh_token"],
      secretHash: null,
      resources: [],
      source: "metadata",
      disabledAt: null,
    });
    expect(client!.scope.split(" ")).toEqual(expect.arrayContaining(["openid", "profile", "email", "offline_access"]));
    // No Cache-Control: kept an hour.
    const expires = client!.expiresAt!.getTime();
    expect(expires).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 3_600_000);
    expect(await row(id)).toMatchObject({ source: "metadata", secret_hash: null });
  });

  it("names a site on the consent page only on the document's own origin; a scope it names bounds what it may ask", async () => {
    const foreign = await usableClient(deps(), custom({ client_uri: "https://github.com", scope: "openid profile unknown:scope" }));
    expect(foreign).toMatchObject({ uri: null, scope: "openid profile unknown:scope" });
    expect(clientScopes(getConfig(env), foreign!)).toEqual(["openid", "profile"]);
  });

  it("is fetched once while its row is fresh", async () => {
    const id = docUrl("doc");
    expect(await usableClient(deps(), id)).not.toBeNull();
    expect(await usableClient(deps(), id)).not.toBeNull();
    expect(await clientFromDocument(deps(), id)).not.toBeNull();
    expect(await hits(id)).toBe(1);
  });

  it("is fetched again once its row lapsed, and the row takes the new document", async () => {
    const id = docUrl("versioned");
    expect((await usableClient(deps(), id))!.name).toBe("Versioned 1");
    const created = (await row(id))!.created_at;
    await lapse(id);
    expect((await usableClient(deps(), id))!.name).toBe("Versioned 2");
    expect(await hits(id)).toBe(2);
    expect(await row(id)).toMatchObject({ name: "Versioned 2", created_at: created });
    expect((await row(id))!.expires_at as number).toBeGreaterThan(Date.now());
  });

  it("a lapsed row whose document now fails is refused, not served stale", async () => {
    const id = docUrl("once");
    expect(await usableClient(deps(), id)).not.toBeNull();
    await lapse(id);
    const logged = await refusals(async () => expect(await usableClient(deps(), id)).toBeNull());
    expect(logged).toEqual([expect.objectContaining({ reason: "status_500", client_id: id })]);
    expect(await hits(id)).toBe(2);
  });

  it("keeps the document for its Cache-Control max-age, held between 5 minutes and 24 hours", async () => {
    for (const [header, seconds] of [
      ["max-age=1800", 1800],
      ["public, max-age=60", 300],
      ["max-age=1000000", 86_400],
      ["no-store", 300],
    ] as const) {
      const id = docUrl("max-age", encodeURIComponent(header));
      const before = Date.now();
      const client = await usableClient(deps(), id);
      expect(client, header).not.toBeNull();
      expect(client!.expiresAt!.getTime(), header).toBeGreaterThanOrEqual(before + seconds * 1000);
      expect(client!.expiresAt!.getTime(), header).toBeLessThanOrEqual(Date.now() + seconds * 1000);
    }
  });

  it("two first uses at once both get the client, and one row is stored", async () => {
    const id = docUrl("delayed");
    const [a, b] = await Promise.all([usableClient(deps(), id), usableClient(deps(), id)]);
    expect(a?.id).toBe(id);
    expect(b?.id).toBe(id);
    expect(await rows(id)).toBe(1);
    expect(await hits(id)).toBe(2); // both fetched (neither had a row): the upsert made them one
  });

  it("exchanges a code at the token endpoint as a public client, and refuses it a secret", async () => {
    const id = docUrl("doc");
    expect(await usableClient(deps(), id)).not.toBeNull();
    const user = await registerUser();
    const code = await approvedCode({ id, redirectUri: "http://127.0.0.1:3000/callback" }, user, { scope: "openid offline_access" });
    const form = {
      grant_type: "authorization_code",
      code: code.code,
      redirect_uri: "http://127.0.0.1:3000/callback",
      code_verifier: code.verifier,
      client_id: id,
    };
    const withSecret = await tokenRequest({ ...form, client_secret: "a-secret-it-never-had-0123456789" });
    expect(withSecret.status).toBe(401);
    expect(withSecret.body.error).toBe("invalid_client");
    const res = await tokenRequest(form);
    expect(res.status, res.text).toBe(200);
    expect(res.body.refresh_token).toEqual(expect.any(String));
    const jwks = createLocalJWKSet((await call("GET", "/.well-known/jwks.json")).body);
    const at = await jwtVerify(res.body.access_token, jwks, { issuer: env.ISSUER, typ: "at+jwt" });
    expect(at.payload.client_id).toBe(id);
    expect(await hits(id)).toBe(1); // the exchange used the cached row
  });

  it("a refresh after the row lapsed fetches the document again; one that is gone ends the client's refreshes", async () => {
    const id = docUrl("once"); // a good document once, a 500 after
    expect(await usableClient(deps(), id)).not.toBeNull();
    const code = await approvedCode({ id, redirectUri: "http://127.0.0.1:3000/callback" }, await registerUser(), { scope: "openid offline_access" });
    const tokens = await tokenRequest({
      grant_type: "authorization_code",
      code: code.code,
      redirect_uri: "http://127.0.0.1:3000/callback",
      code_verifier: code.verifier,
      client_id: id,
    });
    expect(tokens.status, tokens.text).toBe(200);
    const refresh = (refresh_token: string) => tokenRequest({ grant_type: "refresh_token", refresh_token, client_id: id }, { ip: "10.91.0.1" });
    const fresh = await refresh(tokens.body.refresh_token);
    expect(fresh.status, fresh.text).toBe(200);
    expect(await hits(id)).toBe(1);
    await lapse(id);
    const logged = await refusals(async () => {
      const refused = await refresh(fresh.body.refresh_token);
      expect(refused.status).toBe(401);
      expect(refused.body.error).toBe("invalid_client");
    });
    expect(logged.map((l) => l.reason)).toEqual(["status_500"]);
    expect(await hits(id)).toBe(2);
  });

  it("an admin's disabling stands: no client, and no fetch, fresh or lapsed", async () => {
    const id = docUrl("doc");
    expect(await usableClient(deps(), id)).not.toBeNull();
    await env.DB.prepare("UPDATE oauth_clients SET disabled_at = ? WHERE id = ?").bind(Date.now(), id).run();
    expect(await usableClient(deps(), id)).toBeNull();
    await lapse(id);
    expect(await usableClient(deps(), id)).toBeNull();
    expect(await hits(id)).toBe(1);
  });

  it("a URL an admin registered as a client_id is that client: never fetched, never overwritten", async () => {
    const id = docUrl("doc");
    await env.DB.prepare(
      "INSERT INTO oauth_clients (id, name, redirect_uris, grant_types, scope, resources, source, created_at) VALUES (?, 'Admin Named', '[\"https://a.example/cb\"]', '[\"authorization_code\"]', 'openid', '[]', 'admin', ?)",
    )
      .bind(id, Date.now())
      .run();
    expect((await usableClient(deps(), id))!.name).toBe("Admin Named");
    expect(await clientFromDocument(deps(), id)).toBeNull();
    expect(await hits(id)).toBe(0);
    expect((await row(id))!.source).toBe("admin");
    // Even a fetch that began before the admin's registration leaves it as it is.
    const now = new Date();
    const late = {
      id,
      name: "Document",
      uri: null,
      redirectUris: ["https://evil.example/cb"],
      secretHash: null,
      grantTypes: ["authorization_code"],
      scope: "openid",
      resources: [],
      source: "metadata" as const,
      expiresAt: now,
    };
    expect(await upsertSourcedClient(getDb(env.DB), late, now)).toBeUndefined();
    expect(await row(id)).toMatchObject({ name: "Admin Named", redirect_uris: '["https://a.example/cb"]', source: "admin" });
  });

  it("with OAUTH_CLIENT_METADATA_DOCUMENTS off: no fetch, a cached row unused, and discovery does not advertise it", async () => {
    const off = { OAUTH_CLIENT_METADATA_DOCUMENTS: "off" } as Partial<Env>;
    const id = docUrl("doc");
    expect(await usableClient(deps(off), id)).toBeNull();
    expect(await hits(id)).toBe(0);
    expect(await usableClient(deps(), id)).not.toBeNull();
    expect(await usableClient(deps(off), id)).toBeNull();
    for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
      expect((await call("GET", path)).body.client_id_metadata_document_supported).toBe(true);
      expect((await call("GET", path, { bindings: off })).body).not.toHaveProperty("client_id_metadata_document_supported");
    }
  });
});

describe("documents refused (nothing stored, nothing cached, the reason logged without the document)", () => {
  const refused: [string, () => string, string][] = [
    ["a client_id other than its URL", () => docUrl("mismatch"), "client_id_mismatch"],
    ["a redirect (not followed)", () => docUrl("redirect"), "redirect"],
    ["over 5 KB with its Content-Length", () => docUrl("oversized"), "too_large"],
    ["over 5 KB without a Content-Length", () => docUrl("oversized-chunked"), "too_large"],
    ["not JSON by its content type", () => docUrl("wrong-type"), "not_json_content_type"],
    ["a 404", () => docUrl("missing"), "status_404"],
    ["a shared-secret auth method", () => custom({ token_endpoint_auth_method: "client_secret_basic" }), "shared_secret_auth_method"],
    ["a client_secret", () => custom({ client_secret: "s3cret-s3cret-s3cret" }), "shared_secret"],
    ["private_key_jwt (not offered)", () => custom({ token_endpoint_auth_method: "private_key_jwt" }), "unsupported_auth_method"],
    ["a private key in jwks", () => custom({ jwks: { keys: [{ kty: "EC", crv: "P-256", x: "a", y: "b", d: "c" }] } }), "private_key_material"],
    ["no redirect_uris", () => custom({ redirect_uris: null }), "invalid_document:redirect_uris"],
    ["no client_name", () => custom({ client_name: null }), "invalid_document:client_name"],
    ["a name with a bidirectional override", () => custom({ client_name: "Good\u202eApp" }), "invalid_document:client_name"],
    ["a javascript: redirect URI", () => custom({ redirect_uris: ["javascript:alert(1)"] }), "redirect_uri_not_allowed"],
    ["an http redirect URI off loopback", () => custom({ redirect_uris: ["http://client.example.com/cb"] }), "redirect_uri_not_allowed"],
    ["a redirect URI with a fragment", () => custom({ redirect_uris: ["https://client.example.com/cb#x"] }), "redirect_uri_not_allowed"],
    ["only client_credentials", () => custom({ grant_types: ["client_credentials"] }), "no_authorization_code_grant"],
    ["no code response type", () => custom({ response_types: ["token"] }), "no_code_response_type"],
  ];
  for (const [what, make, reason] of refused) {
    it(what, async () => {
      const id = make();
      const logged = await refusals(async () => expect(await usableClient(deps(), id)).toBeNull());
      expect(logged).toEqual([
        { level: "warn", event: "client_document_refused", request_id: "test", client_id: new URL(id).origin + new URL(id).pathname, reason },
      ]);
      expect(await rows(id)).toBe(0);
      // An error is never cached: the next use asks again.
      await refusals(() => usableClient(deps(), id));
      expect(await hits(id)).toBe(2);
    });
  }

  it("a redirect's target is never asked", async () => {
    const name = unique();
    expect(await usableClient(deps(), `${DOCS}/redirect/${name}`)).toBeNull();
    expect(await hits(`${DOCS}/doc/${name}`)).toBe(0);
  });

  it("a document too slow to answer, or to finish, is given up on at 3 seconds", async () => {
    const slow = docUrl("slow");
    const slowBody = docUrl("slow-body");
    const started = Date.now();
    const logged = await refusals(async () => {
      expect(await Promise.all([usableClient(deps(), slow), usableClient(deps(), slowBody)])).toEqual([null, null]);
    });
    expect(Date.now() - started).toBeLessThan(4_500);
    expect(logged.map((l) => l.reason)).toEqual(["timeout", "timeout"]);
  }, 10_000);
});

describe("which URLs are fetched", () => {
  const production = { ISSUER: "https://auth.example" };

  it("in a deployment: https only, no special-use address or name, no own origin", () => {
    const expected: Record<string, string | null> = {
      "https://client.example.com/oauth/client.json": null,
      "https://client.example.com/doc?v=2": null, // a query is only discouraged by the draft
      "https://8.8.8.8/doc": null,
      "https://[2606:4700:4700::1111]/doc": null,
      "http://client.example.com/doc": "not_https",
      "ftp://client.example.com/doc": "not_https",
      "http://127.0.0.1:9000/doc": "not_https",
      "https://auth.example/clients/1": "own_origin",
    };
    for (const host of [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.5.4",
      "172.31.255.255",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "224.0.0.1",
      "255.255.255.255",
      "198.18.0.1",
      "[::1]",
      "[::]",
      "[fc00::1]",
      "[fd12:3456::1]",
      "[fe80::1]",
      "[::ffff:7f00:1]", // IPv4-mapped 127.0.0.1
      "[::ffff:a9fe:a9fe]", // IPv4-mapped 169.254.169.254
      "[64:ff9b::a00:1]", // NAT64 10.0.0.1
      "[2002:a00:1::]", // 6to4 of 10.0.0.1
      "[2001:db8::1]",
      "[ff02::1]",
      "localhost",
      "api.localhost",
      "printer.local",
      "db.internal",
      "router.home.arpa",
      "intranet",
    ])
      expected[`https://${host}/doc`] = "special_use_host";
    Object.assign(expected, {
      "https://client.example.com": "id_not_normalized", // no path
      "https://client.example.com/": "id_has_no_path",
      "https://client.example.com/a/../doc": "id_not_normalized",
      "https://client.example.com/a/%2e%2e/doc": "id_not_normalized",
      "https://client.example.com/./doc": "id_not_normalized",
      "HTTPS://client.example.com/doc": "id_not_normalized",
      "https://Client.Example.com/doc": "id_not_normalized",
      "https://client.example.com:443/doc": "id_not_normalized",
      "https://127.1/doc": "id_not_normalized", // shorthand IPv4: fetched as 127.0.0.1
      "https://[::ffff:127.0.0.1]/doc": "id_not_normalized",
      "https://user:pw@client.example.com/doc": "id_has_userinfo",
      "https://client.example.com/doc#me": "id_has_fragment",
      "https://client.example.com/doc#": "id_has_fragment",
      "not a url": "id_not_url",
      [`https://client.example.com/${"a".repeat(600)}`]: "id_too_long",
    });
    for (const [id, problem] of Object.entries(expected)) expect(documentUrlProblem(production, id), id).toBe(problem);
  });

  it("in a local deployment (ISSUER on http loopback) loopback documents are fetched too, nothing else more", () => {
    const local = { ISSUER: "http://localhost:8787" };
    expect(documentUrlProblem(local, "http://127.0.0.1:9000/doc")).toBeNull();
    expect(documentUrlProblem(local, "http://localhost:9000/doc")).toBeNull();
    expect(documentUrlProblem(local, "https://[::1]:9000/doc")).toBeNull();
    expect(documentUrlProblem(local, "http://localhost:8787/doc")).toBe("own_origin");
    expect(documentUrlProblem(local, "http://10.0.0.1/doc")).toBe("not_https");
    expect(documentUrlProblem(local, "https://10.0.0.1/doc")).toBe("special_use_host");
    expect(documentUrlProblem(local, "http://client.example.com/doc")).toBe("not_https");
  });

  it("the local exception needs an http ISSUER on a loopback host", () => {
    for (const issuer of ["http://localhost:8787", "http://127.0.0.1:8787", "http://[::1]:8787"])
      expect(loopbackDevelopment({ ISSUER: issuer }), issuer).toBe(true);
    for (const issuer of ["https://localhost", "https://auth.example", "http://auth.example", "http://10.0.0.1:8787"])
      expect(loopbackDevelopment({ ISSUER: issuer }), issuer).toBe(false);
    expect(specialUseHost("client.example.com.")).toBe(false);
    expect(specialUseHost("localhost.")).toBe(true);
  });

  it("a deployment never fetches a loopback document: the token endpoint answers invalid_client without asking", async () => {
    const production = { bindings: { ISSUER: "https://auth.example" } as Partial<Env> };
    const exchange = (client_id: string) =>
      tokenRequest(
        { grant_type: "authorization_code", code: "x", redirect_uri: "http://127.0.0.1:3000/callback", code_verifier: "v".repeat(43), client_id },
        production,
      );
    const http = docUrl("doc");
    const https = http.replace("http://", "https://");
    const logged = await refusals(async () => {
      for (const id of [http, https]) {
        const res = await exchange(id);
        expect(res.status, id).toBe(401);
        expect(res.body.error, id).toBe("invalid_client");
      }
    });
    // An http id is no document id in a deployment (an unknown client); an https one on loopback is refused by its host.
    expect(logged.map((l) => l.reason)).toEqual(["special_use_host"]);
    expect(await hits(http)).toBe(0);
    expect(await rows(http)).toBe(0);
    expect(await rows(https)).toBe(0);
  });
});

describe("through the authorization endpoint", () => {
  const CALLBACK = "http://127.0.0.1:3000/callback";
  const authorize = async (client_id: string, redirect_uri = CALLBACK, opts: Parameters<typeof call>[2] = {}) => {
    const q = new URLSearchParams({
      response_type: "code",
      client_id,
      redirect_uri,
      state: "st",
      scope: "openid",
      code_challenge: (await pkce()).challenge,
      code_challenge_method: "S256",
    });
    return call("GET", `/oauth2/authorize?${q}`, opts);
  };

  it("a first request from a document client fetches it, and the app page shows its name and site", async () => {
    const id = docUrl("doc");
    const res = await authorize(id);
    expect(res.status, res.text).toBe(302);
    const requestId = new URLSearchParams(new URL(res.headers.get("location")!).hash.slice(1)).get("authorize")!;
    const user = await registerUser();
    const opened = await call("GET", `/oauth2/requests/${requestId}`, { token: user.access_token });
    expect(opened.status, opened.text).toBe(200);
    expect(opened.body.client).toEqual({ id, name: "Document Client", uri: `${DOCS}/`, verified: false });
    expect(await hits(id)).toBe(1);
  });

  it("a redirect_uri the document does not list, or a document refused, is answered in place, never redirected", async () => {
    const good = docUrl("doc");
    const production = { bindings: { ISSUER: "https://auth.example" } as Partial<Env> };
    const cases: [string, string, Parameters<typeof call>[2]][] = [
      [good, "http://127.0.0.1:3000/elsewhere", {}],
      [docUrl("mismatch"), CALLBACK, {}],
      [docUrl("redirect"), CALLBACK, {}],
      [docUrl("oversized"), CALLBACK, {}],
      [docUrl("doc").replace("http://", "https://"), CALLBACK, production], // loopback in a deployment
    ];
    await refusals(async () => {
      for (const [id, redirectUri, opts] of cases) {
        const res = await authorize(id, redirectUri, opts);
        expect(res.status, id).toBe(400);
        expect(res.headers.get("location"), id).toBeNull();
        expect(res.body.error, id).toBe("invalid_request");
      }
    });
  });
});

describe("what stays of a document client", () => {
  it("the cron removes one whose cache lapsed over a day ago and that nothing refers to; a consent or a disabling keeps it", async () => {
    const [loose, consented, disabled] = [docUrl("doc"), docUrl("doc"), docUrl("doc")];
    for (const id of [loose, consented, disabled]) expect(await usableClient(deps(), id)).not.toBeNull();
    const user = await registerUser();
    const now = Date.now();
    await env.DB.prepare(
      "INSERT INTO oauth_consents (user_id, client_id, resource, scope, session_epoch, created_at, updated_at) VALUES (?, ?, '', 'openid', 0, ?, ?)",
    )
      .bind(user.user.id, consented, now, now)
      .run();
    await env.DB.prepare("UPDATE oauth_clients SET disabled_at = ? WHERE id = ?").bind(now, disabled).run();
    await env.DB.prepare(`UPDATE oauth_clients SET expires_at = ? WHERE id IN (?, ?, ?)`)
      .bind(now - 2 * 86_400_000, loose, consented, disabled)
      .run();
    await housekeeping(env);
    expect([await rows(loose), await rows(consented), await rows(disabled)]).toEqual([0, 1, 1]);
  });

  it("an admin's delete leaves it disabled, so its document cannot bring it back", async () => {
    const id = docUrl("doc");
    expect(await usableClient(deps(), id)).not.toBeNull();
    const admin = await adminToken();
    const res = await call("DELETE", `/admin/clients/${encodeURIComponent(id)}`, { token: admin });
    expect(res.status, res.text).toBe(200);
    expect(await row(id)).toMatchObject({ source: "metadata" });
    expect((await row(id))!.disabled_at).not.toBeNull();
    expect(await usableClient(deps(), id)).toBeNull();
  });
});
