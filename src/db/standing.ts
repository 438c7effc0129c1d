import { and, eq, isNotNull, isNull, type SQL, sql } from "drizzle-orm";
import { users } from "./schema";

/**
 * An account's standing, in SQL on its users row: the one place these conditions are written.
 * auth/core/decision.ts decides a sign-in from the account as read; the session's write holds only
 * while what it rested on still holds (db/sessions.ts insertSessionIf), so a change that lands in
 * between (the account disabled, TOTP turned on, a new password) refuses the write. A refresh asks the
 * same of a session's owner, and a mailed link of its account.
 */

/** Not disabled: a disabled account is given nothing (no session, no access token, no mailed link). */
export const notDisabled = () => isNull(users.disabledAt);

/** The account may hold a session: not disabled, and its address verified where REQUIRE_VERIFIED_EMAIL is on. */
export const mayHoldSession = (requireVerified: boolean) => and(notDisabled(), requireVerified ? isNotNull(users.emailVerifiedAt) : undefined)!;

/** The ids of the accounts `condition` holds for, for a statement on another table (a session's owner, a link's). */
export const accountsWhere = (condition: SQL) => sql`(SELECT ${users.id} FROM ${users} WHERE ${condition})`;

/** What a sign-in's decision rested on, besides the account's standing (auth/core/decision.ts). */
interface SignInBasis {
  requireVerified: boolean;
  /** The password version the sign-in checked: a password replaced meanwhile refuses it. */
  passwordVersion?: number;
  /** The factor signs in alone only while TOTP is off: TOTP turned on meanwhile refuses it. */
  totpOff: boolean;
  /** The way in's own condition (a challenge used by this request, a passkey's counter). */
  also?: SQL;
}

/** The conditions on the user's row a sign-in's session write is made under. */
export const signInConditions = (basis: SignInBasis) =>
  and(
    mayHoldSession(basis.requireVerified),
    basis.passwordVersion === undefined ? undefined : eq(users.passwordVersion, basis.passwordVersion),
    basis.totpOff ? isNull(users.totpEnabledAt) : undefined,
    basis.also,
  )!;
