import { audit } from "../../audit";
import { uniqueViolation } from "../../db/client";
import type { User } from "../../db/schema";
import { setUsername } from "../../db/users";
import type { Deps } from "../../deps";
import { Refusal, userGone } from "../core/errors";
import type { AccessClaims } from "../core/tokens";

/**
 * PATCH /me {username}: an account without a username (signed up by mail or with only an address)
 * adds one, or an account changes its own. Taken regardless of case: 409 username_taken (the partial
 * unique index settles a race). The next access token carries it; the ones issued before keep the
 * old claim until they expire. Knows nothing of HTTP.
 */
export async function changeUsername(deps: Deps, claims: AccessClaims, username: string): Promise<User> {
  let row: User | undefined;
  try {
    [row] = await setUsername(deps.db, claims.sub, username, new Date());
  } catch (err) {
    if (uniqueViolation(err)?.includes("username")) throw new Refusal("username_taken");
    throw err;
  }
  if (!row) throw userGone();
  await audit(deps, "username_changed", { user_id: row.id, session_id: claims.sid });
  return row;
}
