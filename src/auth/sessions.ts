import { audit, auditRow, auditRowIfSession, logEvent } from "../audit";
import type { Config } from "../config";
import { uniqueViolation } from "../db/client";
import type { User } from "../db/schema";
import {
  findRotated,
  insertSession,
  insertSessionIf,
  isSessionLive,
  listSessions as listSessionRows,
  reissueAccess,
  revokeBeyondCap,
  revokeSession,
  revokeUserSessions,
  rotateRefreshToken,
  type SessionCursor,
} from "../db/sessions";
import { endLinks } from "../db/account-tokens";
import { publishEpoch, retryAfterAnswer } from "./epochs";
import { requestEmailVerification } from "./account";
import { amrOf } from "./ways-in";
import { endCheck } from "../db/password-checks";
import { endSessionEpoch, epochState, findTaken, passwordIs, sessionEpochOf, findUserById, insertUser, rehashPassword, replacePassword } from "../db/users";
import { afterAnswer, type Deps } from "../deps";
import { randomBytes, sha256Base64Url, toBase64Url } from "../encoding";
import { ApiError } from "../errors";
import { log } from "../log";
import type { BatchItem } from "drizzle-orm/batch";
import type { SQL } from "drizzle-orm";
import { insertChallenge, totpIsOff } from "../db/mfa";
import { auditLock, failPasswordCheck, passPasswordCheck, startLogin } from "./lockout";
import { beginStepUp, proveStepUp, type StepUpInput } from "./step-up";
import { securityNotice } from "../mail";
import { dummyVerify, hashPassword, needsRehash, verifyPassword, type PasswordOptions } from "./passwords";
import { REFRESH_TOKEN_FORMAT, hashRefreshToken, newRefreshToken, successorOf } from "./refresh-tokens";
import { revokeEpoch, revokeSessions } from "./revocations";
import { signAccessToken, type AccessClaims } from "./tokens";

/**
 * The account flows over the db, password, token and revocation modules. Knows nothing of HTTP:
 * they return domain values (routes/ builds the JSON) and throw ApiError codes or typed errors.
 *
 * Every write two requests could race on is one conditional statement or one batch, and every
 * revocation is recorded in D1 before KV mirrors it, in a way a retry can repeat (auth/revocations.ts).
 * Each flow reads the clock once: the same `now` goes into the rows and the signed token.
 */

/** What register, login and refresh hand out. */
export interface Issued {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  sessionExpiresAt: Date; // when the session (and its cookie) ends
}

const passwordOptions = (config: Config): PasswordOptions => ({ iterations: config.PASSWORD_ITERATIONS, pepper: config.PASSWORD_PEPPER });

const accessUntil = (config: Config, now: Date) => new Date(now.getTime() + config.ACCESS_TOKEN_TTL * 1000);
const earlier = (a: Date, b: Date) => (a < b ? a : b);

/** Who is refreshing, as far as the grace window needs to know: not stored in the clear. */
export const clientFingerprint = (deps: Deps) => sha256Base64Url(`${deps.ip ?? ""}|${deps.userAgent ?? ""}`);

interface TokenOwner {
  id: string;
  username: string;
  roles: string[];
  epoch: number;
  emailVerifiedAt: Date | null;
}

/** What a session carries into each of its access tokens. */
interface IssuingSession {
  id: string;
  expiresAt: Date;
  amr: string[];
  authTime: Date;
}

/** Signs the access token for a session; its `exp` never passes the session's end. */
async function issue(config: Config, owner: TokenOwner, session: IssuingSession, now: Date, refreshToken: string): Promise<Issued> {
  const access = await signAccessToken(config, {
    userId: owner.id,
    username: owner.username,
    roles: owner.roles,
    sessionId: session.id,
    epoch: owner.epoch,
    emailVerified: owner.emailVerifiedAt !== null,
    authTime: session.authTime,
    amr: session.amr,
    now,
    expiresAt: earlier(accessUntil(config, now), session.expiresAt),
  });
  return { accessToken: access.token, refreshToken, expiresIn: access.expiresIn, sessionExpiresAt: session.expiresAt };
}

