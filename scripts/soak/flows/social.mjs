// Social sign-in against the local identity provider, as a non-browser app finishes it: GET
// /oauth/local/start with the app's own PKCE (the flow cookie kept), the provider's pages walked over
// HTTP (scripts/idp-login.mjs), the callback with that cookie, then POST /oauth/exchange {code,
// code_verifier}. Round 0 signs up a new account, and links a provider identity to a password account
// (POST /me/identities/local/link, the step-up, the trip, the exchange with the session's token).
// Every round signs in again with both identities: the same two accounts. While the provider is down
// (soak A's fault), the client does what an app does: starts over after the documented answer (the
// start or the callback back at the app with #oauth_error=provider_unreachable, or no answer from the
// provider itself), for up to a minute.
import { signInAtLocalIdp } from "../../idp-login.mjs";
import { bump, call, expect, fail, newClient, runId, sleep } from "../client.mjs";
import { pkce, register } from "../helpers.mjs";
import { pace } from "../pace.mjs";
import { refreshed, session } from "../sessions.mjs";

export const name = "social";
const prefix = `soaksc_${runId}`;
const state = new Map();
export const tally = { signUps: 0, signIns: 0, links: 0, startedOver: {} };

const paced = (c) => pace(c, "oauth", 18); // OAUTH_IP_LIMITER: 20 a minute per address (start, link, exchange)
const cookieOf = (r, cookie) => new RegExp(`${cookie}=([^;]+)`).exec(r.headers.get("set-cookie") ?? "")?.[1];
const fragmentOf = (location) => new URLSearchParams(new URL(location).hash.slice(1));

/**
 * One trip: the start (`startPath()` answers the path to open: a fresh one for every attempt), the
 * provider as `login`, the callback. Answers the landing's fragment and the exchange cookie. Starts
 * over while the provider cannot be reached; any other outcome is the API's answer, checked.
 */
async function trip(c, startPath, login) {
  for (const end = Date.now() + 60_000; ; await sleep(1000)) {
    const again = (why) => {
      bump(tally.startedOver, why);
      if (Date.now() > end) throw new Error(`social: the provider still unreachable after a minute (${why})`);
    };
    await paced(c);
    const path = await startPath();
    const started = await call(c, "GET", path, { route: "GET /oauth/local/start" });
    if (started.status === 303 && fragmentOf(started.location).get("oauth_error") === "provider_unreachable") {
      again("start: provider_unreachable");
      continue;
    }
    if (started.status !== 302)
      throw new Error(`social start: ${started.status} ${started.location ?? started.json?.error ?? ""} (expected 302 to the provider)`);
    const flow = cookieOf(started, "oauth_flow");
    if (!flow) throw new Error("social start: no oauth_flow cookie");
    let back;
    try {
      back = await signInAtLocalIdp(started.location, login);
    } catch {
      again("the provider's pages did not answer"); // down, or restarted mid-walk: its state is gone
      continue;
    }
    const landed = await call(c, "GET", `/oauth/local/callback?${back}`, { headers: { cookie: `oauth_flow=${flow}` }, route: "GET /oauth/local/callback" });
    if (landed.status !== 303) throw new Error(`social callback: ${landed.status} ${landed.json?.error ?? ""} (expected 303 to the app)`);
    const fragment = fragmentOf(landed.location);
    // The provider unreachable, or D1 refusing a query after the state was spent: both say start over.
    if (["provider_unreachable", "temporarily_unavailable"].includes(fragment.get("oauth_error"))) {
      again(`callback: ${fragment.get("oauth_error")}`);
      continue;
    }
    if (fragment.get("oauth_error")) throw new Error(`social callback: back at the app with #oauth_error=${fragment.get("oauth_error")}`);
    return { fragment, grant: cookieOf(landed, "oauth_grant") };
  }
}

const exchange = async (c, landing, extra = {}) => {
  await paced(c);
  const headers = landing.grant ? { cookie: `oauth_grant=${landing.grant}` } : {};
  return call(c, "POST", "/oauth/exchange", { body: { code: landing.fragment.get("oauth_code"), ...extra.body }, token: extra.token, headers });
};

