import type { User } from "../../db/schema";
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