/** A new session row for a user (signed in as `amr` says, now), and the refresh token only its hash is stored for. */
async function newSession(deps: Deps, userId: string, now: Date, amr: string[], given?: { id: string; refreshToken: string }) {
  const { config } = deps;
  const refreshToken = given?.refreshToken ?? newRefreshToken();
  const expiresAt = new Date(now.getTime() + config.REFRESH_TOKEN_TTL * 1000);
  const row = {
    id: given?.id ?? crypto.randomUUID(),
    userId,
    refreshTokenHash: await hashRefreshToken(refreshToken),
    userAgent: deps.userAgent?.slice(0, 256) ?? null,
    createdAt: now,
    lastUsedAt: now,
    accessExpiresAt: earlier(accessUntil(config, now), expiresAt),
    expiresAt,
    amr,
    authTime: now,
  };
  return { row, refreshToken };
}

export interface RegisterInput {
  username: string;
  email?: string;
  password: string;
}

/** Creates the user and, unless `withSession` is false (REQUIRE_VERIFIED_EMAIL: verify first), a session. */
export async function register(deps: Deps, input: RegisterInput, withSession = true): Promise<{ user: User; issued?: Issued }> {
  const { db, config } = deps;
  const email = input.email?.toLowerCase();
  // A service that confirms addresses cannot let an account without one in: it could never sign in.
  if (config.REQUIRE_VERIFIED_EMAIL === "on" && !email) throw new ApiError("validation_failed", undefined, { email: "is required: this service confirms every address before sign-in" });
  // Cheap pre-check so a taken name does not cost a hash; the unique indexes settle races.
  const taken = await findTaken(db, input.username, email);
  if (taken.username) throw new ApiError("username_taken");
  if (taken.email) throw new ApiError("email_taken");

  const now = new Date();
  const user: User = {
    id: crypto.randomUUID(),
    username: input.username,
    email: email ?? null,
    passwordHash: await hashPassword(input.password, passwordOptions(config)),
    passwordVersion: 0,
    roles: ["user"], // never from the client
    failedLogins: 0,
    lastFailedLoginAt: null,
    lockedUntil: null,
    lockAuditedUntil: null,
    emailVerifiedAt: null,
    disabledAt: null,
    sessionEpoch: 0,
    epochKeptSession: null,
    totpSecret: null,
    totpEnabledAt: null,
    totpLastStep: 0,
    recoveryCodes: null,
    totpEnabledBy: null,
    passwordSetAt: now,
    passwordSetBy: null,
    emailSetAt: email ? now : null,
    emailSetBy: null,
    createdAt: now,
    updatedAt: now,
  };
  const { row, refreshToken } = await newSession(deps, user.id, now, amrOf({ method: "password" }));
  if (withSession) {
    // Set by the registration's own session.
    user.passwordSetBy = row.id;
    if (email) user.emailSetBy = row.id;
  }
  try {
    // One batch = one implicit transaction: no user without its first session (and its audit row).
    const record = auditRow(deps, "register", { user_id: user.id, session_id: withSession ? row.id : null });
    await (withSession ? db.batch([insertUser(db, user), insertSession(db, row), record]) : db.batch([insertUser(db, user), record]));
  } catch (err) {
    const index = uniqueViolation(err);
    if (index?.includes("username")) throw new ApiError("username_taken");
    if (index?.includes("email")) throw new ApiError("email_taken");
    throw err;
  }
  logEvent(deps, "register", { user_id: user.id, session_id: withSession ? row.id : null });
  return { user, issued: withSession ? await issue(config, { ...user, epoch: 0 }, row, now, refreshToken) : undefined };
}

export interface LoginInput {
  username: string; // username or email
  password: string;
}

/** A login's answer: tokens, or (TOTP on) the challenge for its second step (auth/mfa.ts). */
export type LoginResult = { user: User; issued: Issued } | { user: User; challenge: MfaChallenge };

