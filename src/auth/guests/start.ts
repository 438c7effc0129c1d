import type { User } from "../../db/schema";
import type { Deps } from "../../deps";
import { firstSession } from "../core/decision";
import { Refusal } from "../core/errors";
import { insertAccount, newUserRow } from "../core/new-account";
import { type Issued, issue } from "../core/sign-in";
import { NO_PASSWORD, NO_USERNAME } from "../core/ways-in";

/**
 * Guests (docs/guests.md): an account with its own id and nothing else (no username, address or
 * password), for trying an app before signing up. Its tokens carry `guest: true` (auth/core/tokens.ts),
 * the members' route groups refuse it (src/middleware/members-only.ts), and the daily cron removes it
 * once idle for GUEST_IDLE_TTL (db/guests.ts). It becomes a member, keeping its id and everything
 * under it, by ./upgrade.ts, or by adding a passkey or linking a provider. Knows nothing of HTTP.
 */

/** A new guest and its first session (the sign-in decision with first factor "guest": amr ["guest"]), in one batch. */
export async function startGuest(deps: Deps): Promise<{ user: User; issued: Issued }> {
  const now = new Date();
  const id = crypto.randomUUID();
  const first = await firstSession(deps, id, { kind: "guest" }, null, now);
  // Config refuses GUESTS=on with REQUIRE_VERIFIED_EMAIL=on (config.ts): the decision opens a guest's session.
  if (!first) throw new Refusal("email_unverified", "This service confirms every address before sign-in: guests are off");
  const user = newUserRow({
    id,
    username: NO_USERNAME,
    email: null,
    passwordHash: NO_PASSWORD,
    emailVerifiedAt: null,
    verifyBy: null,
    setBy: first.row.id,
    now,
    isGuest: true,
  });
  const created = { user_id: id, session_id: first.row.id, guest: true };
  await insertAccount(deps, user, first, created, now);
  return { user, issued: await issue(deps, { ...user, epoch: 0 }, first.row, now, first.refreshToken) };
}
