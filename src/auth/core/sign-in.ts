import type { SQL } from "drizzle-orm";
import { type AuditFields, audit, auditRowIfSession, logEvent, type SecurityEvent } from "../../audit";
import type { Config } from "../../config";
import { type BatchResults, batch, joined, type Statements } from "../../db/batch";
import { cancelHold } from "../../db/recovery-holds";
import type { User } from "../../db/schema";
import { reissueAccess } from "../../db/session-rotation";
import { insertSessionIf, revokeBeyondCap, sessionExists } from "../../db/sessions";
import { type Room, whileRoom } from "../../db/sign-in-room";
import type { Deps } from "../../deps";
import { sha256Base64Url } from "../../encoding";
import { announceCancel } from "../mail/recovery-holds";
import { retryAfterAnswer } from "./epochs";
import { enrolmentOnly } from "./mfa-policy";
import { hashRefreshToken, newRefreshToken } from "./refresh-tokens";
import { afterReplaced, endReplaced } from "./replaced-session";
import { revokeSessions, sessionLimits } from "./revocations";
import { activeKeys, type KeyStores } from "./signing-keys";
import { signAccessToken } from "./tokens";

/**
 * The sign-in core that every way in ends with (a password, a second step, a passkey, sign-up, a
 * refresh): the session row, and the access token signed for it. Whether a sign-in gets one is
 * auth/core/decision.ts's to say. Knows nothing of HTTP. Each flow
 * reads the clock once: the same `now` goes into the rows and the signed token.
 */

/** What register, login and refresh hand out. */
export interface Issued {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  sessionExpiresAt: Date; // when the session (and its cookie) ends
}

export const accessUntil = (config: Config, now: Date) => new Date(now.getTime() + config.ACCESS_TOKEN_TTL * 1000);
const earlier = (a: Date, b: Date) => (a < b ? a : b);

/** Who is asking, as far as a retry window needs to know (the same IP and User-Agent): never stored in the clear. */
export const clientFingerprint = (deps: Deps) => sha256Base64Url(`${deps.ip ?? ""}|${deps.userAgent ?? ""}`);

interface TokenOwner {
  id: string;
  username: string;
  roles: string[];
  epoch: number;
  emailVerifiedAt: Date | null;
  // REQUIRE_MFA (auth/core/mfa-policy.ts): a guest is exempt; an owner without a second factor gets an
  // enrolment-only token. Absent: no second factor (a new account), so the policy fails closed.
  isGuest?: boolean;
  secondFactor?: boolean;
  // The session's active organization while the owner is its member (db/session-rotation.ts ownerClaims).
  orgId?: string | null;
  orgSlug?: string | null;
  orgRole?: string | null;
}

/** What a session carries into each of its access tokens. */
interface IssuingSession {
  id: string;
  expiresAt: Date;
  amr: string[];
  authTime: Date;
}

/** Signs the access token for a session; its `exp` never passes the session's end. */
export async function issue(keys: KeyStores, owner: TokenOwner, session: IssuingSession, now: Date, refreshToken: string): Promise<Issued> {
  const { config } = keys;
  const access = await signAccessToken(config, await activeKeys(keys), {
    userId: owner.id,
    username: owner.username,
    roles: owner.roles,
    sessionId: session.id,
    epoch: owner.epoch,
    emailVerified: owner.emailVerifiedAt !== null,
    authTime: session.authTime,
    amr: session.amr,
    mfaEnrolment: enrolmentOnly(config, owner),
    guest: owner.isGuest === true,
    org: owner.orgId && owner.orgSlug && owner.orgRole ? { id: owner.orgId, slug: owner.orgSlug, role: owner.orgRole } : undefined,
    now,
    expiresAt: earlier(accessUntil(config, now), session.expiresAt),
  });
  return { accessToken: access.token, refreshToken, expiresIn: access.expiresIn, sessionExpiresAt: session.expiresAt };
}