export async function login(deps: Deps, input: LoginInput): Promise<LoginResult> {
  const { db, config } = deps;
  const options = passwordOptions(config);
  const now = new Date();
  // The account and the start of its password check: one round trip (and the per-account limit).
  const { user, check } = await startLogin(deps, input.username, now, deps.limitAccount);

  // Same work and the same error whether the user is unknown or the password wrong.
  const ok = user ? await verifyPassword(input.password, user.passwordHash, options) : await dummyVerify(input.password, options);
  if (!user || !ok || !check) {
    const lock = await failPasswordCheck(deps, user?.id, check, now); // with its login_failed row
    if (user) await auditLock(deps, user.id, lock);
    throw new ApiError("invalid_credentials");
  }
  // Told only to someone who knows the password.
  if (user.disabledAt || (config.REQUIRE_VERIFIED_EMAIL === "on" && !user.emailVerifiedAt)) {
    const refused = { user_id: user.id, reason: user.disabledAt ? "account_disabled" : "email_unverified" };
    await deps.db.batch([...passPasswordCheck(deps, user.id, check, now), auditRow(deps, "login_failed", refused)]);
    logEvent(deps, "login_failed", refused);
    if (user.disabledAt) throw new ApiError("account_disabled");
    // They know the password: a fresh link goes to the address (within the link limits), so an
    // account whose first link was lost is never stuck.
    await afterAnswer(deps, "verification_on_login", () => requestEmailVerification(deps, user.id));
    throw new ApiError("email_unverified", "Verify your email address first: a new link is on its way to it");
  }

  const rehash = needsRehash(user.passwordHash, options) ? [rehashPassword(db, user.id, user.passwordHash, await hashPassword(input.password, options), now)] : [];
  // TOTP on: half a login. The failure count stays (only the second step clears it), so knowing the
  // password does not buy unlimited guesses at the code.
  if (user.totpEnabledAt) return { user, challenge: await issueMfaChallenge(deps, user, check, now, rehash) };

  const opened = await openSession(deps, user, now, {
    amr: amrOf({ method: "password" }),
    passwordVersion: user.passwordVersion,
    condition: totpIsOff(db, user.id), // TOTP turned on meanwhile: this password alone no longer signs in
    after: [...passPasswordCheck(deps, user.id, check, now), ...rehash],
  });
  if (!opened.issued) {
    // The password changed, or the account was disabled, while it was being checked.
    const now2 = await findUserById(db, user.id);
    await audit(deps, "login_failed", { user_id: user.id, reason: now2?.disabledAt ? "account_disabled" : "changed_during_login" });
    throw new ApiError(now2?.disabledAt ? "account_disabled" : "invalid_credentials");
  }
  return { user, issued: opened.issued };
}

type Statement = BatchItem<"sqlite">;

/** The second step a login with TOTP on hands out: a single-use token for POST /login/mfa (auth/mfa.ts). */
export interface MfaChallenge {
  token: string;
  expiresIn: number;
}

/**
 * Stores the challenge (its SHA-256; bound to the password version checked) and ends the password
 * check, with its audit row: one round trip.
 */
async function issueMfaChallenge(deps: Deps, user: User, check: string, now: Date, also: Statement[]): Promise<MfaChallenge> {
  const token = toBase64Url(randomBytes(32));
  const ttl = deps.config.CHALLENGE_TTL;
  const row = { id: await sha256Base64Url(token), purpose: "mfa_login" as const, userId: user.id, passwordVersion: user.passwordVersion, createdAt: now, expiresAt: new Date(now.getTime() + ttl * 1000) };
  await deps.db.batch([insertChallenge(deps.db, row), endCheck(deps.db, check), auditRow(deps, "mfa_challenge_issued", { user_id: user.id }), ...also]);
  logEvent(deps, "mfa_challenge_issued", { user_id: user.id });
  return { token, expiresIn: ttl };
}

