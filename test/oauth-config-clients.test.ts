import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { declarationProblems } from "../src/auth/oauth-server/client-declarations";
import { checkVars } from "../src/config";
import { sha256Base64Url } from "../src/encoding";
import { adminToken, call, countingD1, expectError, registerUser } from "./helpers";
import { approvedCode, countFor, grantRow, pkce, registerClient, tokenRequest } from "./oauth";

/** Clients declared in configuration (OAUTH_CLIENTS): used, kept in step with their rows, refused when gone or broken. */

const random = () => crypto.randomUUID().replaceAll("-", "").slice(0, 16);
const REDIRECT = "https://cfg.example/callback";

interface Declared {
  client_id: string;
  name: string;
  uri?: string;
  redirect_uris: string[];
  type: "public" | "confidential";
  secret_sha256?: string;
  grant_types?: string[];
  scope?: string;
  resources?: string[];
}

const publicClient = (over: Partial<Declared> = {}): Declared => ({
  client_id: `cfg_${random()}`,
  name: "Configured App",
  uri: "https://cfg.example/",
  redirect_uris: [REDIRECT],
  type: "public",
  ...over,
});

async function confidentialClient(over: Partial<Declared> = {}) {
  const secret = `${random()}${random()}`;
  const client: Declared = {
    ...publicClient(),
    type: "confidential",
    secret_sha256: await sha256Base64Url(secret),
    grant_types: ["authorization_code", "refresh_token", "client_credentials"],
    ...over,
  };
  return { client, secret };
}

const withClients = (...clients: unknown[]): Partial<Env> => ({ OAUTH_CLIENTS: JSON.stringify(clients) });

async function authorize(clientId: string, bindings: Partial<Env>, redirectUri = REDIRECT, extra: Record<string, string> = {}) {
  const { challenge } = await pkce();
  const query = new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: "openid",
    state: "st",
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...extra,
  });
  return call("GET", `/oauth2/authorize?${query}`, { bindings });
}

const clientRow = (id: string) =>
  env.DB.prepare("SELECT source, name, redirect_uris, secret_hash, disabled_at FROM oauth_clients WHERE id = ?")
    .bind(id)
    .first<{ source: string; name: string; redirect_uris: string; secret_hash: string | null; disabled_at: number | null }>();

/** What the config_invalid lines said, as one text. */
function errorLog() {
  const lines: string[] = [];
  vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
  return () => lines.filter((l) => l.includes("config_invalid")).join("\n");
}

afterEach(() => vi.restoreAllMocks());

/** A user's grant to `client`, by the whole flow: authorize, approve, exchange. */
async function grantTo(client: Declared, bindings: Partial<Env>, secret?: string) {
  const user = await registerUser();
  const { code, verifier } = await approvedCode({ id: client.client_id, redirectUri: REDIRECT }, user, { scope: "openid offline_access", bindings });
  const form = { grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: client.client_id };
  const res = await tokenRequest(secret ? { ...form, client_secret: secret } : form, { bindings });
  expect(res.status, res.text).toBe(200);
  return { user, tokens: res.body as { access_token: string; refresh_token: string } };
}

const refresh = (client: Declared, refreshToken: string, bindings: Partial<Env>, secret?: string) =>
  tokenRequest(
    { grant_type: "refresh_token", refresh_token: refreshToken, client_id: client.client_id, ...(secret ? { client_secret: secret } : {}) },
    { bindings },
  );

