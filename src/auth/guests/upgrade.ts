import { auditRowIf, logEvent } from "../../audit";
import { ConfigError } from "../../config";
import { type BatchResults, batch } from "../../db/batch";
import { uniqueViolation } from "../../db/client";
import { reissueAfterUpgrade, takenByOthers, upgradedAt, upgradeGuest } from "../../db/guests";
import type { User } from "../../db/schema";
import { findUserById } from "../../db/users";
import type { Deps } from "../../deps";
import { log } from "../../log";
import { Refusal, sessionEnded, userGone } from "../core/errors";
import { checkNewPassword } from "../core/password-policy";
import { hashPassword, passwordOptions } from "../core/passwords";
import { accessUntil, issue } from "../core/sign-in";
import type { AccessClaims } from "../core/tokens";
import { requestEmailVerification } from "../mail/verification";

/**
 * A guest becomes a member (POST /guests/upgrade): an address and a password (and a username if it
 * wants one) on the same account, so its id and everything stored under it stay. The guest's own
 * session is the proof (auth/core/ways-in.ts GUEST_SESSION_SUFFICES: it has nothing else). One
 * conditional statement writes it all, only while the account is still a guest: of two upgrades at
 * once one wins, the other is told already_member. A taken address or name writes nothing (the guest
 * stays a guest, signed in): never a merge into the account that has it. The address is unverified
 * and gets the usual verification mail. Knows nothing of HTTP.
 */

export interface UpgradeInput {
  email: string;
  password: string;
  username?: string;
}

const alreadyMember = () => new Refusal("already_member", "This account is a member already: there is no guest to upgrade");

export async function upgrade(deps: Deps, claims: AccessClaims, input: UpgradeInput) {
  const { db, config } = deps;
  const email = input.email.toLowerCase();
  const username = input.username ?? null;
  const before = await findUserById(db, claims.sub);
  if (!before) throw userGone();
  if (!before.isGuest) throw alreadyMember();
  // Closed after the guest started (config refuses GUESTS on with it closed): an upgrade is a sign-up.
  if (config.REGISTRATION === "closed") throw new Refusal("registration_closed");
  // Cheap pre-check so a taken address does not cost a hash; the unique indexes settle races.
  const taken = await takenByOthers(db, email, username);
  if (taken.email) throw new Refusal("email_taken");
  if (taken.username) throw new Refusal("username_taken");
  const verdict = await checkNewPassword(config, input.password, { username, email });
  const passwordHash = await hashPassword(input.password, passwordOptions(config));
  const now = new Date();
  const fields = { user_id: claims.sub, session_id: claims.sid, with: "password" };
  // The member's row, the session's next access token read back, the audit row: one batch, one transaction.
  const statements = {
    member: upgradeGuest(db, { userId: claims.sub, sessionId: claims.sid, email, username, passwordHash, now }),
    ...reissueAfterUpgrade(db, {
      userId: claims.sub,
      sessionId: claims.sid,
      now,
      accessExpiresAt: accessUntil(config, now),
      requireVerified: config.REQUIRE_VERIFIED_EMAIL === "on",
    }),
    audited: auditRowIf(deps, "guest_upgraded", fields, upgradedAt(db, claims.sub, now)),
  };
  let done: BatchResults<typeof statements>;
  try {
    done = await batch(db, statements);
  } catch (err) {
    // The unique indexes refused the address or the name: the whole batch wrote nothing.
    const index = uniqueViolation(err);
    if (index?.includes("username")) throw new Refusal("username_taken");
    if (index?.includes("email")) throw new Refusal("email_taken");
    throw err;
  }
  const [user, session, owner] = [done.member[0], done.session[0], done.owner[0]];
  if (!user) {
    const after = await findUserById(db, claims.sub);
    if (after && !after.isGuest) throw alreadyMember(); // another upgrade (or a passkey, a provider) won
    throw sessionEnded();
  }
  logEvent(deps, "guest_upgraded", fields);
  await mailVerification(deps, user);
  // The session's next access token, without `guest`: never later than the one presented (a longer life is the refresh token's to give).
  const presentedEnd = new Date(claims.exp * 1000);
  const issued =
    session && owner ? await issue(deps, owner, { ...session, expiresAt: session.expiresAt < presentedEnd ? session.expiresAt : presentedEnd }, now, "") : null;
  return { user, issued, warning: verdict.warning };
}

/** The account is a member now: a problem with the verification mail must not turn that into an error. */
async function mailVerification(deps: Deps, user: User) {
  await requestEmailVerification(deps, user).catch((err: Error) => {
    if (err instanceof ConfigError) log("config_invalid", { request_id: deps.requestId, problems: err.problems }, "error");
    else log("verification_mail_failed", { request_id: deps.requestId, user_id: user.id, message: err.message }, "error");
  });
}
