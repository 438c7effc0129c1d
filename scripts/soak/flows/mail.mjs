// Mailed links, read from wrangler's log: the address verification after a sign-up, a password reset
// (forgot, the mail, reset: every session of the account ends), and sign-in by mail: the link posted
// twice at once (exactly one 200), the code of a later mail, and a sign-up by mail for a new address.
// A fresh client, account and address each round: the per-recipient budget is 5 mails a day per
// purpose, MAIL_LIMITER 5 a minute per client.
import { call, claims, expect, fail, newClient, runId } from "../client.mjs";
import { linkIn, login, register } from "../helpers.mjs";
import { mailCount } from "../mailbox.mjs";
import { pace } from "../pace.mjs";
import { mustBeDead, session } from "../sessions.mjs";

export const name = "mail";
const prefix = `soakml_${runId}`;
export const tally = { accounts: 0, verified: 0, resets: 0, linkRaces: 0, oneWinner: 0, codes: 0, signUps: 0 };
const SIGN_IN = /^Sign in to /;

/** POST /login/email (MAIL_LIMITER: 5 a minute per address), then its mail's link token and code. */
async function mailedSignIn(c, email, subject = SIGN_IN) {
  const before = mailCount(email, subject);
  await pace(c, "mail", 4);
  expect(await call(c, "POST", "/login/email", { body: { email } }), 202, "POST /login/email");
  const { token, text } = await linkIn(email, subject, "mail-sign-in", before);
  const code = /enter this code where you asked: ([0-9]{8})/.exec(text)?.[1];
  if (!code) throw new Error("the sign-in mail has no code");
  return { token, code };
}
const useLink = async (c, token) => {
  await pace(c, "login", 9); // LOGIN_IP_LIMITER, and LOGIN_USER_LIMITER for the code
  return call(c, "POST", "/login/email/link", { body: { token } });
};

export async function run(i, round) {
  // A new person each round (their own address, so MAIL_LIMITER's 5 a minute is theirs alone).
  const c = newClient(name, `client${i}.${round}`);
  c.where = `${name} client${i} round ${round}`;
  const user = { username: `${prefix}_${i}_${round}`, email: `${prefix}_${i}_${round}@example.com`, password: `Mail soak ${i}x${round}` };
  const s0 = session(c, await register(c, user));
  tally.accounts++;
  const id = claims(s0.access[0]).sub;

  // The verification mailed after the sign-up: used once, with the account's token.
  const verify = await linkIn(user.email, /^Confirm your email address$/, "verify-email");
  expect(await call(c, "POST", "/email/verify", { token: s0.access[0], body: { token: verify.token } }), 200, "POST /email/verify");
  tally.verified++;
  const again = await call(c, "POST", "/email/verify", { token: s0.access[0], body: { token: verify.token }, route: "POST /email/verify (used link)" });
  if (again.status !== 400) fail(`a used verification link answered ${again.status} (expected 400 invalid_link)`, c.where);

  // A reset by mail ends every session of the account.
  const s1 = session(c, expect(await login(c, user.username, user.password), 200, "login"));
  await pace(c, "mail", 4);
  expect(await call(c, "POST", "/password/forgot", { body: { email: user.email } }), 202, "POST /password/forgot");
  const reset = await linkIn(user.email, /^Reset your password$/, "reset-password");
  const old = user.password;
  user.password = `Mail soak reset ${i}x${round}`;
  expect(await call(c, "POST", "/password/reset", { body: { token: reset.token, new_password: user.password } }), 200, "POST /password/reset");
  tally.resets++;
  await mustBeDead(c, [s0, s1], "a password reset");
  const replay = await call(c, "POST", "/password/reset", {
    body: { token: reset.token, new_password: `${user.password}!` },
    route: "POST /password/reset (used link)",
  });
  if (replay.status !== 400) fail(`a used reset link answered ${replay.status} (expected 400 invalid_link)`, c.where);
  if ((await login(c, user.username, old)).status !== 401) fail("the password before the reset still signs in", c.where);
  session(c, expect(await login(c, user.email, user.password), 200, "login with the reset password"));

  // Sign-in by mail: one link posted twice at once, exactly one session.
  const first = await mailedSignIn(c, user.email);
  const answers = await Promise.all([useLink(c, first.token), useLink(c, first.token)]);
  tally.linkRaces++;
  const wins = answers.filter((a) => a.status === 200);
  const others = answers.filter((a) => a.status !== 200 && !(a.status === 400 && a.json?.error === "invalid_link"));
  if (others.length) fail(`mail link race: answers ${others.map((a) => `${a.status} ${a.json?.error}`).join(", ")} besides 200 and 400 invalid_link`, c.where);
  if (wins.length !== 1) throw new Error(`mail link race: ${wins.length} answers 200 (expected exactly 1)`);
  tally.oneWinner++;
  const byLink = session(c, wins[0].json);
  if (wins[0].json.user.id !== id || claims(byLink.access[0]).amr?.join() !== "email") fail("mail link: another account, or amr is not [email]", c.where);

  // The code of a later mail, as typed on another device.
  const second = await mailedSignIn(c, user.email);
  await pace(c, "login", 9);
  const byCode = expect(await call(c, "POST", "/login/email/code", { body: { email: user.email, code: second.code } }), 200, "POST /login/email/code");
  session(c, byCode);
  tally.codes++;
  if (byCode.user.id !== id) fail("mail code: another account", c.where);
  const spent = await useLink(c, second.token);
  if (spent.status !== 400) fail(`the link of a mail whose code was used answered ${spent.status} (expected 400 invalid_link)`, c.where);

  // A sign-up by mail: an address without an account gets its own account, verified, no username.
  const fresh = `${prefix}_${i}_${round}_new@example.com`;
  const made = await mailedSignIn(c, fresh, /^Create your .* account$/);
  const up = expect(await useLink(c, made.token), 200, "sign-up by mail");
  session(c, up);
  tally.signUps++;
  if (up.user.email !== fresh || up.user.username !== null || !up.user.email_verified)
    fail("sign-up by mail: not the address, a username, or unverified", c.where);
}

/** Every account this flow made, each with its address proved; the sign-ups by mail without a username. */
export const expectedRows = () => [
  [`${name}: accounts`, `SELECT count(*) AS n FROM users WHERE email LIKE '${prefix}_%'`, tally.accounts + tally.signUps],
  [
    `${name}: addresses proved`,
    `SELECT count(*) AS n FROM users WHERE email LIKE '${prefix}_%' AND email_verified_at IS NOT NULL`,
    tally.verified + tally.signUps,
  ],
  [`${name}: signed up by mail`, `SELECT count(*) AS n FROM users WHERE email LIKE '${prefix}_%' AND username = ''`, tally.signUps],
];