describe("a client declared in OAUTH_CLIENTS", () => {
  it("public: completes authorize, approve and the code's exchange, then refreshes; its row is of source config", async () => {
    const client = publicClient();
    const bindings = withClients(client);
    const { tokens } = await grantTo(client, bindings);
    expect(tokens.refresh_token).toEqual(expect.any(String));
    const again = await refresh(client, tokens.refresh_token, bindings);
    expect(again.status, again.text).toBe(200);
    expect(await clientRow(client.client_id)).toMatchObject({ source: "config", name: "Configured App", secret_hash: null });
  });

  it("confidential: authenticates with its secret, and not without it or with another", async () => {
    const { client, secret } = await confidentialClient();
    const bindings = withClients(client);
    const ok = await tokenRequest({ grant_type: "client_credentials" }, { basic: [client.client_id, secret], bindings });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.access_token).toEqual(expect.any(String));
    const without = await tokenRequest({ grant_type: "client_credentials", client_id: client.client_id }, { bindings });
    expect(without.status).toBe(401);
    expect(without.body.error).toBe("invalid_client");
    const wrong = await tokenRequest({ grant_type: "client_credentials" }, { basic: [client.client_id, `${secret}x`], bindings });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe("invalid_client");
    // The code flow too, with client_secret_post.
    const { tokens } = await grantTo(client, bindings, secret);
    expect((await refresh(client, tokens.refresh_token, bindings)).status).toBe(401); // a refresh without the secret
    expect((await refresh(client, tokens.refresh_token, bindings, secret)).status).toBe(200);
  });

  it("a machine client (client_credentials only) needs no redirect URI; one with the code grant does", async () => {
    const { client: machine, secret } = await confidentialClient({ redirect_uris: [], grant_types: ["client_credentials"] });
    const { client: noRedirect, secret: other } = await confidentialClient({ redirect_uris: [] });
    const logged = errorLog();
    const bindings = withClients(machine, noRedirect);
    const ok = await tokenRequest({ grant_type: "client_credentials" }, { basic: [machine.client_id, secret], bindings });
    expect(ok.status, ok.text).toBe(200);
    const off = await tokenRequest({ grant_type: "client_credentials" }, { basic: [noRedirect.client_id, other], bindings });
    expect(off.status).toBe(401);
    expect(logged()).toContain(`OAUTH_CLIENTS (${noRedirect.client_id}).redirect_uris: at least one for the authorization_code grant`);
  });

  it("is unknown without the configuration: the var is what makes it", async () => {
    const client = publicClient();
    const res = await authorize(client.client_id, withClients());
    expect(res.status).toBe(400);
    expect(res.body.error).toBe("invalid_request");
    expect(await countFor("oauth_clients", client.client_id)).toBe(0);
  });

  it("writes its row on first use only: the next uses read it and write nothing", async () => {
    const client = publicClient();
    // A request refused after the client is known (PKCE plain): nothing else is written.
    const first = countingD1();
    const res = await authorize(client.client_id, { ...withClients(client), DB: first.DB }, REDIRECT, { code_challenge_method: "plain" });
    expect(res.status).toBe(302);
    expect(new URL(res.headers.get("location")!).searchParams.get("error")).toBe("invalid_request");
    expect(first.trips.writes).toBe(1);
    for (let i = 0; i < 2; i++) {
      const next = countingD1();
      const again = await authorize(client.client_id, { ...withClients(client), DB: next.DB }, REDIRECT, { code_challenge_method: "plain" });
      expect(again.status).toBe(302);
      expect(next.trips.writes).toBe(0);
      expect(next.trips.statements).toBe(first.trips.statements - 1); // the same read, without the write
    }
  });

  it("a change of its configuration (a new redirect URI, a new secret) updates the row once", async () => {
    const { client, secret } = await confidentialClient();
    expect((await authorize(client.client_id, withClients(client))).status).toBe(302);
    const moved = { ...client, redirect_uris: ["https://cfg.example/new-callback"] };
    for (const writes of [1, 0]) {
      const counted = countingD1();
      const res = await authorize(client.client_id, { ...withClients(moved), DB: counted.DB }, "https://cfg.example/new-callback", {
        code_challenge_method: "plain",
      });
      expect(res.status).toBe(302);
      expect(new URL(res.headers.get("location")!).origin).toBe("https://cfg.example");
      expect(counted.trips.writes).toBe(writes);
    }
    expect(JSON.parse((await clientRow(client.client_id))!.redirect_uris)).toEqual(["https://cfg.example/new-callback"]);
    expect((await authorize(client.client_id, withClients(moved))).status).toBe(400); // REDIRECT is no longer its
    // A rotated secret: the old one fails, the new one works.
    const newSecret = `${secret}-rotated`;
    const rotated = { ...moved, secret_sha256: await sha256Base64Url(newSecret) };
    const old = await tokenRequest({ grant_type: "client_credentials" }, { basic: [client.client_id, secret], bindings: withClients(rotated) });
    expect(old.status).toBe(401);
    const now = await tokenRequest({ grant_type: "client_credentials" }, { basic: [client.client_id, newSecret], bindings: withClients(rotated) });
    expect(now.status, now.text).toBe(200);
    expect((await clientRow(client.client_id))!.secret_hash).toBe(rotated.secret_sha256);
  });

  it("removed from the configuration: refused at authorize, its refresh fails; put back, its grants work again", async () => {
    const client = publicClient();
    const { tokens } = await grantTo(client, withClients(client));
    const other = publicClient();
    const without = withClients(other); // the list no longer holds it
    const res = await authorize(client.client_id, without);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe("invalid_request");
    const refused = await refresh(client, tokens.refresh_token, without);
    expect(refused.status).toBe(401);
    expect(refused.body.error).toBe("invalid_client");
    expect(await clientRow(client.client_id)).toMatchObject({ source: "config", disabled_at: null }); // left, not revoked
    const back = await refresh(client, tokens.refresh_token, withClients(client));
    expect(back.status, back.text).toBe(200);
  });

  it("an id already taken by a client registered another way: that client is left as it is, the declared one is off (logged)", async () => {
    const admin = await adminToken();
    const made = await registerClient(admin, { type: "public", name: "Admin's" });
    expect(made.status, made.text).toBe(201);
    const id = made.body.client_id as string;
    const logged = errorLog();
    const res = await authorize(
      id,
      withClients(publicClient({ client_id: id, name: "Impostor", redirect_uris: ["https://evil.example/cb"] })),
      "https://evil.example/cb",
    );
    expect(res.status).toBe(400);
    expect(await clientRow(id)).toMatchObject({ source: "admin", name: "Admin's" });
    expect(logged()).toContain(`OAUTH_CLIENTS (${id}): the client_id is taken`);
  });
});

