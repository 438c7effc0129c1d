import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ageRotations, call, login, PASSWORD, refreshWith, registerUser, sidOf } from "./helpers";
import { approvedCode, createTestClient, tokenRequest } from "./oauth";

// How an app's grant and a remembered consent live with the account's own sessions
// (docs/oauth-server.md): what someone holding only a stolen session, or the password until the
// owner takes the account back, keeps of the apps they connected.

type Client = Awaited<ReturnType<typeof createTestClient>>;

async function grantFor(client: Client, user: { access_token: string; user: { id: string } }) {
  const code = await approvedCode(client, user, { scope: "openid offline_access" });
  const res = await tokenRequest(
    { grant_type: "authorization_code", code: code.code, redirect_uri: client.redirectUri, code_verifier: code.verifier },
    { basic: [client.id, client.secret!] },
  );
  expect(res.status, res.text).toBe(200);
  return res.body as { access_token: string; refresh_token: string };
}
const refreshes = async (client: Client, refresh_token: string) =>
  (await tokenRequest({ grant_type: "refresh_token", refresh_token }, { basic: [client.id, client.secret!], ip: "10.55.0.1" })).status === 200;
const grantRevoked = async (accessToken: string) =>
  (await env.DB.prepare("SELECT revoked_at FROM sessions WHERE id = ?").bind(sidOf(accessToken)).first<{ revoked_at: number | null }>())!.revoked_at !== null;

/** Starts a request for `client` with prompt=none and approves it as `token`'s session: the error sent back, if any. */
async function silently(client: Client, token: string) {
  const q = new URLSearchParams({
    response_type: "code",
    client_id: client.id,
    redirect_uri: client.redirectUri,
    scope: "openid offline_access",
    code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    code_challenge_method: "S256",
    prompt: "none",
  });
  const id = new URLSearchParams(new URL((await call("GET", `/oauth2/authorize?${q}`)).headers.get("location")!).hash.slice(1)).get("authorize")!;
  const res = await call("POST", `/oauth2/requests/${id}/approve`, { token });
  return new URL(res.body.redirect_to).searchParams.get("error");
}

describe("a grant and the session that approved it", () => {
  it("a logout keeps the apps it connected; ending that session from another device ends their grants too", async () => {
    const client = await createTestClient({ confidential: true });
    const user = await registerUser();
    const kept = await grantFor(client, user);
    await call("POST", "/logout", { token: user.access_token });
    expect(await refreshes(client, kept.refresh_token)).toBe(true);

    const owner = await registerUser();
    const thiefSession = (await login(owner.input.username)).body;
    const planted = await grantFor(client, thiefSession);
    const revoke = await call("DELETE", `/sessions/${sidOf(thiefSession.access_token)}`, { body: { current_password: PASSWORD }, token: owner.access_token });
    expect(revoke.status, revoke.text).toBe(200);
    expect(await grantRevoked(planted.access_token)).toBe(true);
    expect(await refreshes(client, planted.refresh_token)).toBe(false);
  });

  it("a stolen session detected by its refresh token's reuse takes the grants it approved with it", async () => {
    const client = await createTestClient({ confidential: true });
    const user = await registerUser();
    const grant = await grantFor(client, user);
    expect((await refreshWith(user.refresh_token)).status).toBe(200);
    await ageRotations(60);
    expect((await refreshWith(user.refresh_token, "10.66.6.6")).status).toBe(401); // the replay: theft
    expect(await grantRevoked(grant.access_token)).toBe(true);
    expect(await refreshes(client, grant.refresh_token)).toBe(false);
  });
});

describe("ending every session", () => {
  it("sign-out everywhere and a password change end the apps' grants too: they are sessions of the account", async () => {
    for (const end of ["logout-all", "password"] as const) {
      const client = await createTestClient({ confidential: true });
      const user = await registerUser();
      const grant = await grantFor(client, user);
      const res =
        end === "logout-all"
          ? await call("POST", "/logout/all", { body: { current_password: PASSWORD }, token: user.access_token })
          : await call("POST", "/password", { token: user.access_token, body: { current_password: user.input.password, new_password: "another horse 43" } });
      expect(res.status, res.text).toBe(200);
      expect(await grantRevoked(grant.access_token)).toBe(true);
      expect(await refreshes(client, grant.refresh_token)).toBe(false);
    }
  });
});

describe("a remembered consent and the account's sessions", () => {
  it("lapses when every session ends (a password change, sign-out everywhere): prompt=none asks again", async () => {
    const client = await createTestClient({ confidential: true });
    const user = await registerUser();
    await grantFor(client, user);
    const fresh = (await login(user.input.username)).body.access_token as string;
    expect(await silently(client, fresh)).toBeNull(); // remembered: a code at once
    await call("POST", "/logout/all", { body: { current_password: PASSWORD }, token: fresh });
    const after = (await login(user.input.username)).body.access_token as string;
    expect(await silently(client, after)).toBe("consent_required");
    expect((await call("GET", "/account/apps", { token: after })).body.apps.filter((a: { consent_remembered: boolean }) => a.consent_remembered)).toEqual([]);
  });
});
