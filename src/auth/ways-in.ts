import type { Passkey, User } from "../db/schema";

/**
 * An account's ways in, and the proof each sensitive action needs (step-up): the one place these
 * rules live. Flows ask `needs()`; none decides on its own. Knows nothing of HTTP.
 *
 * The ways in: the password; TOTP with its recovery codes; passkeys; and the mailbox, the recovery
 * channel (a mailed link resets the password, and so takes the account back: auth/reclaim.ts).
 */

/** What a request can offer as proof. */
export type ProofKind =
  | "password" // the current password
  | "second_factor" // a TOTP code or a recovery code (asked only while TOTP is on: see `when`)
  | "new_totp_code" // a code from the pending TOTP secret: the new authenticator is in hand
  | "mailbox"; // a single-use link mailed to the account's address

export type Action =
  | "change_password"
  | "change_email"
  | "delete_account"
  | "setup_totp"
  | "enable_totp"
  | "disable_totp"
  | "add_passkey"
  | "remove_passkey"
  | "reset_password"
  | "revoke_way_in";

export interface StepUpRule {
  /** Who asks: a signed-in session (its own budget of wrong tries), or the holder of a mailed link. */
  by: "session" | "link";
  proof: readonly ProofKind[];
  /** When "second_factor" applies: while TOTP is on, or only when TOTP was turned on after the address was proved. */
  secondFactor?: "while_totp_on" | "if_totp_after_mailbox";
  /** How fresh the proof must be. */
  fresh: string;
}

/**
 * The step-up table. Every proof is sent with the request that acts ("in the request"), never taken
 * from an earlier sign-in. A session's wrong passwords and codes count against that session's own
 * budget (STEP_UP_MAX_FAILURES, then it is signed out), never the account lock; a link holder's
 * wrong codes count toward the account lock, like a sign-in's second step. docs/security.md
 * renders this table.
 */
export const STEP_UP: Record<Action, StepUpRule> = {
  change_password: { by: "session", proof: ["password", "second_factor"], secondFactor: "while_totp_on", fresh: "in the request" },
  change_email: {
    by: "session",
    proof: ["password", "second_factor"],
    secondFactor: "while_totp_on",
    fresh: "in the request; then the link mailed to the new address",
  },
  delete_account: { by: "session", proof: ["password", "second_factor"], secondFactor: "while_totp_on", fresh: "in the request" },
  setup_totp: { by: "session", proof: ["password"], fresh: "in the request (TOTP is off: setup is refused while it is on)" },
  enable_totp: { by: "session", proof: ["new_totp_code"], fresh: "in the request; the setup before it took the password" },
  disable_totp: { by: "session", proof: ["password", "second_factor"], secondFactor: "while_totp_on", fresh: "in the request" },
  add_passkey: {
    by: "session",
    proof: ["password", "second_factor"],
    secondFactor: "while_totp_on",
    fresh: "in the request for the options; the passkey must follow within CHALLENGE_TTL",
  },
  remove_passkey: { by: "session", proof: ["password", "second_factor"], secondFactor: "while_totp_on", fresh: "in the request" },
  reset_password: { by: "link", proof: ["mailbox", "second_factor"], secondFactor: "if_totp_after_mailbox", fresh: "the link lives 30 minutes" },
  revoke_way_in: { by: "link", proof: ["mailbox"], fresh: `the link lives ${3 * 24} hours` },
};

/** The address was proved before TOTP was turned on: then the mailbox alone does not outrank TOTP. */
export const totpAfterMailbox = (u: Pick<User, "totpEnabledAt" | "emailVerifiedAt">) =>
  u.totpEnabledAt !== null && u.emailVerifiedAt !== null && u.emailVerifiedAt.getTime() <= u.totpEnabledAt.getTime();

/** The proofs `action` needs from this user now. */
export function needs(action: Action, user: Pick<User, "totpEnabledAt" | "emailVerifiedAt">): ProofKind[] {
  const rule = STEP_UP[action];
  return rule.proof.filter((p) => {
    if (p !== "second_factor") return true;
    return rule.secondFactor === "if_totp_after_mailbox" ? totpAfterMailbox(user) : user.totpEnabledAt !== null;
  });
}

/**
 * What a password reset removes (it hands the account back to the mailbox's owner): every passkey,
 * and TOTP unless it was turned on after the address was proved (then the reset needed a code).
 */
export const resetRemovesTotp = (u: Pick<User, "totpEnabledAt" | "emailVerifiedAt">) => u.totpEnabledAt !== null && !totpAfterMailbox(u);

export type WayIn =
  | { kind: "password"; addedAt: Date | null; addedBy: string | null }
  | { kind: "email"; address: string; verified: boolean; addedAt: Date | null; addedBy: string | null }
  | { kind: "totp"; addedAt: Date; addedBy: string | null; recoveryCodesLeft: number }
  | { kind: "passkey"; id: string; name: string; addedAt: Date; addedBy: string | null; lastUsedAt: Date | null; backedUp: boolean };

/** The account's ways in, oldest first within each kind: what GET /me/security shows. */
export function waysIn(user: User, passkeys: Passkey[]): WayIn[] {
  const ways: WayIn[] = [{ kind: "password", addedAt: user.passwordSetAt, addedBy: user.passwordSetBy }];
  if (user.email)
    ways.push({ kind: "email", address: user.email, verified: user.emailVerifiedAt !== null, addedAt: user.emailSetAt, addedBy: user.emailSetBy });
  if (user.totpEnabledAt)
    ways.push({ kind: "totp", addedAt: user.totpEnabledAt, addedBy: user.totpEnabledBy, recoveryCodesLeft: user.recoveryCodes?.length ?? 0 });
  for (const p of [...passkeys].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())) {
    ways.push({ kind: "passkey", id: p.id, name: p.name, addedAt: p.createdAt, addedBy: p.addedBy, lastUsedAt: p.lastUsedAt, backedUp: p.backedUp });
  }
  return ways;
}

/** The step-up table as it applies to this account now: each action and the proofs to send with it. */
export function stepUpFor(user: Pick<User, "totpEnabledAt" | "emailVerifiedAt">): Record<Action, ProofKind[]> {
  return Object.fromEntries((Object.keys(STEP_UP) as Action[]).map((a) => [a, needs(a, user)])) as Record<Action, ProofKind[]>;
}

/**
 * How a sign-in was proved, as RFC 8176 `amr` values: sessions record them, and every access token
 * of the session carries them (with `auth_time`) so a resource server can ask for more. A passkey
 * with user verification is two factors: "hwk" for a device-bound key, "swk" for a synced (multi-device) one.
 */
export function amrOf(signIn: { method: "password" } | { method: "totp" | "recovery_code" } | { method: "passkey"; synced: boolean }): string[] {
  switch (signIn.method) {
    case "password":
      return ["pwd"];
    case "totp":
    case "recovery_code":
      return ["pwd", "otp", "mfa"];
    case "passkey":
      return [signIn.synced ? "swk" : "hwk", "mfa"];
  }
}
