// Password sessions: the account lifecycle of the first soak (logins by name and address, refresh and
// a refresh race, the session list, ending one session, logout, a password change that ends the others,
// logout everywhere) and bursts of correct logins for one account from many addresses at once.
import { bump, call, expect, fail, newClient, runId, sleep } from "../client.mjs";
import { pace } from "../pace.mjs";
import { last, mustBeDead, race, refreshed, session } from "../sessions.mjs";

export const name = "password";
const users = new Map(); // client index -> { client, user }
const BURST = 8; // more than the 5 password checks allowed in flight for one account
export const tally = { bursts: 0, burstAnswers: {} };

export const login = async (c, username, password) => {
  await pace(c, "login", 9); // LOGIN_USER_LIMITER and LOGIN_IP_LIMITER: one client, one account
  return call(c, "POST", "/login", { body: { username, password } });
};

/** One round for client `i` (its account made in round 0); any number of rounds stays within limits. */
export async function run(i, round) {
  let u = users.get(i);
  if (!u) {
    const c = newClient(name, `client${i}`);
    const user = { username: `soakpw_${runId}_${i}`, email: `soakpw_${runId}_${i}@example.com`, password: `Soak pass ${i}0` };
    const reg = expect(await call(c, "POST", "/register", { body: user }), 201, "register");
    u = { c, user, live: new Set([session(c, reg)]) };
    users.set(i, u);
    if (i % 5 === 0) await burst(i / 5);
  }
  const { c, user, live } = u;
  c.where = `${name} client${i} round ${round}`;
  const s1 = session(c, expect(await login(c, user.username, user.password), 200, "login by username"));
  const [s2, s3] = (await Promise.all([login(c, user.email, user.password), login(c, user.email, user.password)])).map((a) =>
    session(c, expect(a, 200, "login by email")),
  );
  for (const s of [s1, s2, s3]) live.add(s);
  for (const a of await Promise.all([...live].map((s) => call(c, "GET", "/protected", { token: last(s.access) })))) expect(a, 200, "GET /protected");
  await refreshed(c, s1);
  await race(c, s1);

  const listed = new Set(expect(await call(c, "GET", "/sessions", { token: last(s1.access) }), 200, "GET /sessions").sessions.map((x) => x.id));
  if ([...live].some((s) => !listed.has(s.sid))) fail("GET /sessions does not list every live session", c.where);
  expect(
    await call(c, "DELETE", `/sessions/${s2.sid}`, { route: "DELETE /sessions/:id", token: last(s1.access), body: { current_password: user.password } }),
    200,
    "DELETE /sessions/:id",
  );
  live.delete(s2);
  await mustBeDead(c, [s2], "DELETE /sessions/:id");
  expect(await call(c, "POST", "/logout", { token: last(s3.access) }), 200, "logout");
  live.delete(s3);
  await mustBeDead(c, [s3], "logout");

  const others = [...live].filter((s) => s !== s1);
  const body = { current_password: user.password, new_password: `Soak pass ${i}${round + 1}` };
  const answered = await call(c, "POST", "/password", { token: last(s1.access), body });
  const changed = expect(answered, 200, "password change");
  user.password = body.new_password;
  // Sent again after a 503 whose KV write failed, the others were already ended: 0 more.
  if (changed.sessions_revoked !== others.length && !(answered.attempts > 1 && changed.sessions_revoked === 0))
    fail(`password change: sessions_revoked ${changed.sessions_revoked}, expected ${others.length}`, c.where);
  for (const s of others) live.delete(s);
  await mustBeDead(c, others, "password change");
  const answer = await call(c, "POST", "/logout/all", { token: last(s1.access), body: { current_password: user.password } });
  const all = expect(answer, 200, "logout/all");
  // Sent again after a 503: D1 was busy (nothing ran: 1), or a KV write failed after D1 recorded it (0 more).
  if (all.sessions_revoked !== 1 && !(answer.attempts > 1 && all.sessions_revoked === 0))
    fail(`logout/all: sessions_revoked ${all.sessions_revoked}, expected 1`, c.where);
  live.delete(s1);
  await mustBeDead(c, [s1], "logout/all");
}

// Correct logins for one account, all at once from different addresses: 200, or 429 Retry-After: 1
// (too many checks in flight). A longer 429 means correct logins locked the account.
async function burst(b) {
  const user = { username: `soakpb_${runId}_${b}`, email: `soakpb_${runId}_${b}@example.com`, password: `Burst pass ${b}0` };
  expect(await call(newClient(name, `burst${b}`), "POST", "/register", { body: user }), 201, "burst: register");
  const logins = Array.from({ length: BURST }, (_, k) =>
    call(newClient(name, `burst${b}.${k}`), "POST", "/login", { body: { username: k % 2 ? user.email : user.username, password: user.password } }),
  );
  const answers = await Promise.all(logins);
  tally.bursts++;
  const key = (a) => (a.status === 429 ? `429 Retry-After ${a.retryAfter}` : String(a.status));
  for (const a of answers) bump(tally.burstAnswers, key(a));
  // A lock can read as Retry-After: 1 when a concurrent success clears it first: the message tells them apart.
  const inFlight = (a) => a.status === 429 && a.retryAfter === "1" && /in progress/.test(a.json?.message ?? "");
  const bad = answers.filter((a) => !(a.status === 200 || inFlight(a)));
  if (bad.length) fail(`burst: correct logins answered ${[...new Set(bad.map(key))].join(", ")}`, `burst ${b}`);
  const after = newClient(name, `burst${b}.after`);
  for (let k = 0; k < 2; k++) {
    const a = await call(after, "POST", "/login", { body: { username: user.username, password: user.password } });
    if (a.status === 200) return session(after, a.json);
    if (a.status !== 429 || a.retryAfter !== "1" || k === 1) return fail(`burst: the correct login after it answered ${key(a)}`, `burst ${b}`);
    await sleep(1000);
  }
}

/** Rows D1 must hold at the end: every account this flow made. */
export const expectedRows = () => [[`${name}: accounts`, `SELECT count(*) AS n FROM users WHERE username LIKE 'soakp%'`, users.size + tally.bursts]];
