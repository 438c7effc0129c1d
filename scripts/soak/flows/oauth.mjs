// The authorization server: an app registers itself (POST /oauth2/register, a public client on a
// loopback redirect), a signed-in person authorizes it with PKCE on the consent page's routes
// (authorize, GET the request, approve), the app exchanges the code, reads userinfo, refreshes, and
// races a refresh (one successor). A second code is exchanged twice at once: one 200, and the reuse
// ends the grant the winner opened. The app revokes its grant at the end: its tokens are refused at
// once and again in every later round (userinfo 401, refresh 400 invalid_grant).
import { call, claims, expect, fail, newClient, runId } from "../client.mjs";
import { login, pkce, refusals, register, tokenPost } from "../helpers.mjs";
import { pace } from "../pace.mjs";
import { session } from "../sessions.mjs";

export const name = "oauth";
const prefix = `soakoa_${runId}`;
const APP = `Soak app ${runId}`;
const SCOPE = "openid profile offline_access";
const state = new Map();
export const tally = { refused: 0, grants: 0, refreshRaces: 0, oneSuccessor: 0, codeRaces: 0, oneWinner: 0, revoked: 0 };

/** The consent page's part, as an app's person goes through it: a code and its verifier. */
async function approvedCode(c, app, s) {
  const { verifier, challenge } = pkce();
  const ask = {
    response_type: "code",
    client_id: app.id,
    redirect_uri: app.redirectUri,
    scope: SCOPE,
    state: "st",
    code_challenge: challenge,
    code_challenge_method: "S256",
  };
  await pace(c, "authorize", 55); // OAUTH_SERVER_IP_LIMITER: 60 a minute per address
  const started = await call(c, "GET", `/oauth2/authorize?${new URLSearchParams(ask)}`, { route: "GET /oauth2/authorize" });
  const id = started.status === 302 && new URLSearchParams(new URL(started.location).hash.slice(1)).get("authorize");
  if (!id) throw new Error(`authorize answered ${started.status}, not the consent page: ${started.location ?? started.json?.error}`);
  const asked = expect(await call(c, "GET", `/oauth2/requests/${id}`, { token: s.access_token, route: "GET /oauth2/requests/:id" }), 200, "open the request");
  if (asked.client.id !== app.id || asked.client.verified !== false) fail("the consent page shows another app, or a self-registered one as verified", c.where);
  const approved = expect(
    await call(c, "POST", `/oauth2/requests/${id}/approve`, { token: s.access_token, route: "POST /oauth2/requests/:id/approve" }),
    200,
    "approve",
  );
  const back = new URL(approved.redirect_to);
  if (`${back.origin}${back.pathname}` !== app.redirectUri || back.searchParams.get("state") !== "st")
    fail("approve: not back to the redirect_uri with the state", c.where);
  return { code: back.searchParams.get("code"), verifier };
}

const exchange = (c, app, { code, verifier }) =>
  tokenPost(c, { grant_type: "authorization_code", code, redirect_uri: app.redirectUri, code_verifier: verifier, client_id: app.id });
const refresh = (c, app, token) => tokenPost(c, { grant_type: "refresh_token", refresh_token: token, client_id: app.id });
const userinfo = async (c, token) => {
  await pace(c, "oauth-token", 500);
  return call(c, "GET", "/oauth2/userinfo", { token });
};

/** A grant's tokens refused, now and again in later rounds: every access token at userinfo, its refresh token. */
async function mustBeRefused({ c, app, dead }, grant, why) {
  for (const t of grant.access)
    await dead.add(c, `after ${why}, an access token at userinfo`, async () => {
      const a = await userinfo(c, t);
      return a.status === 401 ? null : `answered ${a.status}`;
    });
  const probe = async () => {
    const a = await refresh(c, app, grant.refresh);
    return a.status === 400 && a.json?.error === "invalid_grant" ? null : `answered ${a.status} ${a.json?.error ?? ""}`;
  };
  await dead.add(c, `after ${why}, its refresh token`, probe);
}

