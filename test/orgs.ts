import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { call, uniqueName } from "./helpers";

/** Organizations for the tests (test/organizations.test.ts, test/org-claims.test.ts, and the invitations' and keys' tests). */

/** A slug no other test in this file uses: lower case, 3-40 characters. */
export const uniqueSlug = (prefix = "org") => uniqueName(prefix).toLowerCase().replace(/_/g, "-").slice(0, 40);

/** Creates an organization through the API; the caller is its owner. Returns its id. */
export async function createOrg(token: string, slug = uniqueSlug()): Promise<string> {
  const res = await call("POST", "/orgs", { token, body: { name: `Org ${slug}`, slug } });
  expect(res.status, res.text).toBe(201);
  return res.body.organization.id as string;
}

/** Makes `userId` a member of `orgId` with `role`, straight in D1 (what an accepted invitation does). */
export async function addMember(orgId: string, userId: string, role = "member") {
  await env.DB.prepare("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)").bind(orgId, userId, role, Date.now()).run();
}

/** An organization owned by `userId`, made straight in D1 (for recipes that only have a user id). */
export async function orgOwnedBy(userId: string): Promise<string> {
  const id = crypto.randomUUID();
  await env.DB.prepare("INSERT INTO organizations (id, name, slug, created_by, created_at) VALUES (?, ?, ?, ?, ?)")
    .bind(id, "Owned", uniqueSlug("own"), userId, Date.now())
    .run();
  await addMember(id, userId, "owner");
  return id;
}

/** POST /orgs/switch; expects 200 and returns the new access token. */
export async function switchOrg(token: string, orgId: string | null): Promise<string> {
  const res = await call("POST", "/orgs/switch", { token, body: { org_id: orgId } });
  expect(res.status, res.text).toBe(200);
  return res.body.access_token as string;
}

/** The member's role in D1, or undefined. */
export const roleIn = async (orgId: string, userId: string) =>
  (await env.DB.prepare("SELECT role FROM memberships WHERE org_id = ? AND user_id = ?").bind(orgId, userId).first<{ role: string }>())?.role;