describe("a bad OAUTH_CLIENTS", () => {
  it("an entry breaking a rule turns that client off, named in the log without its hash; the others work", async () => {
    const good = publicClient();
    const { client: insecure } = await confidentialClient({ redirect_uris: ["http://cfg.example/callback"] }); // http off loopback
    const { client: unknownScope } = await confidentialClient({ scope: "openid launch_missiles" });
    const { client: noHash } = await confidentialClient();
    delete noHash.secret_sha256;
    const { client: plainSecret } = await confidentialClient();
    const withSecret = { ...plainSecret, secret: "the-secret-itself" };
    const logged = errorLog();
    const bindings = withClients(good, insecure, unknownScope, noHash, withSecret, { ...good, name: "Twin" }, 42);
    // The twins share an id: both off.
    expect((await authorize(good.client_id, bindings)).status).toBe(400);
    for (const off of [insecure, unknownScope, noHash, plainSecret]) {
      const res = await authorize(off.client_id, bindings);
      expect(res.status, off.client_id).toBe(400);
      expect(await countFor("oauth_clients", off.client_id)).toBe(0);
    }
    const other = publicClient();
    expect((await authorize(other.client_id, withClients(other, insecure))).status).toBe(302); // a sound entry beside a broken one works
    const text = logged();
    expect(text).toContain(`OAUTH_CLIENTS (${insecure.client_id}).redirect_uris.0: http only on a loopback host`);
    expect(text).toContain(`OAUTH_CLIENTS (${unknownScope.client_id}).scope: unknown scope: launch_missiles`);
    expect(text).toContain(`OAUTH_CLIENTS[3] (${noHash.client_id}): secret_sha256 is required for a confidential client`);
    expect(text).toMatch(new RegExp(`OAUTH_CLIENTS\\[4\\] \\(${plainSecret.client_id}\\): entry Unrecognized key.*secret`));
    expect(text).toContain(`another client has the client_id ${good.client_id}`);
    expect(text).toContain("OAUTH_CLIENTS[6]: ");
    for (const hash of [insecure.secret_sha256, unknownScope.secret_sha256, plainSecret.secret_sha256]) expect(text).not.toContain(hash);
    expect(text).not.toContain("the-secret-itself");
  });

  it("not JSON: every configured client is off, the rest of the API works", async () => {
    const logged = errorLog();
    const bindings = { OAUTH_CLIENTS: "[{not json" };
    const res = await authorize("anything", bindings);
    expect(res.status).toBe(400);
    expect((await call("GET", "/.well-known/openid-configuration", { bindings })).status).toBe(200);
    expect(logged()).toContain("OAUTH_CLIENTS: is not JSON (every configured client is off)");
  });

  it("the deploy check refuses a malformed list, naming the var and the field, never a hash", async () => {
    const { client } = await confidentialClient();
    const problems = (value: string) => checkVars({ ...env, OAUTH_CLIENTS: value }).filter((p) => p.startsWith("OAUTH_CLIENTS"));
    expect(problems(JSON.stringify([client]))).toEqual([]);
    expect(problems(JSON.stringify([{ ...client, secret_sha256: undefined }])).join()).toContain("OAUTH_CLIENTS.0.secret_sha256");
    const short = problems(JSON.stringify([{ ...client, secret_sha256: "abc" }]));
    expect(short.join()).toContain("must be a SHA-256 in base64url");
    expect(short.join()).not.toContain("abc");
    expect(problems(JSON.stringify([client, client])).join()).toContain("two clients share a client_id");
    expect(problems("{").join()).toContain("is not JSON");
    // With the domain's rules (what scripts/deploy.mjs passes): what the Worker would turn off.
    const insecure = { ...client, redirect_uris: ["http://cfg.example/cb"] };
    const ruled = checkVars({ ...env, OAUTH_CLIENTS: JSON.stringify([insecure]) }, declarationProblems);
    expect(ruled).toEqual([
      `OAUTH_CLIENTS (${client.client_id}).redirect_uris.0: http only on a loopback host (127.0.0.1, [::1], localhost); use https (client ${client.client_id} is off)`,
    ]);
    expect(checkVars({ ...env, OAUTH_CLIENTS: JSON.stringify([client]) }, declarationProblems)).toEqual([]);
  });
});

