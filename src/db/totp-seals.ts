import { and, eq, isNotNull, lt, or, sql } from "drizzle-orm";
import type { Db } from "./client";
import { users } from "./schema";

/** Queries for moving sealed TOTP secrets to the current MFA key (auth/totp/reseal.ts). */

/**
 * Up to `limit` TOTP secrets turned on before `before` and sealed under an older key: "v1" (before key
 * ids) or "v2" naming `oldKid`. GLOB, not LIKE: a key id may hold "_", which LIKE reads as a wildcard.
 */
export const sealedUnderOldKey = (db: Db, oldKid: string, before: Date, limit: number) =>
  db
    .select({ id: users.id, sealed: users.totpSecret })
    .from(users)
    .where(
      and(
        isNotNull(users.totpEnabledAt),
        lt(users.totpEnabledAt, before),
        or(sql`${users.totpSecret} GLOB 'v1.*'`, sql`${users.totpSecret} GLOB ${`v2.${oldKid}.*`}`),
      ),
    )
    .limit(limit)
    .all();

/** Replaces a sealed secret only if it is still the one that was read (a disable or a new setup meanwhile wins). */
export const replaceSealed = (db: Db, id: string, old: string, sealed: string) =>
  db
    .update(users)
    .set({ totpSecret: sealed })
    .where(and(eq(users.id, id), eq(users.totpSecret, old)))
    .returning({ id: users.id });