export interface OpenSession {
  /** How the sign-in was proved (auth/ways-in.ts amrOf). */
  amr: string[];
  /** Written only while the password is still this version (a change that landed meanwhile wins). */
  passwordVersion?: number;
  /** Statements that run first in the batch (their results come back in `before`), and last. */
  before?: Statement[];
  after?: Statement[];
  /** The session is written only if this holds as well. */
  condition?: SQL;
  /** Added to the login_succeeded audit row, e.g. how the user signed in. */
  detail?: Record<string, string>;
  /** The session's id and refresh token, where the caller must be able to answer a retry (auth/mfa.ts). */
  session?: { id: string; refreshToken: string };
}

/**
 * Opens the session a sign-in ends with (a password, a second step, a passkey) in one round trip:
 * the session (only if the user may still hold one, and the caller's conditions hold), the per-user
 * cap, the epoch for the token, the audit row, and the caller's own statements. `issued` is absent
 * when the session was not written; `before` holds the results of the caller's first statements.
 */
export async function openSession(deps: Deps, user: User, now: Date, opts: OpenSession): Promise<{ issued?: Issued; before: unknown[] }> {
  const { db, config } = deps;
  const { row, refreshToken } = await newSession(deps, user.id, now, opts.amr, opts.session);
  const before = opts.before ?? [];
  const succeeded = { user_id: user.id, session_id: row.id, ...opts.detail };
  const results = await db.batch([
    ...before,
    insertSessionIf(db, row, { passwordVersion: opts.passwordVersion, requireVerified: config.REQUIRE_VERIFIED_EMAIL === "on", condition: opts.condition }),
    revokeBeyondCap(db, user.id, now, config.MAX_SESSIONS_PER_USER),
    sessionEpochOf(db, user.id),
    auditRowIfSession(deps, "login_succeeded", succeeded), // only if the session was written
    ...(opts.after ?? []),
  ] as unknown as [Statement, ...Statement[]]);
  const [inserted, evicted, [current]] = results.slice(before.length) as [{ id: string }[], { id: string; userId: string; accessExpiresAt: Date }[], { epoch: number }[]];
  const answers = results.slice(0, before.length);
  if (!inserted[0] || current === undefined) return { before: answers };
  logEvent(deps, "login_succeeded", succeeded);
  await endEvicted(deps, evicted);
  return { issued: await issue(config, { ...user, epoch: current.epoch }, row, now, refreshToken), before: answers };
}

/**
 * A sign-in's answer again, for a client retrying after it was lost: a new access token for the
 * session that sign-in opened, with the same refresh token, while that is still the session's
 * current one (not refreshed since). Null otherwise.
 */
export async function reissueSignIn(deps: Deps, sessionId: string, refreshToken: string): Promise<Issued | null> {
  const now = new Date();
  const currentHash = await hashRefreshToken(refreshToken);
  const again = await reissueAccess(deps.db, { sessionId, currentHash, now, accessExpiresAt: accessUntil(deps.config, now), requireVerified: deps.config.REQUIRE_VERIFIED_EMAIL === "on" });
  return again ? issue(deps.config, again.user, again.session, now, refreshToken) : null;
}

/**
 * Sessions ended by the per-user cap: revoked in D1 already (no refresh), and in KV here. A failed KV
 * write must not fail the login it came with; the evicted session's access token then lives out its
 * remaining minutes, and the log says so.
 */
async function endEvicted(deps: Deps, evicted: { id: string; userId: string; accessExpiresAt: Date }[]) {
  if (evicted.length === 0) return;
  for (const s of evicted) await audit(deps, "session_revoked", { user_id: s.userId, session_id: s.id, reason: "session_cap" });
  try {
    await revokeSessions(deps.kv, evicted);
  } catch {
    retryAfterAnswer(deps, () => revokeSessions(deps.kv, evicted));
  }
}

const deadRefreshToken = () => new ApiError("invalid_token", "The refresh token is invalid, expired or already used");

/**
 * Single-use rotation. The successor of a token is derived from it (auth/refresh-tokens.ts), so:
 * - the same client (IP and User-Agent) presenting a rotated token again within REFRESH_REUSE_GRACE
 *   seconds (a retry whose answer was lost, or a second tab) gets the same successor and a fresh
 *   access token, as long as that successor is still the session's current token;
 * - any other replay of a rotated token is theft (RFC 9700 section 4.14.2): the whole session dies.
 */
