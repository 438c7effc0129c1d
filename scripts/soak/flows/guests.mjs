// Guests: POST /guests, the guest's token used (GET /me, a refresh, a members' route refused), then
// two upgrades of one guest at once with different addresses (exactly one wins, the other 409
// already_member), and a sign-in with the winner's address and password: the same account id. The
// session stays the guest's own (live to the end); the loser's address is nowhere.
import { call, claims, expect, fail, newClient, runId } from "../client.mjs";
import { login } from "../helpers.mjs";
import { pace } from "../pace.mjs";
import { last, refreshed, session } from "../sessions.mjs";

export const name = "guests";
const prefix = `soakgu_${runId}`;
const clients = new Map();
export const tally = { guests: 0, upgradeRaces: 0, oneWinner: 0 };

export async function run(i, round) {
  const c = clients.get(i) ?? clients.set(i, newClient(name, `client${i}`)).get(i);
  c.where = `${name} client${i} round ${round}`;
  await pace(c, "guest", 9); // GUEST_IP_LIMITER: 10 a minute per address
  const started = expect(await call(c, "POST", "/guests", { body: {} }), 201, "POST /guests");
  tally.guests++;
  const s = session(c, started);
  const id = started.user.id;
  if (claims(started.access_token).guest !== true) fail("a guest's access token has no guest: true", c.where);
  const me = expect(await call(c, "GET", "/me", { token: last(s.access) }), 200, "guest GET /me");
  if (me.user.id !== id || me.user.email !== null) fail("guest GET /me: another account, or an address", c.where);
  const orgs = await call(c, "GET", "/orgs", { token: last(s.access), route: "GET /orgs (a guest)" });
  if (orgs.status !== 403 || orgs.json?.error !== "guest_not_allowed")
    fail(`a guest's GET /orgs answered ${orgs.status} (expected 403 guest_not_allowed)`, c.where);
  await refreshed(c, s, "guest refresh");

  // Two upgrades of one guest at once: one conditional statement, so one finds a guest.
  const password = `Guest soak ${i}x${round}`;
  const emails = ["a", "b"].map((k) => `${prefix}_${i}_${round}${k}@example.com`);
  const answers = await Promise.all(emails.map((email) => call(c, "POST", "/guests/upgrade", { token: last(s.access), body: { email, password } })));
  tally.upgradeRaces++;
  const wins = answers.filter((a) => a.status === 200);
  const others = answers.filter((a) => a.status !== 200 && !(a.status === 409 && a.json?.error === "already_member"));
  if (others.length) fail(`upgrade race: answers ${others.map((a) => `${a.status} ${a.json?.error}`).join(", ")} besides 200 and 409 already_member`, c.where);
  if (wins.length !== 1) throw new Error(`upgrade race: ${wins.length} upgrades answered 200 (expected exactly 1)`);
  tally.oneWinner++;
  const won = wins[0].json;
  const email = emails[answers.indexOf(wins[0])];
  const loser = emails.find((e) => e !== email);
  s.access.push(won.access_token);
  if (won.user.id !== id || won.user.email !== email) fail("upgrade: the answer is another account or address", c.where);
  if (claims(won.access_token).guest) fail("upgrade: the new access token still says guest", c.where);
  const r = await refreshed(c, s, "refresh after the upgrade");
  if (claims(r.access_token).guest) fail("the refresh after the upgrade still says guest", c.where);

  const signedIn = expect(await login(c, email, password), 200, "sign-in with the upgrade's address");
  if (signedIn.user.id !== id) fail(`sign-in after the upgrade: account ${signedIn.user.id}, the guest was ${id}`, c.where);
  session(c, signedIn);
  const lost = await login(c, loser, password);
  if (lost.status !== 401) fail(`sign-in with the losing upgrade's address answered ${lost.status} (expected 401)`, c.where);
}

/** Every upgrade made one member with the winner's address; the losers' addresses are on no account. */
export const expectedRows = () => [
  [`${name}: members upgraded`, `SELECT count(*) AS n FROM users WHERE email LIKE '${prefix}_%' AND is_guest = 0 AND password_hash <> ''`, tally.oneWinner],
  [`${name}: accounts with a soak address`, `SELECT count(*) AS n FROM users WHERE email LIKE '${prefix}_%'`, tally.oneWinner],
];