/** A sign-in (or sign-up) as `login`, finished in bearer mode: the exchange's answer. */
async function socialSignIn(c, login) {
  const { verifier, challenge } = pkce();
  const landing = await trip(c, () => `/oauth/local/start?${new URLSearchParams({ code_challenge: challenge })}`, login);
  if (landing.fragment.get("oauth") !== "sign_in") throw new Error(`social sign-in: landed with #oauth=${landing.fragment.get("oauth")}`);
  return expect(await exchange(c, landing, { body: { code_verifier: verifier } }), 200, "POST /oauth/exchange");
}

/** Round 0: a new account by social sign-up, and a password account that links an identity. */
async function setUp(i) {
  const c = newClient(name, `client${i}`);
  c.where = `${name} client${i} set-up`;
  const login = `${prefix}_${i}`;
  const made = await socialSignIn(c, login);
  session(c, made);
  tally.signUps++;
  if (made.user.email !== `${login}@example.test` || !made.user.email_verified) fail("social sign-up: the provider's vouched address was not copied", c.where);

  const user = { username: `soakscp_${runId}_${i}`, password: `Social soak ${i}` };
  const reg = await register(c, user);
  session(c, reg);
  const linkLogin = `${prefix}_${i}_linked`;
  const linkPath = async () => {
    await paced(c);
    const asked = await call(c, "POST", "/me/identities/local/link", { token: reg.access_token, body: { current_password: user.password } });
    const url = new URL(expect(asked, 200, "POST /me/identities/:provider/link").url);
    return url.pathname + url.search;
  };
  const landing = await trip(c, linkPath, linkLogin);
  if (landing.fragment.get("oauth") !== "link") throw new Error(`social link: landed with #oauth=${landing.fragment.get("oauth")}`);
  const linked = expect(await exchange(c, landing, { token: reg.access_token }), 200, "POST /oauth/exchange (link)");
  if (linked.linked?.provider !== "local") fail("social link: the exchange did not answer the linked identity", c.where);
  tally.links++;
  return { c, login, id: made.user.id, linkLogin, linkedId: reg.user.id };
}

export async function run(i, round) {
  const st = state.get(i) ?? state.set(i, await setUp(i)).get(i);
  const { c, login, id, linkLogin, linkedId } = st;
  c.where = `${name} client${i} round ${round}`;
  for (const [who, account] of [
    [login, id],
    [linkLogin, linkedId],
  ]) {
    const again = await socialSignIn(c, who);
    tally.signIns++;
    if (again.user.id !== account) fail(`a social sign-in landed in account ${again.user.id}, not ${account}`, c.where);
    await refreshed(c, session(c, again), "refresh of a social session");
  }
}

/**
 * The fault's own probe (soak/faults.mjs): a trip walked at the provider up to its redirect back, then
 * `down()`, then the callback: the API's token request finds no provider, and the browser must land at
 * the app with #oauth_error=provider_unreachable (a 303, never a 5xx). Answers what it landed with.
 */
export async function callbackWhileDown(down) {
  const c = newClient(name, "probe");
  const { challenge } = pkce();
  const started = await call(c, "GET", `/oauth/local/start?${new URLSearchParams({ code_challenge: challenge })}`, { route: "GET /oauth/local/start" });
  expect(started, 302, "probe: start");
  const back = await signInAtLocalIdp(started.location, `${prefix}_probe`);
  await down();
  const flow = cookieOf(started, "oauth_flow");
  const landed = await call(c, "GET", `/oauth/local/callback?${back}`, {
    headers: { cookie: `oauth_flow=${flow}` },
    route: "GET /oauth/local/callback (provider down)",
    retries: 0,
  });
  if (landed.status !== 303) return `${landed.status} ${landed.json?.error ?? ""}`;
  return fragmentOf(landed.location).get("oauth_error") ?? fragmentOf(landed.location).get("oauth");
}

/** The identities this flow made: one per social sign-up, one per link, each in its own account. */
export const expectedRows = () => [
  [`${name}: identities`, `SELECT count(*) AS n FROM identities WHERE subject LIKE '${prefix}_%'`, tally.signUps + tally.links],
  [
    `${name}: identities linked to password accounts`,
    `SELECT count(*) AS n FROM identities i JOIN users u ON u.id = i.user_id WHERE i.subject LIKE '${prefix}_%' AND u.username LIKE 'soakscp_${runId}_%' AND u.password_hash <> ''`,
    tally.links,
  ],
  [`${name}: accounts signed up`, `SELECT count(*) AS n FROM users WHERE email LIKE '${prefix}_%' AND password_hash = ''`, tally.signUps],
];