/** A new session row for a user (signed in as `amr` says, now), and the refresh token only its hash is stored for. */
export async function newSession(deps: Deps, userId: string, now: Date, amr: string[], given?: { id: string; refreshToken?: string }) {
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

export interface OpenSession<B extends Statements, A extends Statements> {
  /** How the sign-in was proved (auth/core/ways-in.ts amrOf). */
  amr: string[];
  /** The caller's statements that run before the session is written (`condition` may depend on them), and after. */
  before?: B;
  after?: A;
  /** The session is written only if this holds on the user's row: what the decision rested on (auth/core/decision.ts). */
  condition: SQL;
  /** Added to the login_succeeded audit row, e.g. how the user signed in. */
  detail?: Record<string, string>;
  /** The session's id (a later statement's condition names it), and its refresh token where the caller must be able to answer a retry (auth/totp/mfa.ts). */
  session?: { id: string; refreshToken?: string };
  /** The account's room as the sign-in's first read saw it (db/sign-in-room.ts): the statements it lets the batch leave out. */
  seen?: Room;
  /** Events of this sign-in recorded in login_succeeded's statement (only if the session was written). */
  alsoAudited?: { event: SecurityEvent; fields: AuditFields }[];
}

/**
 * Opens the session a sign-in's decision (auth/core/decision.ts) ends with, in one round trip: the
 * caller's first statements, the session (only if its conditions hold; it returns the epoch for the
 * token), the per-user cap, the audit row (only if the session was written), with a second factor
 * the end of a held recovery, in cookie mode the end of the session whose cookie it replaces, and the
 * caller's last statements. `issued` is absent when the session was not written; `results` holds
 * every statement's result by name (the caller's under the names it gave).
 *
 * With `seen`, the cap's eviction and the hold's cancel are left out where the first read showed they
 * would change nothing, and the insert holds only while that is still so (db/sign-in-room.ts). An
 * insert refused then runs the batch again in full, without the caller's first statements (they ran:
 * the caller's condition must rest on what they did, not on running again) and with their results.
 * So every caller's last statements that change anything must do so only if the session was written.
 */
export async function openSession<B extends Statements = Record<never, never>, A extends Statements = Record<never, never>>(
  deps: Deps,
  user: User,
  now: Date,
  opts: OpenSession<B, A>,
) {
  const { row, refreshToken } = await newSession(deps, user.id, now, opts.amr, opts.session);
  const succeeded = { user_id: user.id, session_id: row.id, ...opts.detail };
  const first = await runSessionBatch(deps, user.id, row, now, opts, succeeded, opts.seen);
  const { results, mine } =
    first.mine.openedSession[0] || !first.guarded
      ? first
      : await runSessionBatch(deps, user.id, row, now, { ...opts, before: undefined }, succeeded).then((full) => ({
          ...full,
          results: { ...first.results, ...full.results },
        }));
  const opened: { issued?: Issued; results: BatchResults<B & A> } = { results: results as unknown as BatchResults<B & A> };
  const session = mine.openedSession[0];
  if (!session) return opened;
  logEvent(deps, "login_succeeded", succeeded);
  for (const a of opts.alsoAudited ?? []) logEvent(deps, a.event, a.fields);
  const cancelled = mine.holdCancelled?.[0];
  if (cancelled) await announceCancel(deps, user.id, row.id, cancelled);
  await endEvicted(deps, mine.evictedSessions ?? []);
  await afterReplaced(deps, mine.replacedEnded);
  opened.issued = await issue(deps, { ...user, epoch: session.epoch, secondFactor: session.secondFactor }, row, now, refreshToken);
  return opened;
}

/** One run of a sign-in's batch; `seen`: leave out what the first read showed has nothing to do (openSession). */
async function runSessionBatch<B extends Statements, A extends Statements>(
  deps: Deps,
  userId: string,
  row: Awaited<ReturnType<typeof newSession>>["row"],
  now: Date,
  opts: OpenSession<B, A>,
  succeeded: AuditFields & { session_id: string },
  seen?: Room,
) {
  const { db, config } = deps;
  const cap = config.MAX_SESSIONS_PER_USER;
  const roomLeft = seen !== undefined && seen.liveSessions + 1 <= cap; // after this one, nothing beyond the cap
  const mfa = opts.amr.includes("mfa");
  const noHoldSeen = mfa && seen !== undefined && !seen.held;
  const core = {
    openedSession: insertSessionIf(db, row, whileRoom(opts.condition, now, { underCap: roomLeft ? cap : undefined, noHold: noHoldSeen })),
    evictedSessions: roomLeft ? undefined : revokeBeyondCap(db, userId, now, cap),
    loginAudited: auditRowIfSession(deps, "login_succeeded", succeeded, opts.alsoAudited), // only if the session was written
    // A sign-in with a second factor cancels what a mailbox alone asked to lower (auth/mail/recovery-holds.ts).
    holdCancelled: mfa && !noHoldSeen ? cancelHold(db, userId, sessionExists(db, row.id)) : undefined,
    // Cookie mode: the session of the cookie this sign-in replaces ends with it.
    ...(await endReplaced(deps, row.id, now)),
  };
  const results = await batch(db, joined(opts.before ?? ({} as B), core, opts.after ?? ({} as A))); // a name given twice throws
  const mine = results as unknown as BatchResults<typeof core>; // by name: the generic intersection hides them from the checker
  return { results, mine, guarded: roomLeft || noHoldSeen };
}

/**
 * A sign-in's answer again, for a client retrying after it was lost: a new access token for the
 * session that sign-in opened, with the same refresh token, while that is still the session's
 * current one (not refreshed since). Null otherwise.
 */
export async function reissueSignIn(deps: Deps, sessionId: string, refreshToken: string): Promise<Issued | null> {
  const now = new Date();
  const currentHash = await hashRefreshToken(refreshToken);
  const again = await reissueAccess(deps.db, {
    ...(await sessionLimits(deps, now)),
    sessionId,
    currentHash,
    now,
    accessExpiresAt: accessUntil(deps.config, now),
    requireVerified: deps.config.REQUIRE_VERIFIED_EMAIL === "on",
    clientId: null,
  });
  return again ? issue(deps, again.user, again.session, now, refreshToken) : null;
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
