import { env } from "cloudflare:workers";
import { getDb } from "../src/db/client";
import { memberships, organizations } from "../src/db/organization-tables";
import { registerUser, uniqueName } from "./helpers";

/**
 * Organizations and memberships written straight to D1 (POST /orgs is the organizations area's), for
 * the invitation tests: an organization with an owner, and accounts with a verified address.
 */

const db = () => getDb(env.DB);

export const address = (prefix = "invitee") => `${uniqueName(prefix)}@example.com`;

/** A new organization; its id. */
export async function insertOrganization(name = "Acme Inc") {
  const id = crypto.randomUUID();
  await db()
    .insert(organizations)
    .values({ id, name, slug: uniqueName("org").toLowerCase().replaceAll("_", "-"), createdBy: null, createdAt: new Date() });
  return id;
}

export async function addMember(orgId: string, userId: string, role: string) {
  await db().insert(memberships).values({ orgId, userId, role, createdAt: new Date() });
}

/** Marks the account's address as proved (what following its verification link does). */
export async function markVerified(userId: string) {
  await env.DB.prepare("UPDATE users SET email_verified_at = ? WHERE id = ?").bind(Date.now(), userId).run();
}

/** A registered account with `email` (a fresh one unless given), verified unless told otherwise. */
export async function accountWith(email = address(), verified = true) {
  const reg = await registerUser({ email });
  if (verified) await markVerified(reg.user.id);
  return { ...reg, email, token: reg.access_token, id: reg.user.id };
}

/** An organization and a member of it with `role` (owner by default): the actor of a test. */
export async function orgWith(role = "owner", name = "Acme Inc") {
  const orgId = await insertOrganization(name);
  const actor = await accountWith();
  await addMember(orgId, actor.id, role);
  return { orgId, actor };
}

export const membershipsOf = async (orgId: string, userId: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM memberships WHERE org_id = ? AND user_id = ?").bind(orgId, userId).first<{ n: number }>())!.n;

/** Moves an invitation's clock: its expiry, or when it was accepted or revoked. */
export async function setInvitationTime(id: string, column: "expires_at" | "accepted_at" | "revoked_at" | "created_at", at: number) {
  await env.DB.prepare(`UPDATE invitations SET ${column} = ? WHERE id = ?`).bind(at, id).run();
}

/** A pending invitation written straight to D1 (to fill an organization up to its cap); its id. */
export async function insertInvitation(orgId: string, email: string, role = "member") {
  const id = crypto.randomUUID();
  const now = Date.now();
  await env.DB.prepare("INSERT INTO invitations (id, org_id, email, role, invited_by, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, NULL, ?, ?, ?)")
    .bind(id, orgId, email, role, crypto.randomUUID(), now, now + 86_400_000)
    .run();
  return id;
}
