import { and, eq } from "drizzle-orm";
import type { Db } from "./client";
import { memberships } from "./organization-tables";

/**
 * Who belongs to which organization with which role (db/organization-tables.ts). Every check of an
 * actor's role in an organization reads it here, from D1: the token's `org_role` is for resource
 * servers, and may be up to one access token's lifetime old.
 */

/** The user's role in the organization, or undefined when they are not its member. */
export async function roleOf(db: Db, orgId: string, userId: string): Promise<string | undefined> {
  const row = await db
    .select({ role: memberships.role })
    .from(memberships)
    .where(and(eq(memberships.orgId, orgId), eq(memberships.userId, userId)))
    .get();
  return row?.role;
}