export async function refresh(deps: Deps, refreshToken: string): Promise<Issued> {
  const { db, kv, config } = deps;
  if (!REFRESH_TOKEN_FORMAT.test(refreshToken)) throw deadRefreshToken();
  const now = new Date();
  const oldHash = await hashRefreshToken(refreshToken);
  const successor = await successorOf(config.JWT_PRIVATE_KEY, refreshToken);
  const successorHash = await hashRefreshToken(successor);
  const fingerprint = await clientFingerprint(deps);
  const accessExpiresAt = accessUntil(config, now);
  const requireVerified = config.REQUIRE_VERIFIED_EMAIL === "on";
  const rotated = await rotateRefreshToken(db, { oldHash, newHash: successorHash, now, accessExpiresAt, rotatedBy: fingerprint, requireVerified });
  if (rotated) return issue(config, rotated.user, rotated.session, now, successor);

  const used = await findRotated(db, oldHash);
  if (!used) throw deadRefreshToken();
  const sameClient = used.rotatedBy === fingerprint && now.getTime() - used.rotatedAt.getTime() <= config.REFRESH_REUSE_GRACE * 1000;
  if (!sameClient) {
    const revoked = await revokeSession(db, { id: used.sessionId }, now);
    // Audited before KV is written, and the write retried after the answer if it fails: a thief does
    // not retry, so neither may depend on that.
    await audit(deps, "refresh_reuse_detected", { session_id: used.sessionId, user_id: used.userId });
    try {
      await revokeSessions(kv, revoked);
    } catch (err) {
      retryAfterAnswer(deps, () => revokeSessions(kv, revoked));
      throw err;
    }
    throw deadRefreshToken();
  }
  const again = await reissueAccess(db, { sessionId: used.sessionId, currentHash: successorHash, now, accessExpiresAt, requireVerified });
  if (again) {
    log("refresh_retried", { request_id: deps.requestId, user_id: used.userId, session_id: used.sessionId });
    return issue(config, again.user, again.session, now, successor);
  }
  // The successor was rotated on already: this client holds a newer token than the one it sent.
  await audit(deps, "refresh_race", { session_id: used.sessionId, user_id: used.userId });
  throw deadRefreshToken();
}

/**
 * Kills this session: every access token of it (sid, in KV) and its refresh token (D1). Repeatable:
 * a retry after a failed KV write finds the session again and completes the revocation.
 */
export async function logout(deps: Deps, claims: AccessClaims): Promise<void> {
  const event = { user_id: claims.sub, session_id: claims.sid };
  // The revocation and its audit row: one round trip.
  const [revoked] = await deps.db.batch([revokeSession(deps.db, { id: claims.sid, userId: claims.sub }, new Date()), auditRow(deps, "logout", event)]);
  logEvent(deps, "logout", event);
  // No row (the user was deleted): this token still must stop working.
  await revokeSessions(deps.kv, revoked.length ? revoked : [{ id: claims.sid, accessExpiresAt: new Date(claims.exp * 1000) }]);
}

/** Logout by refresh token alone (cookie mode). Returns false when the token names no session (already over). */
export async function logoutByRefreshToken(deps: Deps, refreshToken: string): Promise<boolean> {
  if (!REFRESH_TOKEN_FORMAT.test(refreshToken)) return false;
  const revoked = await revokeSession(deps.db, { refreshTokenHash: await hashRefreshToken(refreshToken) }, new Date());
  const session = revoked[0];
  if (!session) return false;
  await revokeSessions(deps.kv, revoked);
  await audit(deps, "logout", { user_id: session.userId, session_id: session.id });
  return true;
}

