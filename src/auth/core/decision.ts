import type { SQL } from "drizzle-orm";
import { audit, auditRow, logEvent } from "../../audit";
import type { Config } from "../../config";
import { type BatchResults, batch, joined, type Statements } from "../../db/batch";
import { insertChallenge } from "../../db/mfa";
import type { User } from "../../db/schema";
import { signInConditions } from "../../db/standing";
import { findUserById } from "../../db/users";
import { afterAnswer, type Deps } from "../../deps";
import { randomBytes, sha256Base64Url, toBase64Url } from "../../encoding";
import type { ErrorCode } from "../../response-schemas";
import { requestEmailVerification } from "../mail/verification";
import { Refusal } from "./errors";
import { type Issued, newSession, type OpenSession, openSession } from "./sign-in";
import { amrOf, completeAlone, type FirstFactor, type Proved } from "./ways-in";

/**
 * The sign-in decision: the one place that says what a right first factor (or a completed second
 * step) comes to for an account. Every way in calls it once it has checked its proof, and it alone
 * refuses (with the code), asks the second step (TOTP on, a factor that does not sign in alone), or
 * opens the session (auth/core/sign-in.ts) with the `amr` and `auth_time` that follow. It decides from
 * the account as read; the session's write is made under the same conditions in SQL (db/standing.ts),
 * so a change that lands in between refuses it, and that refusal is named here too. A way in brings
 * only its own statements (a password check's end, a challenge used, a passkey's counter) and the
 * code its clients know for "changed while you signed in". Knows nothing of HTTP.
 */

/** Why an account as it stands is refused a session. */
type Standing = "account_disabled" | "email_unverified";

export type Verdict = { refuse: Standing } | { secondStep: true } | { open: string[] };

type Subject = Pick<User, "disabledAt" | "emailVerifiedAt" | "totpEnabledAt">;

const standingOf = (config: Config, user: Subject): Standing | undefined =>
  user.disabledAt ? "account_disabled" : config.REQUIRE_VERIFIED_EMAIL === "on" && !user.emailVerifiedAt ? "email_unverified" : undefined;

/** What `proved` comes to for this account: a refusal, the second step, or a session with these `amr`. */
export function verdict(config: Config, user: Subject, proved: Proved): Verdict {
  const refuse = standingOf(config, user);
  if (refuse) return { refuse };
  if (user.totpEnabledAt && !completeAlone(proved)) return { secondStep: true };
  return { open: amrOf(proved) };
}

/** The second step a sign-in hands out while TOTP is on: a single-use token for POST /login/mfa (auth/totp/mfa.ts). */
export interface MfaChallenge {
  token: string;
  expiresIn: number;
}

export type SignedIn = { user: User; issued: Issued };
export type SignInResult = SignedIn | { user: User; challenge: MfaChallenge };

/**
 * The code for a session write refused while the account still stands: what the way in's own
 * condition rested on changed (its password, TOTP turned on, its challenge). A code is audited as
 * login_failed `changed_during_login`; a function reads the way's results and answers its own refusal.
 */
type Changed<R> = ErrorCode | ((results: R) => Promise<Refusal | ErrorCode>);

export interface SignInWay<B extends Statements, A extends Statements> {
  /** Written with a refusal's login_failed row (the end of the password check). */
  refused?: Statements;
  /** Written with the second step's challenge. */
  challenged?: Statements;
  /** The session's own part: its statements, condition and audit detail (openSession's options but `amr`). */
  session?: Omit<OpenSession<B, A>, "amr" | "condition"> & { condition?: SQL; passwordVersion?: number };
  changed: Changed<BatchResults<B & A>>;
}

/** The kinds `completeAlone` signs in with: their decision never asks a second step. */
type Complete = Extract<Proved, { kind: "passkey" | "second_step" }>;

/** Decides the sign-in: throws the refusal, or answers the session's tokens or the second step's challenge. */
export async function decideSignIn<B extends Statements = Record<never, never>, A extends Statements = Record<never, never>>(
  deps: Deps,
  user: User,
  proved: Complete,
  now: Date,
  way: SignInWay<B, A>,
): Promise<SignedIn>;
export async function decideSignIn<B extends Statements = Record<never, never>, A extends Statements = Record<never, never>>(
  deps: Deps,
  user: User,
  proved: Proved,
  now: Date,
  way: SignInWay<B, A>,
): Promise<SignInResult>;
export async function decideSignIn<B extends Statements, A extends Statements>(
  deps: Deps,
  user: User,
  proved: Proved,
  now: Date,
  way: SignInWay<B, A>,
): Promise<SignInResult> {
  const decided = verdict(deps.config, user, proved);
  if ("refuse" in decided) throw await refuse(deps, user, decided.refuse, way.refused);
  if ("secondStep" in decided) return { user, challenge: await issueMfaChallenge(deps, user, now, way.challenged ?? {}, amrOf(proved)[0]!) };
  return { user, issued: await open(deps, user, proved, decided.open, now, way) };
}

