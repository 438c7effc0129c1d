import type { BatchItem } from "drizzle-orm/batch";
import { audit, type AuditContext } from "../audit";
import type { Config } from "../config";
import { uniqueViolation, type Db } from "../db/client";
import { findRotated, insertSession, listLiveSessions, revokeSession, revokeUserSessions, rotateRefreshToken } from "../db/sessions";
import type { User } from "../db/schema";
import { clearFailedLogins, findTaken, findUserById, findUserByLogin, insertUser, updatePasswordHash } from "../db/users";
import { sha256Base64Url, randomBytes, toBase64Url } from "../encoding";
import { ApiError } from "../errors";
import { auditIfLocked, beginPasswordAttempt } from "./lockout";
import { dummyVerify, hashPassword, needsRehash, verifyPassword, type PasswordOptions } from "./passwords";
import { revokeSessions, revokeToken } from "./revocations";
import { signAccessToken, type AccessClaims } from "./tokens";

/**
 * The account flows over the db, password and token modules. Knows nothing of HTTP:
 * failures are ApiErrors with contract codes, rendered by errors.ts.
 */

export interface Deps extends AuditContext {
  db: Db;
  kv: KVNamespace;
  config: Config;
  userAgent?: string;
}

export interface PublicUser {
  id: string;
  username: string;
  email: string | null;
  roles: string[];
  created_at: string;
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: "Bearer";
  expires_in: number;
}

export const toPublicUser = (u: User): PublicUser => ({
  id: u.id,
  username: u.username,
  email: u.email,
  roles: u.roles,
  created_at: u.createdAt.toISOString(),
});

const passwordOptions = (config: Config): PasswordOptions => ({
  iterations: config.PASSWORD_ITERATIONS,
  pepper: config.PASSWORD_PEPPER,
});

/** 256 random bits, base64url. Only its SHA-256 is stored: it is high-entropy, so a fast hash suffices. */
export function newRefreshToken(): string {
  return toBase64Url(randomBytes(32));
}

export const hashRefreshToken = sha256Base64Url;

// What newRefreshToken() makes; anything else is not worth a D1 query.
const REFRESH_TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/;

/** An upper bound for the `exp` of an access token signed now (signAccessToken rounds down). */
const accessExpiry = (config: Config, now: Date) => new Date(now.getTime() + config.ACCESS_TOKEN_TTL * 1000);

/** Who is refreshing, as far as the grace window needs to know: not stored in the clear. */
const clientFingerprint = (deps: Deps) => sha256Base64Url(`${deps.ip ?? ""}|${deps.userAgent ?? ""}`);

/** Builds a session row for a user plus the token pair that goes with it. */
async function openSession(deps: Deps, user: User, now: Date) {
  const { config } = deps;
  const refreshToken = newRefreshToken();
  const row = {
    id: crypto.randomUUID(),
    userId: user.id,
    refreshTokenHash: await hashRefreshToken(refreshToken),
    userAgent: deps.userAgent?.slice(0, 256) ?? null,
    createdAt: now,
    lastUsedAt: now,
    accessExpiresAt: accessExpiry(config, now),
    expiresAt: new Date(now.getTime() + config.REFRESH_TOKEN_TTL * 1000),
  };
  const access = await signAccessToken(config, { userId: user.id, username: user.username, roles: user.roles, sessionId: row.id });
  const tokens: TokenPair = { access_token: access.token, refresh_token: refreshToken, token_type: "Bearer", expires_in: access.expiresIn };
  return { row, tokens };
}

/** What register, login and refresh return: the token pair and when the session (and its cookie) ends. */
export interface Issued extends TokenPair {
  session_expires_at: Date;
}

export interface RegisterInput {
  username: string;
  email?: string;
  password: string;
}

