// Small helpers the flows share: paced sign-ups and sign-ins, links read from mail, PKCE, a form POST
// to the token endpoint, and a record of tokens that must stay refused ("again later").
import { createHash, randomBytes } from "node:crypto";
import { call, expect, fail } from "./client.mjs";
import { mailTo } from "./mailbox.mjs";
import { pace } from "./pace.mjs";

/** POST /register within REGISTER_IP_LIMITER (10 a minute per address). */
export async function register(c, user, status = 201) {
  await pace(c, "register", 9);
  return expect(await call(c, "POST", "/register", { body: user }), status, "register");
}

/** POST /login within LOGIN_IP_LIMITER and LOGIN_USER_LIMITER (one client, one account). */
export async function login(c, username, password) {
  await pace(c, "login", 9);
  return call(c, "POST", "/login", { body: { username, password } });
}

/** The token of the mailed link `APP_URL#<action>=<token>` in the nth mail to `to` matching `subject`. */
export async function linkIn(to, subject, action, after = 0) {
  const text = await mailTo(to, subject, after);
  const token = new RegExp(`#${action}=([A-Za-z0-9_-]{43})`).exec(text)?.[1];
  if (!token) throw new Error(`the mail "${subject.source}" has no #${action} link`);
  return { token, text };
}

/** A PKCE pair (RFC 7636, S256). */
export function pkce() {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

/** A form POST to the token endpoint (OAUTH_TOKEN_IP_LIMITER: 600 a minute per address). */
export async function tokenPost(c, form, route = `POST /oauth2/token (${form.grant_type.split(":").pop()})`) {
  await pace(c, "oauth-token", 500);
  return call(c, "POST", "/oauth2/token", { form, route });
}

/**
 * Checks that must keep failing, for one client: each `probe()` (answers a problem or nothing) runs
 * now and again at every later `recheck()` (the end of each later round), so nothing revoked answers again
 * later. Each run is counted in `tally[key]`.
 */
export function refusals(tally, key) {
  const pending = [];
  let checkedNow = 0; // probes up to here ran right after their revocation, and at every recheck since
  const run = async ({ c, what, probe }) => {
    tally[key] = (tally[key] ?? 0) + 1;
    const problem = await probe();
    if (problem) fail(`${what}: ${problem}`, c.where);
  };
  return {
    async add(c, what, probe) {
      pending.push({ c, what, probe });
      await run(pending[pending.length - 1]);
    },
    /** Every probe of an earlier round again (this round's ran just now). */
    async recheck() {
      await Promise.all(pending.slice(0, checkedNow).map(run));
      checkedNow = pending.length;
    },
  };
}
