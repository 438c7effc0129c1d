import type { Identity, Passkey, User } from "../../db/schema";
import type { Action } from "../../step-up-actions";

/**
 * An account's ways in, and the proof each sensitive action needs (step-up): the one place these
 * rules live. Flows ask `needs()`; none decides on its own. Knows nothing of HTTP.
 *
 * The ways in: the password; TOTP with its recovery codes; passkeys; social identities (a provider
 * vouches for a person: auth/social/flow.ts); and the mailbox, the recovery channel (a mailed link resets
 * the password, and so takes the account back: auth/mailbox/reclaim.ts). An account may have no password (a
 * social sign-up): then a recent sign-in stands in for it in step-ups, and a reset link sets one.
 */

/** The stored hash of an account without a password (NOT NULL stays: no rebuild of the users table). */
export const NO_PASSWORD = "";
export const hasPassword = (u: Pick<User, "passwordHash">) => u.passwordHash !== NO_PASSWORD;

/** The stored username of an account that has none (signed up by mail, a provider or as a guest): shown as null. */
export const NO_USERNAME = "";
export const usernameOf = (u: Pick<User, "username">) => (u.username === NO_USERNAME ? null : u.username);

/** What a request can offer as proof. */
export type ProofKind =
  | "password" // the current password
  | "second_factor" // a TOTP code or a recovery code (asked only while TOTP is on: see `when`)
  | "new_totp_code" // a code from the pending TOTP secret: the new authenticator is in hand
  | "mailbox" // a single-use link mailed to the account's address
  | "recent_sign_in"; // instead of a password the account does not have: a sign-in within STEP_UP_MAX_AGE

export type { Action } from "../../step-up-actions";

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
  // Signing out the other devices: a stolen access token alone cannot sign the owner out everywhere
  // (and keep the thief's session the one that is left). Ending this very session stays free (POST /logout).
  end_sessions: {
    by: "session",
    proof: ["password", "second_factor"],
    secondFactor: "while_totp_on",
    fresh: "in the request (POST /logout/all; DELETE /sessions/{id} for a session other than this one)",
  },
  setup_totp: { by: "session", proof: ["password"], fresh: "in the request (TOTP is off: setup is refused while it is on)" },
  enable_totp: { by: "session", proof: ["new_totp_code"], fresh: "in the request, from the session whose setup took the password" },
  disable_totp: { by: "session", proof: ["password", "second_factor"], secondFactor: "while_totp_on", fresh: "in the request" },
  add_passkey: {
    by: "session",
    proof: ["password", "second_factor"],
    secondFactor: "while_totp_on",
    fresh: "in the request for the options; the passkey must follow within CHALLENGE_TTL, from the same session",
  },
  remove_passkey: { by: "session", proof: ["password", "second_factor"], secondFactor: "while_totp_on", fresh: "in the request" },
  add_identity: {
    by: "session",
    proof: ["password", "second_factor"],
    secondFactor: "while_totp_on",
    fresh: "in the request for the link; the provider's answer must follow within 10 minutes, exchanged by the same session",
  },
  remove_identity: { by: "session", proof: ["password", "second_factor"], secondFactor: "while_totp_on", fresh: "in the request" },
  reset_password: {
    by: "link",
    proof: ["mailbox", "second_factor"],
    secondFactor: "if_totp_after_mailbox",
    fresh: "the link lives 30 minutes; with TOTP set up before the address was proved, the reset waits RECOVERY_DELAY",
  },
  revoke_way_in: {
    by: "link",
    proof: ["mailbox"],
    fresh: `the link lives ${3 * 24} hours (a password change or sign-out everywhere ends it); removing TOTP waits RECOVERY_DELAY`,
  },
  // An admin's actions that change who can do what, or what every token is signed with: a stolen
  // admin access token alone does not do them.
  change_roles: {
    by: "session",
    proof: ["password", "second_factor"],
    secondFactor: "while_totp_on",
    fresh: "in the request (PATCH /admin/users/{id} with roles)",
  },
  rotate_signing_keys: { by: "session", proof: ["password", "second_factor"], secondFactor: "while_totp_on", fresh: "in the request" },
  retire_signing_key: { by: "session", proof: ["password", "second_factor"], secondFactor: "while_totp_on", fresh: "in the request" },
  // Registering an app or changing where its codes go and what it may ask for: a client secret handed
  // out, or a redirect URI an attacker names, would be worth a stolen admin token.
  manage_clients: {
    by: "session",
    proof: ["password", "second_factor"],
    secondFactor: "while_totp_on",
    fresh: "in the request (POST /admin/clients; PATCH /admin/clients/{id} unless it only disables)",
  },
  // An owner deleting an organization or handing it over: a stolen access token alone does neither.
  manage_organization: {
    by: "session",
    proof: ["password", "second_factor"],
    secondFactor: "while_totp_on",
    fresh: "in the request (DELETE /orgs/{org_id}; POST /orgs/{org_id}/transfer)",
  },
  // An API key acts for its owner until revoked, from anywhere, without a second factor: handing one
  // out is worth a stolen access token's session.
  create_api_key: { by: "session", proof: ["password", "second_factor"], secondFactor: "while_totp_on", fresh: "in the request (POST /keys)" },
};

/** The address was proved before TOTP was turned on: then the mailbox alone does not outrank TOTP. */
export const totpAfterMailbox = (u: Pick<User, "totpEnabledAt" | "emailVerifiedAt">) =>
  u.totpEnabledAt !== null && u.emailVerifiedAt !== null && u.emailVerifiedAt.getTime() <= u.totpEnabledAt.getTime();