export async function register(deps: Deps, input: RegisterInput) {
  const { db, config } = deps;
  const email = input.email?.toLowerCase();
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
    roles: ["user"], // never from the client
    failedLogins: 0,
    lastFailedLoginAt: null,
    lockedUntil: null,
    createdAt: now,
    updatedAt: now,
  };
  const session = await openSession(deps, user, now);
  try {
    // One batch = one implicit transaction: no user without its first session.
    await db.batch([insertUser(db, user), insertSession(db, session.row)]);
  } catch (err) {
    const index = uniqueViolation(err);
    if (index?.includes("username")) throw new ApiError("username_taken");
    if (index?.includes("email")) throw new ApiError("email_taken");
    throw err;
  }
  await audit(deps, "register", { user_id: user.id, session_id: session.row.id });
  return { user: toPublicUser(user), ...session.tokens, session_expires_at: session.row.expiresAt };
}

export interface LoginInput {
  username: string; // username or email
  password: string;
}

export async function login(deps: Deps, input: LoginInput) {
  const { db, config } = deps;
  const options = passwordOptions(config);
  const now = new Date();
  const user = await findUserByLogin(db, input.username);
  const attempt = await beginPasswordAttempt(deps, user?.id, now);

  // Same work and the same error whether the user is unknown or the password wrong.
  const ok = user ? await verifyPassword(input.password, user.passwordHash, options) : await dummyVerify(input.password, options);
  if (!user || !ok) {
    await audit(deps, "login_failed", { user_id: user?.id ?? null });
    if (user) await auditIfLocked(deps, user.id, attempt);
    throw new ApiError("invalid_credentials");
  }

  const session = await openSession(deps, user, now);
  const alsoWrite: BatchItem<"sqlite">[] = [];
  if (needsRehash(user.passwordHash, options)) alsoWrite.push(updatePasswordHash(db, user.id, await hashPassword(input.password, options), now));
  await db.batch([insertSession(db, session.row), clearFailedLogins(db, user.id), ...alsoWrite]); // success resets the count
  await audit(deps, "login_succeeded", { user_id: user.id, session_id: session.row.id });
  return { user: toPublicUser(user), ...session.tokens, session_expires_at: session.row.expiresAt };
}

const deadRefreshToken = () => new ApiError("invalid_token", "The refresh token is invalid, expired or already used");

/**
 * Single-use rotation. A token that was already rotated is theft (RFC 9700 section 4.14.2):
 * the whole session dies. One exception: the same client (IP and User-Agent) presenting it again
 * within REFRESH_REUSE_GRACE seconds is a second tab racing the first; that request is refused
 * and the session lives on. A replay from any other client is theft at once.
 */
export async function refresh(deps: Deps, refreshToken: string): Promise<Issued> {
  const { db, kv, config } = deps;
  if (!REFRESH_TOKEN_FORMAT.test(refreshToken)) throw deadRefreshToken();
  const now = new Date();
  const oldHash = await hashRefreshToken(refreshToken);
  const nextToken = newRefreshToken();
  const fingerprint = await clientFingerprint(deps);
  const rotated = await rotateRefreshToken(db, { oldHash, newHash: await hashRefreshToken(nextToken), now, accessExpiresAt: accessExpiry(config, now), rotatedBy: fingerprint });

  if (!rotated) {
    const used = await findRotated(db, oldHash);
    const racingTab = used && used.rotatedBy === fingerprint && now.getTime() - used.rotatedAt.getTime() <= config.REFRESH_REUSE_GRACE * 1000;
    if (used && !racingTab) {
      const revoked = await revokeSession(db, { id: used.sessionId }, now);
      await revokeSessions(kv, revoked);
      await audit(deps, "refresh_reuse_detected", { session_id: used.sessionId, user_id: revoked[0]?.userId ?? null });
    } else if (used) {
      await audit(deps, "refresh_race", { session_id: used.sessionId });
    }
    throw deadRefreshToken();
  }

  const { session, user } = rotated;
  const access = await signAccessToken(config, { userId: user.id, username: user.username, roles: user.roles, sessionId: session.id });
  return {
    access_token: access.token,
    refresh_token: nextToken,
    token_type: "Bearer",
    expires_in: access.expiresIn,
    session_expires_at: session.expiresAt,
  };
}

