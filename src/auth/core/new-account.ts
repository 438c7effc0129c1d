import { type AuditFields, auditRow, logEvent } from "../../audit";
import { batch } from "../../db/batch";
import type { User } from "../../db/schema";
import { insertSession } from "../../db/sessions";
import { insertUser } from "../../db/users";
import type { Deps } from "../../deps";
import { afterReplaced, endReplaced } from "./replaced-session";
import type { newSession } from "./sign-in";
import { hasPassword } from "./ways-in";

/** What a sign-up knows of its new account; the rest of the row is the same for every way in. */
export interface NewAccount {
  id: string;
  username: string;
  email: string | null;
  /** The hash, or NO_PASSWORD (auth/core/ways-in.ts) for an account that signs in another way. */
  passwordHash: string;
  /** When the address was proved: now where a provider vouched for it, else null. */
  emailVerifiedAt: Date | null;
  /** An account that must verify its address first is removed by the cron after this (src/cron.ts). */
  verifyBy: Date | null;
  /** The sign-up's own session, where it opens one: it set the password and the address. */
  setBy: string | null;
  now: Date;
  /** A guest (auth/guests/): no username, address or password yet. */
  isGuest?: boolean;
}

/** A new user's row: plain "user" role (never from the client), no lock, no TOTP, epoch 0. */
export function newUserRow(a: NewAccount): User {
  const withPassword = hasPassword(a);
  return {
    id: a.id,
    username: a.username,
    email: a.email,
    emailVerifiedAt: a.emailVerifiedAt,
    verifyBy: a.verifyBy,
    disabledAt: null,
    passwordHash: a.passwordHash,
    passwordVersion: 0,
    roles: ["user"],
    failedLogins: 0,
    lastFailedLoginAt: null,
    lockedUntil: null,
    lockAuditedUntil: null,
    sessionEpoch: 0,
    epochKeptSession: null,
    totpSecret: null,
    totpEnabledAt: null,
    totpLastStep: 0,
    recoveryCodes: null,
    totpEnabledBy: null,
    isGuest: a.isGuest ?? false,
    passwordSetAt: withPassword ? a.now : null,
    passwordSetBy: withPassword ? a.setBy : null,
    emailSetAt: a.email ? a.now : null,
    emailSetBy: a.email ? a.setBy : null,
    createdAt: a.now,
    updatedAt: a.now,
  };
}

/**
 * A sign-up's write, whichever way in made it (a password, a sign-up mail, a guest): the account, its
 * first session (none while the address must be proved first) and its `register` audit row in one
 * batch, so there is never an account without them; in cookie mode the session whose cookie this
 * sign-in replaces ends in the same batch. A unique index's refusal (username, address) is thrown for
 * the caller to name.
 */
export async function insertAccount(deps: Deps, user: User, first: Awaited<ReturnType<typeof newSession>> | undefined, registered: AuditFields, now: Date) {
  const { db } = deps;
  const done = await batch(db, {
    user: insertUser(db, user),
    session: first && insertSession(db, first.row),
    audited: auditRow(deps, "register", registered),
    ...(first ? await endReplaced(deps, first.row.id, now) : {}),
  });
  logEvent(deps, "register", registered);
  await afterReplaced(deps, done.replacedEnded);
}
