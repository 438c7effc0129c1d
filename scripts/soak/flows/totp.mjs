// Password with TOTP: an account per client that turns TOTP on (setup, enable: ten recovery codes),
// then each round signs in with one step's code: even rounds race it on two challenges at once (one
// winner: a step is good once), odd rounds use it once, then a recovery code (good once too). Sessions
// end by logout, some stay live to the end.
import { call, expect, fail, newClient, runId } from "../client.mjs";
import { charge, pace } from "../pace.mjs";
import { fromBase32, nextCode } from "../second-factors.mjs";
import { mustBeDead, session } from "../sessions.mjs";

export const name = "totp";
const accounts = new Map(); // client index -> { c, user, key, recovery, live }
export const tally = { code_races: 0, code_race_winners: 0, recovery_sign_ins: 0 };

// LOGIN_USER_LIMITER counts the password step and the code step alike (one account, one client).
const signInCall = async (c, path, body) => charge(c, "login", await pace(c, "login", 9).then(() => call(c, "POST", path, { body })));
const challenge = async (c, user) => {
  const r = expect(await signInCall(c, "/login", { username: user.username, password: user.password }), 200, "login (TOTP on)");
  if (r.mfa_required !== true || !r.challenge) throw new Error("login with TOTP on answered without a challenge");
  return r.challenge;
};

async function setUp(i) {
  const c = newClient(name, `client${i}`);
  const user = { username: `soaktp_${runId}_${i}`, password: `Soak totp pass ${i}0` };
  const reg = expect(await call(c, "POST", "/register", { body: user }), 201, "register");
  const a = { c, user, live: new Set([session(c, reg)]) };
  const { secret } = expect(
    await call(c, "POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: user.password } }),
    200,
    "TOTP setup",
  );
  a.key = fromBase32(secret);
  const enabled = expect(await call(c, "POST", "/mfa/totp/enable", { token: reg.access_token, body: { code: await nextCode(a) } }), 200, "TOTP enable");
  a.recovery = [...enabled.recovery_codes];
  accounts.set(i, a);
  return a;
}

export async function run(i, round) {
  const a = accounts.get(i) ?? (await setUp(i));
  const { c, user } = a;
  c.where = `${name} client${i} round ${round}`;
  // One TOTP step per round (a step is good once): even rounds send its code on two challenges at
  // once (exactly one sign-in), odd rounds on one, then a recovery code.
  let signedIn;
  if (round % 2 === 0) {
    const [x, y] = [await challenge(c, user), await challenge(c, user)];
    const code = await nextCode(a);
    const answers = await Promise.all([x, y].map((ch) => signInCall(c, "/login/mfa", { challenge: ch, code })));
    tally.code_races++;
    const wins = answers.filter((r) => r.status === 200);
    const others = answers.filter((r) => r.status !== 200 && !(r.status === 401 && r.json?.error === "invalid_mfa_code"));
    if (others.length) fail(`TOTP code race: answers ${others.map((r) => r.status).join("/")} besides 200 and 401 invalid_mfa_code`, c.where);
    if (wins.length !== 1) throw new Error(`TOTP code race: ${wins.length} sign-ins with one code (expected 1)`);
    tally.code_race_winners++;
    signedIn = session(c, wins[0].json);
  } else {
    signedIn = session(c, expect(await signInCall(c, "/login/mfa", { challenge: await challenge(c, user), code: await nextCode(a) }), 200, "TOTP code step"));
    const code = a.recovery.shift();
    if (!code) throw new Error("out of recovery codes");
    a.live.add(session(c, expect(await signInCall(c, "/login/mfa", { challenge: await challenge(c, user), recovery_code: code }), 200, "recovery code step")));
    tally.recovery_sign_ins++;
  }
  expect(await call(c, "GET", "/protected", { token: signedIn.access.at(-1) }), 200, "GET /protected");
  // Every other round's session stays live to the end; the rest end by logout.
  if (round % 4 === 0) return void a.live.add(signedIn);
  expect(await call(c, "POST", "/logout", { token: signedIn.access.at(-1) }), 200, "logout");
  await mustBeDead(c, [signedIn], "logout (TOTP session)");
}

const live = `s.revoked_at IS NULL AND s.expires_at > CAST(unixepoch('subsec') * 1000 AS INTEGER)`;
export const expectedRows = () => [
  [`${name}: accounts with TOTP on`, `SELECT count(*) AS n FROM users WHERE username LIKE 'soaktp%' AND totp_enabled_at IS NOT NULL`, accounts.size],
  [
    `${name}: live sessions`,
    `SELECT count(*) AS n FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username LIKE 'soaktp%' AND ${live}`,
    [...accounts.values()].reduce((n, a) => n + a.live.size, 0),
  ],
  [
    `${name}: recovery codes left`,
    `SELECT coalesce(sum(json_array_length(recovery_codes)), 0) AS n FROM users WHERE username LIKE 'soaktp%'`,
    [...accounts.values()].reduce((n, a) => n + a.recovery.length, 0),
  ],
];
