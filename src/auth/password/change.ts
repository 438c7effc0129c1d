import { audit } from "../../audit";
import { endLinks } from "../../db/account-tokens";
import { batch } from "../../db/batch";
import { endCheck } from "../../db/password-checks";
import { isSessionLive, revokeUserSessions } from "../../db/sessions";
import { epochState, passwordIs, replacePassword } from "../../db/users";
import type { Deps } from "../../deps";
import { publishEpoch } from "../core/epochs";
import { Refusal, sessionEnded } from "../core/errors";
import { checkNewPassword, type PasswordVerdict } from "../core/password-policy";
import { hashPassword, passwordOptions, verifyPassword } from "../core/passwords";
import { beginStepUp, proveStepUp, type StepUpAsk, type StepUpInput } from "../core/step-up";
import { hasPassword, usernameOf } from "../core/ways-in";
import { securityNotice } from "../mail/notices";

/** Changing the password from a signed-in session. Knows nothing of HTTP. */

export interface PasswordChange extends StepUpInput {
  current_password: string;
  new_password: string;
}

/**
 * After the step-up (auth/core/ways-in.ts change_password: the current password, and a code while TOTP is
 * on; wrong ones count against this session's own budget, never the account lock), checks the new password against the
 * policy (auth/core/password-policy.ts), stores the new hash and kills every other session of the
 * user. Returns how many sessions it ended, and the policy's warning if any.
 */
export async function changePassword(deps: Deps, ask: StepUpAsk<"change_password">, input: PasswordChange): Promise<{ revoked: number } & PasswordVerdict> {
  const { db, config } = deps;
  const { claims } = ask;
  const options = passwordOptions(config);
  if (input.new_password.normalize("NFC") === input.current_password.normalize("NFC")) {
    throw new Refusal("validation_failed", undefined, { new_password: "must differ from the current password" });
  }
  const now = new Date();
  const started = await beginStepUp(deps, ask, now);
  const { user, check } = started;
  if (!hasPassword(user)) {
    await endCheck(db, check);
    throw new Refusal("password_not_set"); // a social sign-up sets its first password by a mailed link
  }
  // This session made the latest change: mirror it into KV again (a retry after a failed KV write
  // completes the revocation, whatever this request turns out to be). If this token predates that
  // change and the new password is the one stored, this is that request again, its answer lost:
  // answer as it would have.
  if (user.epochKeptSession === claims.sid) {
    const repeated = claims.epoch < user.sessionEpoch && (await verifyPassword(input.new_password, user.passwordHash, options));
    const { epoch } = await batch(db, { epoch: epochState(db, user.id), checkEnded: repeated ? endCheck(db, check) : undefined });
    if (epoch[0]) await publishEpoch(deps, user.id, epoch[0], now);
    if (repeated) return { revoked: 0 };
  }
  // The policy before the step-up spends anything (a TOTP code) and before any write; the check just
  // opened for this session ends with the refusal.
  const verdict = await checkNewPassword(config, input.new_password, { username: usernameOf(user), email: user.email }, deps.requestId).catch(
    async (err: unknown) => {
      await endCheck(db, check);
      throw err;
    },
  );
  const proof = await proveStepUp(deps, started, input, now);

  const newHash = await hashPassword(input.new_password, options);
  const changed = passwordIs(db, user.id, newHash);
  const { replaced, revoked, epoch } = await batch(db, {
    // Only if the password is still the one checked (of two concurrent changes, one wins) and this
    // session is still live (a logout-all that landed meanwhile stands).
    replaced: replacePassword(db, proof.userId, user.passwordVersion, newHash, now, claims.sid),
    revoked: revokeUserSessions(db, user.id, now, claims.sid, changed),
    // A pending email change (maybe a hijacker's), a reset link or a "this was not me" link does not
    // outlive the new password: none of them can then act on the account the owner just secured.
    linksEnded: endLinks(db, user.id, ["change_email", "reset_password", "revoke_way_in"], now, changed),
    epoch: epochState(db, user.id),
  });
  const state = epoch[0];
  if (!replaced[0] || !state) {
    if (!(await isSessionLive(db, claims.sid, now))) throw sessionEnded();
    throw new Refusal("invalid_credentials", "The password was changed by another request meanwhile");
  }
  await publishEpoch(deps, user.id, state, now);
  await audit(deps, "password_changed", { user_id: user.id, session_id: claims.sid, sessions_revoked: revoked.length });
  securityNotice(deps, user, "The password of your account was changed");
  return { revoked: revoked.length, ...verdict };
}
