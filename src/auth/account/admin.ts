import { audit } from "../../audit";
import { endLinks } from "../../db/account-tokens";
import { adminRefusal, listUsers, type UserCursor, updateByAdmin } from "../../db/admins";
import { listAuditEvents } from "../../db/audit";
import { batch } from "../../db/batch";
import { userWithPasskeyCount } from "../../db/passkeys";
import type { User } from "../../db/schema";
import { latestSessionEnd, revokeUserSessions } from "../../db/sessions";
import { endSessionEpoch, epochState, updatedAt } from "../../db/users";
import type { Deps } from "../../deps";
import { publishEpoch } from "../core/epochs";
import { Refusal } from "../core/errors";
import { revokeAllBefore } from "../core/revocations";
import { type StepUpAsk, type StepUpInput, stepUp } from "../core/step-up";
import type { AccessClaims } from "../core/tokens";

/** What admins do (routes/admin.ts guards the whole area): the lists, one user, a change to a user. Knows nothing of HTTP. */

/** Every user, newest first, a page at a time (from a read replica: a list to look at). */
export const userPage = (deps: Deps, limit: number, after?: UserCursor) => listUsers(deps.replica(), limit, after);

/** Security events, newest first, optionally one user's (from a read replica). */
export const auditPage = (deps: Deps, limit: number, filter: { userId?: string; beforeId?: number }) => listAuditEvents(deps.replica(), limit, filter);

/** One user and how many passkeys they have. */
export async function userForAdmin(deps: Deps, userId: string) {
  const found = await userWithPasskeyCount(deps.db, userId);
  if (!found) throw new Refusal("not_found", "No such user");
  return found;
}

/**
 * An admin changes a user's roles (after the step-up change_roles) or disables them: every session of the user ends at once. The
 * statement itself refuses when the acting admin is no longer an active admin, or when the change
 * would leave no active admin (two admins disabling each other at once: one of them wins).
 */
export async function updateUserByAdmin(
  deps: Deps,
  ask: StepUpAsk<"change_roles">,
  userId: string,
  change: { roles?: string[]; disabled?: boolean },
  check: StepUpInput,
): Promise<User> {
  const { db } = deps;
  const admin = ask.claims;
  if (userId === admin.sub) {
    if (change.disabled) throw new Refusal("validation_failed", undefined, { disabled: "you cannot disable your own account" });
    if (change.roles && !change.roles.includes("admin")) throw new Refusal("validation_failed", undefined, { roles: "you cannot remove your own admin role" });
  }
  // Granting or removing roles takes the acting admin's step-up; disabling alone only takes access away.
  const proof = change.roles ? await stepUp(deps, ask, check) : undefined;
  const now = new Date();
  const changed = updatedAt(db, userId, now);
  const done = await batch(db, {
    updated: updateByAdmin(db, userId, proof?.userId ?? admin.sub, change, now),
    revoked: revokeUserSessions(db, userId, now, undefined, changed),
    linksEnded: endLinks(db, userId, ["reset_password", "change_email", "verify_email"], now, changed),
    epoch: epochState(db, userId),
  });
  const updated = done.updated[0];
  const state = done.epoch[0];
  if (!updated) {
    const why = await adminRefusal(db, userId, admin.sub);
    await audit(deps, "admin_refused", { user_id: userId, by: admin.sub, reason: why });
    if (why === "not_found") throw new Refusal("not_found", "No such user");
    if (why === "forbidden") throw new Refusal("forbidden", "Your admin role or account is no longer active");
    if (why === "guest") throw new Refusal("guest_not_allowed", "A guest is given no role: it becomes a member first");
    throw new Refusal("last_admin");
  }
  // Audited before KV: a 503 below still leaves the record of what was done and by whom.
  await audit(deps, "admin_user_updated", { user_id: userId, by: admin.sub, roles: change.roles?.join(","), disabled: change.disabled });
  if (state) await publishEpoch(deps, userId, state, now); // a failure is a 503: the admin repeats the change
  return updated;
}

/**
 * An admin ends every session of one user (and the apps' grants), leaving the account as it is: a new
 * session epoch in D1 and KV, as the user's own "sign out everywhere" does. No step-up: it grants
 * nothing, and taking access away stays quick. The admin's own id ends the admin's sessions, this one too.
 */
export async function endUserSessions(deps: Deps, admin: AccessClaims, userId: string): Promise<number> {
  const { db } = deps;
  const now = new Date();
  const { epochEnded, revoked, epoch } = await batch(db, {
    epochEnded: endSessionEpoch(db, userId),
    revoked: revokeUserSessions(db, userId, now),
    epoch: epochState(db, userId),
  });
  const state = epoch[0];
  if (!epochEnded[0] || !state) throw new Refusal("not_found", "No such user");
  await audit(deps, "admin_sessions_ended", { user_id: userId, by: admin.sub, sessions_revoked: revoked.length });
  await publishEpoch(deps, userId, state, now); // a failure is a 503: the admin repeats it
  return revoked.length;
}

/**
 * An admin ends every session of every user, the admin's own included: one KV entry (auth/core/
 * revocations.ts cutoff) that refuses every access token of a sign-in before it, and that the refresh's
 * statement compares with each session's sign-in time; no row is written per session, however many
 * there are. It lasts until the last session it ends would have expired anyway. Returns the cut-off:
 * a sign-in at or after it lives (whole seconds: one within the same second ends too).
 */
export async function endAllSessions(deps: Deps, admin: AccessClaims): Promise<Date> {
  const now = Date.now();
  const before = Math.ceil(now / 1000);
  const lastEnd = (await latestSessionEnd(deps.db)) ?? 0;
  // Audited first: a failed KV write is a 503, and the record of who asked stays.
  await audit(deps, "all_sessions_ended", { user_id: admin.sub, session_id: admin.sid, before });
  await revokeAllBefore(deps.kv, before, new Date(Math.max(lastEnd, now)));
  return new Date(before * 1000);
}