/** Every session of the user dies: refresh tokens in D1, access tokens by one epoch entry in KV. */
export async function logoutAll(deps: Deps, claims: AccessClaims): Promise<number> {
  const { db } = deps;
  const now = new Date();
  const [, revoked, , [state]] = await db.batch([
    endSessionEpoch(db, claims.sub),
    revokeUserSessions(db, claims.sub, now),
    endLinks(db, claims.sub, ["change_email"], now), // "sign me out everywhere" also stops a pending address change
    epochState(db, claims.sub),
  ]);
  if (!state) throw new ApiError("invalid_token", "The user behind this token no longer exists");
  await publishEpoch(deps, claims.sub, state, now);
  await audit(deps, "logout_all", { user_id: claims.sub, sessions_revoked: revoked.length });
  return revoked.length;
}

export interface PasswordChange extends StepUpInput {
  current_password: string;
  new_password: string;
}

/**
 * After the step-up (auth/ways-in.ts change_password: the current password, and a code while TOTP is
 * on; wrong ones count against this session's own budget, never the account lock), stores the new
 * hash and kills every other session of the user.
 */
export async function changePassword(deps: Deps, claims: AccessClaims, input: PasswordChange): Promise<number> {
  const { db, config } = deps;
  const options = passwordOptions(config);
  if (input.new_password.normalize("NFC") === input.current_password.normalize("NFC")) {
    throw new ApiError("validation_failed", undefined, { new_password: "must differ from the current password" });
  }
  const now = new Date();
  const started = await beginStepUp(deps, claims, now);
  const { user, check } = started;
  // This session made the latest change: mirror it into KV again (a retry after a failed KV write
  // completes the revocation, whatever this request turns out to be). If this token predates that
  // change and the new password is the one stored, this is that request again, its answer lost:
  // answer as it would have.
  if (user.epochKeptSession === claims.sid) {
    const repeated = claims.epoch < user.sessionEpoch && (await verifyPassword(input.new_password, user.passwordHash, options));
    const [[state]] = await db.batch([epochState(db, user.id), ...(repeated ? [endCheck(db, check)] : [])]);
    if (state) await publishEpoch(deps, user.id, state, now);
    if (repeated) return 0;
  }
  await proveStepUp(deps, claims, "change_password", started, input, now);

  const newHash = await hashPassword(input.new_password, options);
  const changed = passwordIs(db, user.id, newHash);
  const [replaced, revoked, , [state]] = await db.batch([
    // Only if the password is still the one checked (of two concurrent changes, one wins) and this
    // session is still live (a logout-all that landed meanwhile stands).
    replacePassword(db, user.id, user.passwordVersion, newHash, now, claims.sid),
    revokeUserSessions(db, user.id, now, claims.sid, changed),
    // A pending email change (maybe a hijacker's) or reset link does not outlive the new password.
    endLinks(db, user.id, ["change_email", "reset_password"], now, changed),
    epochState(db, user.id),
  ]);
  if (!replaced[0] || !state) {
    if (!(await isSessionLive(db, claims.sid, now))) throw new ApiError("invalid_token", "This session has ended");
    throw new ApiError("invalid_credentials", "The password was changed by another request meanwhile");
  }
  await publishEpoch(deps, user.id, state, now);
  await audit(deps, "password_changed", { user_id: user.id, session_id: claims.sid, sessions_revoked: revoked.length });
  securityNotice(deps, user, "The password of your account was changed");
  return revoked.length;
}

export async function listSessions(deps: Deps, claims: AccessClaims, limit: number, after?: SessionCursor) {
  return listSessionRows(deps.replica(), claims.sub, new Date(), limit, after); // a list to look at: may lag a moment
}

/** Revokes one of the caller's own sessions; another user's id or an unknown one is not_found. */
export async function revokeOwnSession(deps: Deps, claims: AccessClaims, sessionId: string): Promise<void> {
  const revoked = await revokeSession(deps.db, { id: sessionId, userId: claims.sub }, new Date());
  if (!revoked[0]) throw new ApiError("not_found", "No such live session");
  await revokeSessions(deps.kv, revoked);
  await audit(deps, "session_revoked", { user_id: claims.sub, session_id: sessionId });
}