export async function run(i, round) {
  let st = state.get(i);
  if (!st) {
    const c = newClient(name, `client${i}`);
    const user = { username: `${prefix}_${i}`, password: `OAuth soak ${i}` };
    const id = (await register(c, user)).user.id;
    await pace(c, "oauth-register", 9); // OAUTH_REGISTER_IP_LIMITER: 10 a minute per address
    const redirectUri = `http://127.0.0.1:${40000 + i}/callback`;
    const body = {
      client_name: APP,
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code", "refresh_token"],
      token_endpoint_auth_method: "none",
      scope: SCOPE,
    };
    const reg = expect(await call(c, "POST", "/oauth2/register", { body }), 201, "POST /oauth2/register");
    st = { c, user, id, app: { id: reg.client_id, redirectUri }, dead: refusals(tally, "refused") };
    state.set(i, st);
  }
  const { c, user, id, app, dead } = st;
  c.where = `${name} client${i} round ${round}`;
  const signedIn = expect(await login(c, user.username, user.password), 200, "login");
  session(c, signedIn); // the approving session stays live: its grants rest on it

  // Authorize, exchange, userinfo, refresh.
  const t = expect(await exchange(c, app, await approvedCode(c, app, signedIn)), 200, "code exchange");
  tally.grants++;
  const grant = { access: [t.access_token], refresh: t.refresh_token };
  const at = claims(t.access_token);
  if (at.client_id !== app.id || at.sub !== id || !t.id_token || !t.refresh_token)
    fail("code exchange: another client or user, or no ID or refresh token", c.where);
  const info = expect(await userinfo(c, t.access_token), 200, "userinfo");
  if (info.sub !== id || info.preferred_username !== user.username) fail("userinfo: another user", c.where);
  if ((await call(c, "GET", "/protected", { token: t.access_token, route: "GET /protected (an app's token)" })).status !== 401)
    fail("the API's own route took an app's token", c.where);
  const r = expect(await refresh(c, app, grant.refresh), 200, "refresh");
  grant.access.push(r.access_token);
  grant.refresh = r.refresh_token;

  // A refresh race from one client: one successor (a retry within the grace gets the same answer).
  const answers = await Promise.all([0, 1, 2].map(() => refresh(c, app, grant.refresh)));
  tally.refreshRaces++;
  const wins = answers.filter((a) => a.status === 200);
  const others = answers.filter((a) => a.status !== 200 && a.json?.error !== "invalid_grant");
  if (others.length) fail(`oauth refresh race: answers ${others.map((a) => a.status).join(", ")} besides 200 and 400 invalid_grant`, c.where);
  const successors = new Set(wins.map((a) => a.json.refresh_token));
  grant.access.push(...wins.map((a) => a.json.access_token));
  if (successors.size !== 1) throw new Error(`oauth refresh race: ${wins.length} answers 200 with ${successors.size} refresh tokens (expected 1)`);
  tally.oneSuccessor++;
  grant.refresh = [...successors][0];
  const next = expect(await refresh(c, app, grant.refresh), 200, "refresh with the race's successor");
  grant.access.push(next.access_token);
  grant.refresh = next.refresh_token;
  expect(await userinfo(c, next.access_token), 200, "userinfo after the race");

  // One code exchanged twice at once: one grant, and the reuse ends it.
  const code = await approvedCode(c, app, signedIn);
  const both = await Promise.all([exchange(c, app, code), exchange(c, app, code)]);
  tally.codeRaces++;
  const won = both.filter((a) => a.status === 200);
  const bad = both.filter((a) => a.status !== 200 && a.json?.error !== "invalid_grant");
  if (bad.length) fail(`code race: answers ${bad.map((a) => a.status).join(", ")} besides 200 and 400 invalid_grant`, c.where);
  if (won.length !== 1) throw new Error(`code race: ${won.length} exchanges answered 200 (expected exactly 1)`);
  tally.oneWinner++;
  tally.grants++;
  await mustBeRefused(st, { access: [won[0].json.access_token], refresh: won[0].json.refresh_token }, "a code used twice");

  // The app revokes its grant (RFC 7009): every token of it refused.
  await pace(c, "oauth-token", 500);
  expect(await call(c, "POST", "/oauth2/revoke", { form: { token: grant.refresh, client_id: app.id } }), 200, "POST /oauth2/revoke");
  tally.revoked++;
  await mustBeRefused(st, grant, "POST /oauth2/revoke");
  await dead.recheck(); // this round's and every earlier round's revoked tokens, again
}

/** The apps this flow registered, each grant it opened, and none of them live. */
export const expectedRows = () => [
  [`${name}: apps registered`, `SELECT count(*) AS n FROM oauth_clients WHERE name = '${APP}'`, state.size],
  [`${name}: grants`, `SELECT count(*) AS n FROM sessions WHERE client_id IN (SELECT id FROM oauth_clients WHERE name = '${APP}')`, tally.grants],
  [
    `${name}: grants live`,
    `SELECT count(*) AS n FROM sessions WHERE client_id IN (SELECT id FROM oauth_clients WHERE name = '${APP}') AND revoked_at IS NULL`,
    0,
  ],
];
