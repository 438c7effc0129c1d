// Organizations: an owner creates one and invites a member by mail (the member proves the address,
// accepts with the mailed link). Each round the owner signs in and switches between the organization
// and acting for none several times: each switch answers a token with the organization's claims (or
// none), the presented token is refused afterwards, and a refresh carries what the session holds.
// Two switches at once (to the organization and to none) with one token: exactly one wins, and the
// session holds what it asked. The member's switch carries role "member".
import { call, claims, expect, fail, newClient, runId } from "../client.mjs";
import { linkIn, login, register } from "../helpers.mjs";
import { pace } from "../pace.mjs";
import { last, refreshed, session } from "../sessions.mjs";

export const name = "orgs";
const prefix = `soakor_${runId}`;
const slugOf = (i) => `soakor-${runId}-${i}`;
const state = new Map();
export const tally = { orgs: 0, accepted: 0, switches: 0, switchRaces: 0, raceAnswers: {} };

const orgOf = (token) => claims(token).org_id ?? null;
/** POST /orgs/switch with the session's newest access token: the new one is the session's. */
async function switchTo(c, s, orgId, what = `switch to ${orgId ? "the organization" : "none"}`) {
  const before = last(s.access);
  const r = expect(await call(c, "POST", "/orgs/switch", { token: before, body: { org_id: orgId } }), 200, what);
  tally.switches++;
  s.access.push(r.access_token);
  const t = claims(r.access_token);
  if (orgOf(r.access_token) !== orgId || (r.organization?.id ?? null) !== orgId) fail(`${what}: the token or the answer names another organization`, c.where);
  if (orgId && !(t.org_slug && t.org_role && Array.isArray(t.org_permissions))) fail(`${what}: the token lacks org_slug, org_role or org_permissions`, c.where);
  if (!orgId && (t.org_slug || t.org_role || t.org_permissions)) fail(`${what}: a token for no organization has organization claims`, c.where);
  const old = await call(c, "GET", "/protected", { token: before, route: "GET /protected (token before a switch)" });
  if (old.status !== 401) fail(`${what}: the token presented still answers ${old.status} (expected 401)`, c.where);
  return t;
}

async function setUp(i) {
  const c = newClient(name, `client${i}`);
  c.where = `${name} client${i} set-up`;
  const owner = { username: `${prefix}_${i}`, password: `Org owner ${i}` };
  const member = { username: `${prefix}_${i}m`, email: `${prefix}_${i}m@example.com`, password: `Org member ${i}` };
  const sOwner = session(c, await register(c, owner));
  const sMember = session(c, await register(c, member));
  const verify = await linkIn(member.email, /^Confirm your email address$/, "verify-email");
  expect(await call(c, "POST", "/email/verify", { token: last(sMember.access), body: { token: verify.token } }), 200, "member: verify the address");
  const org = expect(
    await call(c, "POST", "/orgs", { token: last(sOwner.access), body: { name: `Soak org ${i}`, slug: slugOf(i) } }),
    201,
    "POST /orgs",
  ).organization;
  tally.orgs++;
  await pace(c, "mail", 4); // MAIL_LIMITER holds each inviter to 5 a minute
  const invite = { email: member.email, role: "member" };
  expect(
    await call(c, "POST", `/orgs/${org.id}/invitations`, { token: last(sOwner.access), body: invite, route: "POST /orgs/:id/invitations" }),
    201,
    "invite",
  );
  const link = await linkIn(member.email, /^You are invited to join /, "accept-invitation");
  const joined = expect(await call(c, "POST", "/invitations/accept", { token: last(sMember.access), body: { token: link.token } }), 200, "accept");
  tally.accepted++;
  if (joined.organization.id !== org.id || joined.organization.role !== "member") fail("accept: another organization or role", c.where);
  return { c, owner, member, orgId: org.id };
}

export async function run(i, round) {
  const st = state.get(i) ?? state.set(i, await setUp(i)).get(i);
  const { c, owner, member, orgId } = st;
  c.where = `${name} client${i} round ${round}`;
  const s = session(c, expect(await login(c, owner.username, owner.password), 200, "owner login"));
  if (orgOf(last(s.access)) !== null) fail("a new sign-in acts for an organization", c.where);
  for (let k = 0; k < 2; k++) {
    const t = await switchTo(c, s, orgId);
    if (t.org_role !== "owner" || !t.org_permissions.includes("org:delete")) fail("switch: the owner's token lacks role owner or org:delete", c.where);
    if (orgOf((await refreshed(c, s, "refresh in the organization")).access_token) !== orgId) fail("a refresh dropped the organization", c.where);
    await switchTo(c, s, null);
    if (orgOf((await refreshed(c, s, "refresh in none")).access_token) !== null) fail("a refresh brought an organization back", c.where);
  }

  // Two switches at once with one token: one token switches once, so exactly one answers 200 (its own
  // target) and the other 401; the session holds the winner's target.
  await switchTo(c, s, orgId);
  const token = last(s.access);
  const targets = [orgId, null];
  const answers = await Promise.all(targets.map((org_id) => call(c, "POST", "/orgs/switch", { token, body: { org_id }, route: "POST /orgs/switch (race)" })));
  tally.switchRaces++;
  const key = answers.map((a) => a.status).join("+");
  tally.raceAnswers[key] = (tally.raceAnswers[key] ?? 0) + 1;
  const wins = targets.filter((_, k) => answers[k].status === 200);
  if (answers.some((a) => a.status !== 200 && a.status !== 401)) fail(`switch race: answers ${key} (expected 200 or 401 each)`, c.where);
  if (wins.length !== 1) fail(`switch race: ${wins.length} switches answered 200 (expected exactly 1)`, c.where);
  if (wins.length === 0) throw new Error("switch race: neither switch answered 200");
  answers.forEach((a, k) => {
    if (a.status === 200 && orgOf(a.json.access_token) !== targets[k]) fail("switch race: a winner's token names another organization", c.where);
  });
  const after = orgOf((await refreshed(c, s, "refresh after the switch race")).access_token);
  if (!wins.includes(after)) fail(`switch race: the refresh carries ${after ? "the organization" : "none"}, which no winner asked`, c.where);

  // The member acts for the organization with their own role.
  const m = session(c, expect(await login(c, member.username, member.password), 200, "member login"));
  const t = await switchTo(c, m, orgId, "member: switch");
  const r = await refreshed(c, m, "member: refresh");
  if (t.org_role !== "member" || claims(r.access_token).org_role !== "member") fail("member: the token's org_role is not member", c.where);
}

/** The organizations this flow made, each with its owner and the member who accepted. */
export const expectedRows = () => {
  const orgs = `SELECT id FROM organizations WHERE slug LIKE 'soakor-${runId}-%'`;
  return [
    [`${name}: organizations`, `SELECT count(*) AS n FROM (${orgs})`, tally.orgs],
    [`${name}: members`, `SELECT count(*) AS n FROM memberships WHERE org_id IN (${orgs})`, tally.orgs + tally.accepted],
    [`${name}: invitations accepted`, `SELECT count(*) AS n FROM invitations WHERE org_id IN (${orgs}) AND accepted_at IS NOT NULL`, tally.accepted],
  ];
};
