import type { Config } from "../config";
import { uniqueViolation, type Db } from "../db/client";
import { insertSession } from "../db/sessions";
import type { User } from "../db/schema";
import { findTaken, findUserByLogin, insertUser, updatePasswordHash } from "../db/users";
import { sha256Base64Url, randomBytes, toBase64Url } from "../encoding";
import { ApiError } from "../errors";
import { dummyVerify, hashPassword, needsRehash, verifyPassword, type PasswordOptions } from "./passwords";
import { signAccessToken } from "./tokens";

/**
 * The account flows over the db, password and token modules. Knows nothing of HTTP:
 * failures are ApiErrors with contract codes, rendered by errors.ts.
 */

export interface Deps {
  db: Db;
  config: Config;
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

/** Builds a session row for a user plus the token pair that goes with it. */
async function openSession({ config }: Deps, user: User, userAgent: string | undefined, now: Date) {
  const refreshToken = newRefreshToken();
  const row = {
    id: crypto.randomUUID(),
    userId: user.id,
    refreshTokenHash: await hashRefreshToken(refreshToken),
    userAgent: userAgent?.slice(0, 256) ?? null,
    createdAt: now,
    lastUsedAt: now,
    expiresAt: new Date(now.getTime() + config.REFRESH_TOKEN_TTL * 1000),
  };
  const access = await signAccessToken(config, { userId: user.id, username: user.username, roles: user.roles, sessionId: row.id });
  const tokens: TokenPair = { access_token: access.token, refresh_token: refreshToken, token_type: "Bearer", expires_in: access.expiresIn };
  return { row, tokens };
}

export interface RegisterInput {
  username: string;
  email?: string;
  password: string;
}

export async function register(deps: Deps, input: RegisterInput, userAgent?: string) {
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
    createdAt: now,
    updatedAt: now,
  };
  const session = await openSession(deps, user, userAgent, now);
  try {
    // One batch = one implicit transaction: no user without its first session.
    await db.batch([insertUser(db, user), insertSession(db, session.row)]);
  } catch (err) {
    const index = uniqueViolation(err);
    if (index?.includes("username")) throw new ApiError("username_taken");
    if (index?.includes("email")) throw new ApiError("email_taken");
    throw err;
  }
  return { user: toPublicUser(user), ...session.tokens };
}

export interface LoginInput {
  username: string; // username or email
  password: string;
}

export async function login(deps: Deps, input: LoginInput, userAgent?: string) {
  const { db, config } = deps;
  const options = passwordOptions(config);
  const user = await findUserByLogin(db, input.username);
  // Same work and the same error whether the user is unknown or the password wrong.
  const ok = user ? await verifyPassword(input.password, user.passwordHash, options) : await dummyVerify(input.password, options);
  if (!user || !ok) throw new ApiError("invalid_credentials");

  const now = new Date();
  const session = await openSession(deps, user, userAgent, now);
  if (needsRehash(user.passwordHash, options)) {
    const rehashed = await hashPassword(input.password, options);
    await db.batch([insertSession(db, session.row), updatePasswordHash(db, user.id, rehashed, now)]);
  } else {
    await insertSession(db, session.row);
  }
  return { user: toPublicUser(user), ...session.tokens };
}
