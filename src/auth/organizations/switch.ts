import { logEvent } from "../../audit";
import { batch } from "../../db/batch";
import { switchStatements } from "../../db/organizations";
import type { Deps } from "../../deps";
import { Refusal, sessionEnded } from "../core/errors";
import { revokeAccessToken } from "../core/revocations";
import { accessUntil, issue } from "../core/sign-in";
import type { AccessClaims } from "../core/tokens";
import { notMember } from "./organizations";

/**
 * The switch (POST /orgs/switch): a session has at most one active organization, which its access
 * tokens carry as claims (org_id, org_slug, org_role, org_permissions). The session row takes it, so
 * every later refresh carries it too: the refresh token stays as it was. Knows nothing of HTTP.
 */

export interface Switched {
  accessToken: string;
  expiresIn: number;
  organization: { id: string; name: string; slug: string; role: string; createdAt: Date } | null;
}

const switchedAlready = () => new Refusal("invalid_token", "This access token already switched the organization; use the token that switch answered");

/**
 * One batch (the session's new organization, only while the caller is its member; the claims read
 * back as a refresh reads them), a new access token, and the presented one revoked in KV: it carries
 * the organization the session no longer has. A failed KV write answers 503; sending the switch
 * again completes it. One token switches once: of two switches at once with it, one wins and the
 * other is refused as with a revoked token, before KV has the revocation (db/organizations.ts).
 */
export async function switchOrganization(deps: Deps, claims: AccessClaims, orgId: string | null): Promise<Switched> {
  const { db, config } = deps;
  const now = new Date();
  const { switched, spent, owner, organization } = await batch(
    db,
    switchStatements(db, {
      sessionId: claims.sid,
      userId: claims.sub,
      orgId,
      now,
      accessExpiresAt: accessUntil(config, now),
      requireVerified: config.REQUIRE_VERIFIED_EMAIL === "on",
      jti: claims.jti,
    }),
  );
  const [session, user, org] = [switched[0], owner[0], organization?.[0]];
  if (!user) throw sessionEnded();
  if (!session) {
    // Another switch with this token won (two at once): the token is spent, as after that switch.
    if (spent[0]) throw switchedAlready();
    if (orgId !== null) throw notMember();
    throw sessionEnded(); // an app's grant, or an owner who may no longer hold a session
  }
  // Read in the batch that wrote it: the membership the write required is the one the claims join.
  const active =
    orgId !== null && org && user.orgSlug && user.orgRole
      ? { id: orgId, name: org.name, slug: user.orgSlug, role: user.orgRole, createdAt: org.createdAt }
      : null;
  if (orgId !== null && !active) throw notMember();
  // The refresh token is not part of the answer: the session keeps its own.
  // Never later than the token presented: a switch is no way to keep a stolen access token alive
  // (a longer life is the refresh token's to give).
  const presentedEnd = new Date(claims.exp * 1000);
  const issued = await issue(deps, user, { ...session, expiresAt: session.expiresAt < presentedEnd ? session.expiresAt : presentedEnd }, now, "");
  await revokeAccessToken(deps.kv, claims);
  logEvent(deps, "org_switched", { user_id: claims.sub, session_id: claims.sid, org_id: orgId, from_org_id: claims.org?.id ?? null });
  return { accessToken: issued.accessToken, expiresIn: issued.expiresIn, organization: active };
}
