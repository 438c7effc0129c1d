// API keys: each round a signed-in user makes a personal key and one of their organization's (POST
// /keys, with the password as the step-up), exchanges each several times at once at POST
// /oauth2/token (RFC 8693, the key grant): every exchange a token for the key's owner. Both keys are
// then revoked: the next exchange is 400 invalid_grant, and again at the end of every later round.
import { call, claims, expect, fail, newClient, runId } from "../client.mjs";
import { login, refusals, register, tokenPost } from "../helpers.mjs";
import { pace } from "../pace.mjs";
import { session } from "../sessions.mjs";

export const name = "keys";
const prefix = `soakky_${runId}`;
const KEY_TYPE = "urn:edge-auth:params:oauth:token-type:api-key";
const AT_ONCE = 4;
const state = new Map();
export const tally = { created: 0, exchanges: 0, revoked: 0, refused: 0 };

const exchange = async (c, secret, scope) => {
  await pace(c, "api-key", 110); // API_KEY_IP_LIMITER: 120 a minute per address (60 per key)
  const form = {
    grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
    subject_token: secret,
    subject_token_type: KEY_TYPE,
    ...(scope ? { scope } : {}),
  };
  return tokenPost(c, form, "POST /oauth2/token (api key)");
};

async function setUp(i) {
  const c = newClient(name, `client${i}`);
  c.where = `${name} client${i} set-up`;
  const user = { username: `${prefix}_${i}`, password: `Key soak ${i}` };
  const reg = await register(c, user);
  session(c, reg);
  const body = { name: `Soak keys ${i}`, slug: `soakky-${runId}-${i}` };
  const org = expect(await call(c, "POST", "/orgs", { token: reg.access_token, body }), 201, "POST /orgs").organization;
  return { c, user, id: reg.user.id, orgId: org.id, dead: refusals(tally, "refused") };
}

export async function run(i, round) {
  const st = state.get(i) ?? state.set(i, await setUp(i)).get(i);
  const { c, user, id, orgId, dead } = st;
  c.where = `${name} client${i} round ${round}`;
  const s = expect(await login(c, user.username, user.password), 200, "login");
  session(c, s);
  const make = async (extra, what) => {
    const body = { name: `${prefix}_${i}_${round}_${what}`, current_password: user.password, ...extra };
    const made = expect(await call(c, "POST", "/keys", { token: s.access_token, body }), 201, `POST /keys (${what})`);
    tally.created++;
    return made;
  };
  const personal = await make({ scopes: ["user"] }, "personal");
  const team = await make({ scopes: ["org:read", "members:read"], org_id: orgId }, "organization");
  const owners = [
    [personal, { sub: id, owner_type: "user" }, undefined],
    [team, { sub: orgId, owner_type: "organization", org_id: orgId, scope: "org:read" }, "org:read"],
  ];

  // Exchanged concurrently, each key several times at once: every answer a token for its owner.
  const jobs = owners.flatMap(([k, want, scope]) => Array.from({ length: AT_ONCE }, () => exchange(c, k.secret, scope).then((a) => [k, want, a])));
  const results = await Promise.all(jobs);
  for (const [k, want, a] of results) {
    const got = expect(a, 200, "key exchange");
    tally.exchanges++;
    const t = claims(got.access_token);
    const wrong = Object.entries({ ...want, key_id: k.key.id }).filter(([claim, v]) => t[claim] !== v);
    if (wrong.length) fail(`key exchange: the token's ${wrong.map(([claim]) => claim).join(", ")} differ from the key's`, c.where);
  }
  const machine = results[0][2].json.access_token;
  const own = await call(c, "GET", "/me", { token: machine, route: "GET /me (a key's token)" });
  if (own.status !== 401) fail(`the API's own route took a key's token: ${own.status}`, c.where);

  // Revoked: refused from the next exchange on, and still later.
  for (const [k] of owners) {
    expect(await call(c, "DELETE", `/keys/${k.key.id}`, { token: s.access_token, route: "DELETE /keys/:id" }), 200, "revoke the key");
    tally.revoked++;
    await dead.add(c, `a revoked ${k.key.owner.type}'s key`, async () => {
      const a = await exchange(c, k.secret);
      return a.status === 400 && a.json?.error === "invalid_grant" ? null : `exchanged: ${a.status} ${a.json?.error ?? ""}`;
    });
  }
  await dead.recheck();
}

/** Every key this flow made, none left unrevoked. */
export const expectedRows = () => [
  [`${name}: keys`, `SELECT count(*) AS n FROM api_keys WHERE name LIKE '${prefix}_%'`, tally.created],
  [`${name}: keys unrevoked`, `SELECT count(*) AS n FROM api_keys WHERE name LIKE '${prefix}_%' AND revoked_at IS NULL`, tally.created - tally.revoked],
];
