// Passkeys: an account per client registers a passkey (the tests' software authenticator, for the
// soak's page origin), then each round signs in with it, and sends one assertion twice at once:
// exactly one sign-in (the challenge is good once, the signature counter must move). Each round ends
// the first of its sessions by logout; the race's winner stays live to the end.
import { call, expect, fail, newClient, runId } from "../client.mjs";
import { charge, pace } from "../pace.mjs";
import { SoftAuthenticator } from "../second-factors.mjs";
import { WEBAUTHN } from "../server.mjs";
import { mustBeDead, session } from "../sessions.mjs";

export const name = "passkeys";
const accounts = new Map(); // client index -> { c, authenticator, live }
export const tally = { assertion_races: 0, assertion_race_winners: 0 };

// LOGIN_IP_LIMITER (20 a minute) counts the options and the verify alike.
// 14: with pace()'s reserve, room for the race's two requests retried through a D1 window (LOGIN_IP_LIMITER: 20).
const paced = async (c, path, body) => charge(c, "login-ip", await pace(c, "login-ip", 14).then(() => call(c, "POST", path, { body })));
const assertion = async (a) => a.authenticator.assert(expect(await paced(a.c, "/passkeys/login/options"), 200, "passkey login options").options);

async function setUp(i) {
  const c = newClient(name, `client${i}`);
  const user = { username: `soakwa_${runId}_${i}`, password: `Soak passkey pass ${i}0` };
  const reg = expect(await call(c, "POST", "/register", { body: user }), 201, "register");
  const a = { c, authenticator: new SoftAuthenticator(WEBAUTHN.origin, WEBAUTHN.rpId), live: new Set([session(c, reg)]) };
  const { options } = expect(
    await call(c, "POST", "/passkeys/register/options", { token: reg.access_token, body: { current_password: user.password } }),
    200,
    "passkey register options",
  );
  const credential = await a.authenticator.register(options);
  expect(
    await call(c, "POST", "/passkeys/register/verify", { token: reg.access_token, body: { response: credential, name: "soak" } }),
    201,
    "passkey register",
  );
  accounts.set(i, a);
  return a;
}

export async function run(i, round) {
  const a = accounts.get(i) ?? (await setUp(i));
  const { c } = a;
  c.where = `${name} client${i} round ${round}`;
  const first = session(c, expect(await paced(c, "/passkeys/login/verify", { response: await assertion(a) }), 200, "passkey sign-in"));
  expect(await call(c, "GET", "/protected", { token: first.access[0] }), 200, "GET /protected");

  const response = await assertion(a);
  const answers = await Promise.all([0, 1].map(() => paced(c, "/passkeys/login/verify", { response })));
  tally.assertion_races++;
  const wins = answers.filter((r) => r.status === 200);
  const others = answers.filter((r) => r.status !== 200 && r.status !== 401);
  if (others.length) fail(`passkey assertion race: answers ${others.map((r) => r.status).join("/")} besides 200 and 401`, c.where);
  if (wins.length !== 1) throw new Error(`passkey assertion race: ${wins.length} sign-ins with one assertion (expected 1)`);
  tally.assertion_race_winners++;
  a.live.add(session(c, wins[0].json));

  expect(await call(c, "POST", "/logout", { token: first.access.at(-1) }), 200, "logout");
  await mustBeDead(c, [first], "logout (passkey session)");
}

const live = `s.revoked_at IS NULL AND s.expires_at > CAST(unixepoch('subsec') * 1000 AS INTEGER)`;
export const expectedRows = () => [
  [`${name}: passkeys`, `SELECT count(*) AS n FROM passkeys p JOIN users u ON u.id = p.user_id WHERE u.username LIKE 'soakwa%'`, accounts.size],
  [
    `${name}: live sessions`,
    `SELECT count(*) AS n FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username LIKE 'soakwa%' AND ${live}`,
    [...accounts.values()].reduce((n, a) => n + a.live.size, 0),
  ],
];
