import { and, desc, eq, lt, or, type SQL, sql } from "drizzle-orm";
import { batch } from "./batch";
import type { Db } from "./client";
import { notSoleOwner } from "./memberships";
import { type User, users } from "./schema";

/** Queries of the admin area (auth/account/admin.ts), and the rule that at least one active admin remains. */

/** Whether the row `alias` is an admin who is not disabled (raw SQL: it is used on other aliases of users too). */
const activeAdmin = (alias: string) => sql.raw(`(${alias}.disabled_at IS NULL AND EXISTS (SELECT 1 FROM json_each(${alias}.roles) WHERE value = 'admin'))`);

/**
 * True unless `id` is the last active admin: at least one always remains. Checked inside the statement
 * that would remove one, so two admins removing each other at once cannot both succeed.
 */
const notLastAdmin = (id: string) =>
  sql`(NOT ${activeAdmin("users")} OR (SELECT count(*) FROM users AS other WHERE other.id <> ${id} AND ${activeAdmin("other")}) > 0)`;

/** Deletes the account, unless it is the last active admin or an organization's only owner (db/memberships.ts), or `onlyIf` fails (no row then). */
export function deleteUser(db: Db, id: string, onlyIf?: SQL) {
  return db
    .delete(users)
    .where(and(eq(users.id, id), notLastAdmin(id), notSoleOwner(id), onlyIf))
    .returning({ id: users.id });
}

/**
 * An admin's change of roles or the disabled flag; either starts a new epoch (every session ends).
 * Only while the acting admin is still an active admin, and never removing the last one. No row
 * otherwise (adminRefusal says why).
 */
export function updateByAdmin(db: Db, id: string, actorId: string, change: { roles?: string[]; disabled?: boolean }, now: Date) {
  const removesAdmin = change.disabled === true || (change.roles !== undefined && !change.roles.includes("admin"));
  // A guest (docs/guests.md) is never granted a role: in the statement, so an upgrade racing it cannot matter.
  const grants = change.roles?.some((r) => r !== "user") === true;
  return db
    .update(users)
    .set({
      ...(change.roles ? { roles: change.roles } : {}),
      ...(change.disabled === undefined ? {} : { disabledAt: change.disabled ? now : null }),
      sessionEpoch: sql`${users.sessionEpoch} + 1`,
      epochKeptSession: null,
      updatedAt: now,
    })
    .where(
      and(
        eq(users.id, id),
        sql`EXISTS (SELECT 1 FROM users AS actor WHERE actor.id = ${actorId} AND ${activeAdmin("actor")})`,
        removesAdmin ? notLastAdmin(id) : undefined,
        grants ? eq(users.isGuest, false) : undefined,
      ),
    )
    .returning();
}

/** Why an admin's change or a deletion wrote nothing: no such user, the actor is no active admin, or the last admin. */
export async function adminRefusal(db: Db, id: string, actorId: string): Promise<"not_found" | "forbidden" | "last_admin" | "guest"> {
  const found = await batch(db, {
    target: db.select({ id: users.id, isGuest: users.isGuest }).from(users).where(eq(users.id, id)),
    actor: db
      .select({ active: sql<number>`${activeAdmin("users")}` })
      .from(users)
      .where(eq(users.id, actorId)),
  });
  if (!found.target[0]) return "not_found";
  if (!found.actor[0]?.active) return "forbidden";
  return found.target[0].isGuest ? "guest" : "last_admin";
}

export interface UserCursor {
  createdAt: number;
  id: string;
}

/** Newest first, keyset-paginated on (created_at, id) so pages stay stable while users sign up. */
export async function listUsers(db: Db, limit: number, after?: UserCursor): Promise<User[]> {
  const where = after
    ? or(lt(users.createdAt, new Date(after.createdAt)), and(eq(users.createdAt, new Date(after.createdAt)), lt(users.id, after.id)))
    : undefined;
  return db.select().from(users).where(where).orderBy(desc(users.createdAt), desc(users.id)).limit(limit).all();
}