/**
 * The same decision where this request cannot finish the sign-in (a social callback: the app's
 * exchange can): refused as ever, else "hand_off" (a later request decides again), unless it
 * `mayOpen` and the verdict is a session.
 */
export async function decideOrHandOff<B extends Statements, A extends Statements>(
  deps: Deps,
  user: User,
  proved: FirstFactor,
  now: Date,
  way: SignInWay<B, A> & { mayOpen: boolean },
): Promise<SignedIn | "hand_off"> {
  const decided = verdict(deps.config, user, proved);
  if ("refuse" in decided) throw await refuse(deps, user, decided.refuse, way.refused);
  if (!("open" in decided) || !way.mayOpen) return "hand_off";
  return { user, issued: await open(deps, user, proved, decided.open, now, way) };
}

/**
 * What a new account (not disabled, no TOTP, its address proved or not) comes to when it signs up
 * with `proved`: sign-up asks the same decision, so an account that could never sign in is not
 * made, and one that must verify its address first gets no session yet.
 */
export const signUpVerdict = (config: Config, proved: FirstFactor, emailVerifiedAt: Date | null) =>
  verdict(config, { disabledAt: null, totpEnabledAt: null, emailVerifiedAt }, proved);

/** A sign-up's first session (written by the caller with the account, in one batch), or none: verify the address first. */
export async function firstSession(deps: Deps, userId: string, proved: FirstFactor, emailVerifiedAt: Date | null, now: Date) {
  const decided = signUpVerdict(deps.config, proved, emailVerifiedAt);
  return "open" in decided ? newSession(deps, userId, now, decided.open) : undefined;
}

/**
 * Refused as the account stands, told only to someone whose proof was right: audited with the way's
 * statements (one round trip). An unverified address gets a fresh link (within the link limits), so
 * an account whose first link was lost is never stuck.
 */
async function refuse(deps: Deps, user: User, code: Standing, also: Statements = {}): Promise<Refusal> {
  const refused = { user_id: user.id, reason: code };
  await batch(deps.db, joined(also, { audited: auditRow(deps, "login_failed", refused) }));
  logEvent(deps, "login_failed", refused);
  if (code === "account_disabled") return new Refusal(code);
  await afterAnswer(deps, "verification_on_login", () => requestEmailVerification(deps, user));
  return new Refusal("email_unverified", "Verify your email address first: a new link is on its way to it");
}

async function open<B extends Statements, A extends Statements>(deps: Deps, user: User, proved: Proved, amr: string[], now: Date, way: SignInWay<B, A>) {
  const { passwordVersion, condition, ...session } = way.session ?? {};
  const requireVerified = deps.config.REQUIRE_VERIFIED_EMAIL === "on";
  const opened = await openSession(deps, user, now, {
    ...session,
    amr,
    // What this decision rested on, in SQL: a factor that does not sign in alone only while TOTP is still off.
    condition: signInConditions({ requireVerified, passwordVersion, totpOff: !completeAlone(proved), also: condition }),
  });
  if (opened.issued) return opened.issued;
  throw await refusedWrite(deps, user.id, way.changed, opened.results);
}

/** Why the session's write was refused, read once the batch ran: the account's standing first, then the way's own condition. */
async function refusedWrite<R>(deps: Deps, userId: string, changed: Changed<R>, results: R): Promise<Refusal> {
  const user = await findUserById(deps.db, userId);
  const standing = user && standingOf(deps.config, user);
  if (standing) {
    await audit(deps, "login_failed", { user_id: userId, reason: standing });
    return new Refusal(standing);
  }
  const own = typeof changed === "string" ? changed : await changed(results);
  if (own instanceof Refusal) return own;
  await audit(deps, "login_failed", { user_id: userId, reason: "changed_during_login" });
  return new Refusal(own);
}

/**
 * Stores the challenge (its SHA-256; bound to the password version as read, and to how the first
 * step was proved: "pwd", or "fed" for a social sign-in) with its audit row and the way's own
 * statements (the password check's end): one round trip.
 */
async function issueMfaChallenge(deps: Deps, user: User, now: Date, also: Statements, firstFactor: string): Promise<MfaChallenge> {
  const token = toBase64Url(randomBytes(32));
  const ttl = deps.config.CHALLENGE_TTL;
  const row = {
    id: await sha256Base64Url(token),
    purpose: "mfa_login" as const,
    userId: user.id,
    passwordVersion: user.passwordVersion,
    firstFactor,
    createdAt: now,
    expiresAt: new Date(now.getTime() + ttl * 1000),
  };
  await batch(deps.db, joined({ challenge: insertChallenge(deps.db, row), audited: auditRow(deps, "mfa_challenge_issued", { user_id: user.id }) }, also));
  logEvent(deps, "mfa_challenge_issued", { user_id: user.id });
  return { token, expiresIn: ttl };
}
