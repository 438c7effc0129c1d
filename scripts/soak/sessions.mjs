// Sessions as their clients know them: every access and refresh token each was given. Live ones must
// still refresh at the end (no session lost that was not ended); revoked ones must be refused, right
// after the revocation and again at the end (nothing revoked answers again).
import { bump, call, claims, expect, fail, newClient, setRenew } from "./client.mjs";

export const tally = { races: 0, winners: 0, racePasses: {}, revokedNow: 0, finalAccess: 0, finalRefresh: 0, liveChecked: 0 };
const revoked = [];
const live = new Set();
export const last = (a) => a[a.length - 1];

/** A session from a token answer (access_token, refresh_token), held by `client`; counted live. */
export function session(client, issued) {
  const s = { client, sid: claims(issued.access_token).sid, access: [issued.access_token], refresh: [issued.refresh_token] };
  live.add(s);
  return s;
}
export const refresh = (c, token) => call(c, "POST", "/refresh", { body: { refresh_token: token } });
export async function refreshed(c, s, what = "refresh") {
  const r = expect(await refresh(c, last(s.refresh)), 200, what);
  s.access.push(r.access_token);
  s.refresh.push(r.refresh_token);
  return r;
}
// A token of a key retired mid-run: its session refreshes (once, however many requests wanted it).
setRenew(async (token) => {
  const s = [...live].find((x) => x.access.includes(token));
  if (!s) return null;
  s.renewing ??= refreshed(s.client, s, "refresh after a key retirement").finally(() => (s.renewing = undefined));
  await s.renewing;
  return last(s.access);
});
/** Every live session (soak/faults.mjs reads their tokens' kids). */
export const liveSessions = () => [...live];

/** Ended by something other than a revocation a token can feel (e.g. a guest upgraded): no checks. */
export const forget = (s) => live.delete(s);

/** Right after a revocation: every access token of the sessions and their current refresh tokens refused. */
export async function mustBeDead(c, sessions, why) {
  for (const s of sessions) {
    live.delete(s);
    revoked.push(s);
    const answers = await Promise.all([...s.access.map((t) => call(c, "GET", "/protected", { token: t })), refresh(c, last(s.refresh))]);
    tally.revokedNow += answers.length;
    const bad = answers.filter((a) => a.status !== 401).map((a) => a.status);
    if (bad.length) fail(`right after ${why}: a token of the revoked session answered ${[...new Set(bad)].join("/")} (expected 401)`, c.where);
  }
}

/** One token, `n` refreshes at once from one client: exactly one successor, which then works. */
export async function race(c, s, n = 5) {
  const answers = await Promise.all(Array.from({ length: n }, () => refresh(c, last(s.refresh))));
  const wins = answers.filter((a) => a.status === 200);
  const successors = new Set(wins.map((a) => a.json.refresh_token));
  tally.races++;
  bump(tally.racePasses, wins.length);
  const others = answers.filter((a) => a.status !== 200 && a.status !== 401).map((a) => a.status);
  if (others.length) fail(`refresh race: answers ${[...new Set(others)].join("/")} besides 200/401`, c.where);
  for (const w of wins) s.access.push(w.json.access_token);
  s.refresh.push(...successors);
  if (successors.size !== 1) throw new Error(`refresh race: ${wins.length} answers 200 with ${successors.size} distinct refresh tokens (expected 1)`);
  tally.winners++;
  await refreshed(c, s, "refresh with the race's successor");
}

/**
 * At the end: every token of every revoked session refused, and every live session still refreshes.
 * /refresh is limited to 60 a minute per address: a fresh checker address for each 50.
 */
export async function finalCheck() {
  const jobs = revoked.flatMap((s) => [...s.access.map((t) => ["access", t]), ...s.refresh.map((t) => ["refresh", t])]);
  jobs.push(...[...live].map((s) => ["live", s]));
  const checker = newClient("final", "checker");
  const refreshers = [];
  let sent = 0; // counted when sent, not when answered, so no address goes over 50
  const refresher = () => (refreshers[Math.floor(sent++ / 50)] ??= newClient("final", `checker${refreshers.length}`));
  const worker = async () => {
    for (let job; (job = jobs.pop()); ) {
      const [kind, t] = job;
      if (kind === "live") {
        const a = await refresh(refresher(), last(t.refresh));
        tally.liveChecked++;
        if (a.status !== 200) fail(`final check: a live session (${t.client.flow}) no longer refreshes: ${a.status} ${a.json?.error ?? ""}`, t.client.where);
        else t.refresh.push(a.json.refresh_token);
        continue;
      }
      const a = kind === "access" ? await call(checker, "GET", "/protected", { token: t }) : await refresh(refresher(), t);
      tally[kind === "access" ? "finalAccess" : "finalRefresh"]++;
      if (a.status !== 401) fail(`final check: a revoked session's ${kind} token answered ${a.status} (expected 401)`);
    }
  };
  await Promise.all(Array.from({ length: 20 }, worker));
}
export const revokedCount = () => revoked.length;
export const liveCount = () => live.size;