/** Kills this access token (its jti, in KV) and its session (D1, and its sid in KV). */
export async function logout(deps: Deps, claims: AccessClaims) {
  const revoked = await revokeSession(deps.db, { id: claims.sid, userId: claims.sub }, new Date());
  await Promise.all([revokeToken(deps.kv, claims.jti, claims.exp), revokeSessions(deps.kv, revoked)]);
  await audit(deps, "logout", { user_id: claims.sub, session_id: claims.sid });
}

/** Logout by refresh token alone (cookie mode, when the access token is gone or expired). */
export async function logoutByRefreshToken(deps: Deps, refreshToken: string) {
  if (!REFRESH_TOKEN_FORMAT.test(refreshToken)) throw deadRefreshToken();
  const revoked = await revokeSession(deps.db, { refreshTokenHash: await hashRefreshToken(refreshToken) }, new Date());
  if (!revoked[0]) throw deadRefreshToken();
  await revokeSessions(deps.kv, revoked);
  await audit(deps, "logout", { user_id: revoked[0].userId, session_id: revoked[0].id });
}

/** Every session of the user dies, and with each its access tokens (one sid key per session). */
export async function logoutAll(deps: Deps, claims: AccessClaims) {
  const revoked = await revokeUserSessions(deps.db, claims.sub, new Date());
  await Promise.all([revokeToken(deps.kv, claims.jti, claims.exp), revokeSessions(deps.kv, revoked)]);
  await audit(deps, "logout_all", { user_id: claims.sub, sessions_revoked: revoked.length });
  return revoked.length;
}

export interface PasswordChange {
  current_password: string;
  new_password: string;
}

/** Checks the current password, stores the new hash and kills every other session of the user. */
export async function changePassword(deps: Deps, claims: AccessClaims, input: PasswordChange) {
  const { db, kv, config } = deps;
  const options = passwordOptions(config);
  if (input.new_password.normalize("NFC") === input.current_password.normalize("NFC")) {
    throw new ApiError("validation_failed", undefined, { new_password: "must differ from the current password" });
  }
  const user = await findUserById(db, claims.sub);
  if (!user) throw new ApiError("invalid_token", "The user behind this token no longer exists");
  // The current password is guessable here too (by whoever holds the access token): the same lock.
  const now = new Date();
  const attempt = await beginPasswordAttempt(deps, user.id, now);
  if (!(await verifyPassword(input.current_password, user.passwordHash, options))) {
    await audit(deps, "password_change_failed", { user_id: user.id });
    await auditIfLocked(deps, user.id, attempt);
    throw new ApiError("invalid_credentials", "The current password is wrong");
  }
  const newHash = await hashPassword(input.new_password, options);
  const [, revoked] = await db.batch([
    updatePasswordHash(db, user.id, newHash, now),
    revokeUserSessions(db, user.id, now, claims.sid),
    clearFailedLogins(db, user.id),
  ]);
  await revokeSessions(kv, revoked);
  await audit(deps, "password_changed", { user_id: user.id, sessions_revoked: revoked.length });
  return revoked.length;
}

export async function listSessions(deps: Deps, claims: AccessClaims) {
  const rows = await listLiveSessions(deps.db, claims.sub, new Date());
  return rows.map((s) => ({
    id: s.id,
    created_at: s.createdAt.toISOString(),
    last_used_at: s.lastUsedAt.toISOString(),
    expires_at: s.expiresAt.toISOString(),
    user_agent: s.userAgent,
    current: s.id === claims.sid,
  }));
}

/** Revokes one of the caller's own sessions; another user's id or an unknown one is not_found. */
export async function revokeOwnSession(deps: Deps, claims: AccessClaims, sessionId: string) {
  const revoked = await revokeSession(deps.db, { id: sessionId, userId: claims.sub }, new Date());
  if (!revoked[0]) throw new ApiError("not_found", "No such live session");
  await revokeSessions(deps.kv, revoked);
  await audit(deps, "session_revoked", { user_id: claims.sub, session_id: sessionId });
}
