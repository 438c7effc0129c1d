// The authorization server's rows of `npm run bench` (scripts/bench.mjs calls oauthRows): the token
// endpoint's code exchange and refresh. Both are single use (a code, a refresh token), so each round
// prepares COUNT + CONCURRENCY grants, none of it measured: one public client registered
// dynamically (the API runs with OAUTH_REGISTRATION open), then per fresh user an authorization
// request (PKCE S256), the consent page's read of it and the approval, which gives a code. Then the
// codes are exchanged (measured), and the refresh tokens that gave refreshed once each (measured),
// each step followed by its floor.

import { createHash, randomBytes } from "node:crypto";

// [row, its floor, label, floor label], as SECOND in bench.mjs.
export const OAUTH = [
  ["oauth-code", "sign", "POST /oauth2/token (code, PKCE)", "ES256 sign + 1 D1 write"],
  ["oauth-refresh", "sign", "POST /oauth2/token (refresh)", "ES256 sign + 1 D1 write"],
];

const REDIRECT_URI = "http://127.0.0.1:9/cb"; // a loopback redirect: never followed, only read
const SCOPE = "openid offline_access";
const base64url = (bytes) => Buffer.from(bytes).toString("base64url");

/**
 * The rows of OAUTH that were asked for. `b` is bench.mjs's kit: send, measure, measureEach,
 * inParallel, summarize, selected, the API's port, both workers' pids, the floor's requests, the
 * knobs (ROUNDS, COUNT, CONCURRENCY), the password and renew (a live first-party access token).
 */
export async function oauthRows(b) {
  const asked = OAUTH.map(([key]) => key).filter(b.selected);
  if (!asked.length) return {};
  const runs = Object.fromEntries(asked.map((key) => [key, { api: [], floor: [], same: [] }]));
  const floorOf = Object.fromEntries(OAUTH.map(([key, floorKey]) => [key, floorKey]));
  /** A single-use step over `items`: measured next to its floor when its row was asked for, else only done. */
  const step = async (key, items, fn) => {
    if (!runs[key]) return b.inParallel(items, fn);
    runs[key].api.push(await b.measureEach(b.apiPid, items, fn));
    runs[key].floor.push(await b.measure(b.floorPid, b.floor[floorOf[key]]));
  };
  const tokens = (what) => (answer) => {
    if (!answer?.access_token || !answer.refresh_token) throw new Error(`${what} answered without tokens: ${JSON.stringify(answer).slice(0, 200)}`);
    return answer;
  };

  let made = 0;
  for (let round = 0; round < b.ROUNDS; round++) {
    const client = await b.send(b.port, "POST", "/oauth2/register", {
      body: { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "none", grant_types: ["authorization_code", "refresh_token"], scope: SCOPE },
    });
    const grants = await b.inParallel(
      Array.from({ length: b.COUNT + b.CONCURRENCY }, () => ({})),
      async (g) => {
        const username = `bench_oa_${made++}_${Math.random().toString(36).slice(2, 8)}`;
        g.token = (await b.send(b.port, "POST", "/register", { body: { username, password: b.PASSWORD } })).access_token;
        b.renew(g.token);
      },
    );
    // The approvals after every sign-up, so no code nears OAUTH_CODE_TTL (60 s) before its exchange.
    await b.inParallel(grants, async (g) => {
      g.verifier = base64url(randomBytes(32));
      const query = new URLSearchParams({
        response_type: "code",
        client_id: client.client_id,
        redirect_uri: REDIRECT_URI,
        scope: SCOPE,
        state: "s",
        code_challenge: base64url(createHash("sha256").update(g.verifier).digest()),
        code_challenge_method: "S256",
      });
      const { location } = await b.send(b.port, "GET", `/oauth2/authorize?${query}`, { redirect: true });
      const id = new URLSearchParams(new URL(location).hash.slice(1)).get("authorize");
      if (!id) throw new Error(`GET /oauth2/authorize sent the browser elsewhere: ${location.slice(0, 200)}`);
      await b.send(b.port, "GET", `/oauth2/requests/${id}`, { token: g.token });
      const { redirect_to } = await b.send(b.port, "POST", `/oauth2/requests/${id}/approve`, { token: g.token });
      g.code = new URL(redirect_to).searchParams.get("code");
      if (!g.code) throw new Error(`the approval answered no code: ${redirect_to.slice(0, 200)}`);
    });
    await step("oauth-code", grants, async (g) => {
      const form = { grant_type: "authorization_code", client_id: client.client_id, code: g.code, redirect_uri: REDIRECT_URI, code_verifier: g.verifier };
      g.refresh = tokens("the code's exchange")(await b.send(b.port, "POST", "/oauth2/token", { form })).refresh_token;
    });
    if (runs["oauth-refresh"]) {
      await step("oauth-refresh", grants, async (g) => {
        const form = { grant_type: "refresh_token", client_id: client.client_id, refresh_token: g.refresh };
        tokens("the refresh")(await b.send(b.port, "POST", "/oauth2/token", { form }));
      });
    }
  }
  return Object.fromEntries(asked.map((key) => [key, b.summarize(runs[key])]));
}
