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

/** One request of `kind` at once by each of `n` (a race): the answers' statuses, counted. */
export const statuses = (answers) => answers.map((a) => a.status).sort();

/**
 * Checks that must keep failing: each is run now and again by `recheck()` (a later round, or the
 * flow's end), so nothing revoked answers again later. `probe()` answers a problem or nothing.
 */
export function refusals() {
  const pending = [];
  let checked = 0;
  return {
    async add(c, what, probe) {
      const p = { c, what, probe };
      pending.push(p);
      await run(p);
    },
    async recheck() {
      await Promise.all(pending.map(run));
    },
    count: () => checked,
  };
  async function run({ c, what, probe }) {
    checked++;
    const problem = await probe();
    if (problem) fail(`${what}: ${problem}`, c.where);
  }
}