type StepUpSubject = Pick<User, "totpEnabledAt" | "emailVerifiedAt" | "passwordHash"> & Partial<Pick<User, "isGuest">>;

/**
 * What a guest (auth/guests/, docs/guests.md) does on its own session alone: add its first way in (which
 * makes it a member) or delete itself. A guest has no password, address or factor and cannot sign in
 * again, so its session is the only proof there is: asking for a recent sign-in would lock it out.
 * Whoever holds a guest's tokens is that guest for every purpose (it has nothing else); the other
 * actions stay closed to guests (src/middleware/members-only.ts) or keep their proof.
 */
export const GUEST_SESSION_SUFFICES: ReadonlySet<Action> = new Set<Action>(["add_passkey", "add_identity", "delete_account"]);

/** The proofs `action` needs from this user now; an account without a password offers a recent sign-in instead. */
export function needs(action: Action, user: StepUpSubject): ProofKind[] {
  if (user.isGuest && GUEST_SESSION_SUFFICES.has(action)) return [];
  const rule = STEP_UP[action];
  return rule.proof
    .filter((p) => {
      if (p !== "second_factor") return true;
      return rule.secondFactor === "if_totp_after_mailbox" ? totpAfterMailbox(user) : user.totpEnabledAt !== null;
    })
    .map((p) => (p === "password" && !hasPassword(user) ? "recent_sign_in" : p));
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
  | { kind: "passkey"; id: string; name: string; addedAt: Date; addedBy: string | null; lastUsedAt: Date | null; backedUp: boolean }
  | { kind: "identity"; id: string; provider: string; email: string | null; addedAt: Date; addedBy: string | null; lastUsedAt: Date | null };

/** The account's ways in, oldest first within each kind: what GET /me/security shows. */
export function waysIn(user: User, passkeys: Passkey[], identities: Identity[]): WayIn[] {
  const ways: WayIn[] = hasPassword(user) ? [{ kind: "password", addedAt: user.passwordSetAt, addedBy: user.passwordSetBy }] : [];
  if (user.email)
    ways.push({ kind: "email", address: user.email, verified: user.emailVerifiedAt !== null, addedAt: user.emailSetAt, addedBy: user.emailSetBy });
  if (user.totpEnabledAt)
    ways.push({ kind: "totp", addedAt: user.totpEnabledAt, addedBy: user.totpEnabledBy, recoveryCodesLeft: user.recoveryCodes?.length ?? 0 });
  for (const p of [...passkeys].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())) {
    ways.push({ kind: "passkey", id: p.id, name: p.name, addedAt: p.createdAt, addedBy: p.addedBy, lastUsedAt: p.lastUsedAt, backedUp: p.backedUp });
  }
  for (const i of [...identities].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())) {
    ways.push({ kind: "identity", id: i.id, provider: i.provider, email: i.email, addedAt: i.createdAt, addedBy: i.addedBy, lastUsedAt: i.lastUsedAt });
  }
  return ways;
}

/** The step-up table as it applies to this account now: each action and the proofs to send with it. */
export function stepUpFor(user: StepUpSubject): Record<Action, ProofKind[]> {
  return Object.fromEntries((Object.keys(STEP_UP) as Action[]).map((a) => [a, needs(a, user)])) as Record<Action, ProofKind[]>;
}

/**
 * What a sign-in proved before the decision (auth/core/decision.ts): a first factor, or a first factor
 * and then the second step. A way in that comes later (a mailed code, a guest, an API key, an OAuth
 * grant) adds its kind here, with its `amr` and whether it signs in alone (`completeAlone`), and
 * calls the decision with it: refusals, the second step and the session follow from the table.
 */
export type FirstFactor = { kind: "password" } | { kind: "social" } | { kind: "passkey"; synced: boolean } | { kind: "mail" } | { kind: "guest" };
/** The second step (a TOTP code or a recovery code) after a first factor, as its challenge recorded it ("pwd", "fed" or "email"). */
type SecondStep = { kind: "second_step"; method: "totp" | "recovery_code"; first: string | null };
export type Proved = FirstFactor | SecondStep;

/**
 * Whether what was proved signs in without a second step while TOTP is on: a passkey (user
 * verification makes it two factors) and a completed second step do; a password or a provider's word does not.
 */
export const completeAlone = (proved: Proved) => proved.kind === "passkey" || proved.kind === "second_step";

/**
 * How a sign-in was proved, as RFC 8176 `amr` values: sessions record them, and every access token
 * of the session carries them (with `auth_time`) so a resource server can ask for more. A passkey
 * with user verification is two factors: "hwk" for a device-bound key, "swk" for a synced (multi-device) one.
 * A social sign-in is one factor, "fed" (federated: RFC 8176 has no value for it; Entra ID uses this one).
 * A mailed link or code is one factor, "email" (not in RFC 8176 either; Okta uses this one). A guest
 * proved nothing: "guest".
 */
export function amrOf(proved: Proved): string[] {
  switch (proved.kind) {
    case "password":
      return ["pwd"];
    case "social":
      return ["fed"];
    case "second_step":
      return [proved.first === "fed" || proved.first === "email" ? proved.first : "pwd", "otp", "mfa"];
    case "mail":
      return ["email"];
    case "guest":
      return ["guest"];
    case "passkey":
      return [proved.synced ? "swk" : "hwk", "mfa"];
  }
}