describe("the admin API and a configured client", () => {
  it("refuses to change or delete it (403 forbidden), but may disable it: its grants end, and the next use keeps it disabled", async () => {
    const client = publicClient();
    const bindings = withClients(client);
    const { tokens } = await grantTo(client, bindings);
    const admin = await adminToken();
    const path = `/admin/clients/${encodeURIComponent(client.client_id)}`;
    const shown = await call("GET", path, { token: admin, bindings });
    expect(shown.body).toMatchObject({ source: "config", type: "public" });
    const renamed = await call("PATCH", path, { token: admin, body: { name: "Renamed", current_password: "correct horse 42" }, bindings });
    expectError(renamed, 403, "forbidden");
    expect(renamed.body.message).toContain("OAUTH_CLIENTS");
    expectError(await call("DELETE", path, { token: admin, bindings }), 403, "forbidden");
    expect(await clientRow(client.client_id)).toMatchObject({ name: "Configured App" });
    // The emergency stop.
    const off = await call("PATCH", path, { token: admin, body: { disabled: true }, bindings });
    expect(off.status, off.text).toBe(200);
    expect(off.body.disabled).toBe(true);
    expect((await refresh(client, tokens.refresh_token, bindings)).status).toBe(401);
    expect((await authorize(client.client_id, bindings)).status).toBe(400);
    expect((await authorize(client.client_id, withClients({ ...client, name: "New name" }))).status).toBe(400); // the row follows, still disabled
    expect(await clientRow(client.client_id)).toMatchObject({ name: "New name", disabled_at: expect.any(Number) });
  });

  it("once removed from the configuration, its row may be deleted, which ends its grants", async () => {
    const client = publicClient();
    const { tokens } = await grantTo(client, withClients(client));
    const admin = await adminToken();
    const path = `/admin/clients/${encodeURIComponent(client.client_id)}`;
    const gone = await call("DELETE", path, { token: admin, bindings: withClients() });
    expect(gone.status, gone.text).toBe(200);
    expect(gone.body.grants_revoked).toBe(1);
    expect(await countFor("oauth_clients", client.client_id)).toBe(0);
    const grant = await env.DB.prepare("SELECT id FROM sessions WHERE client_id = ?").bind(client.client_id).first<{ id: string }>();
    expect((await grantRow(grant!.id))!.revoked_at).not.toBeNull();
    // Declared again, it is a new client: the old grant stays ended.
    expect((await refresh(client, tokens.refresh_token, withClients(client))).status).not.toBe(200);
  });
});
