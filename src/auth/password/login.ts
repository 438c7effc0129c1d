import { joined } from "../../db/batch";
import { endCheck } from "../../db/password-checks";
import { rehashPassword } from "../../db/users";
import type { Deps } from "../../deps";
import { decideSignIn, type SignInResult, verdict } from "../core/decision";
import { Refusal } from "../core/errors";
import { auditLock, failPasswordCheck, passPasswordCheck, startLogin } from "../core/lockout";
import { dummyVerify, hashPassword, needsRehash, passwordOptions, verifyPassword } from "../core/passwords";
import { hasPassword } from "../core/ways-in";

/** Sign-in with a username (or address) and password. Knows nothing of HTTP. */

export interface LoginInput {
  username: string; // username or email
  password: string;
}

export async function login(deps: Deps, input: LoginInput): Promise<SignInResult> {
  const { db, config } = deps;
  const options = passwordOptions(config);
  const now = new Date();
  // The account and the start of its password check: one round trip (and the per-account limit).
  const { user, check } = await startLogin(deps, input.username, now, deps.limitAccount);

  // Same work and the same error whether the user is unknown, has no password (social only) or the password is wrong.
  const ok = user && hasPassword(user) ? await verifyPassword(input.password, user.passwordHash, options) : await dummyVerify(input.password, options);
  if (!user || !ok || !check) {
    const lock = await failPasswordCheck(deps, user?.id, check, now); // with its login_failed row
    if (user) await auditLock(deps, user.id, lock);
    throw new Refusal("invalid_credentials");
  }

  // Upgraded only by a login the decision lets through: a refused one pays for no second hash.
  const rehash =
    !("refuse" in verdict(config, user, { kind: "password" })) && (await needsRehash(user.passwordHash, options))
      ? rehashPassword(db, user.id, user.passwordHash, await hashPassword(input.password, options), now)
      : undefined;
  return decideSignIn(deps, user, { kind: "password" }, now, {
    // Refused (told only to someone who knows the password): the check passes.
    refused: passPasswordCheck(deps, user.id, check, now),
    // TOTP on: half a login. The failure count stays (only the second step clears it), so knowing the
    // password does not buy unlimited guesses at the code.
    challenged: { checkEnded: endCheck(db, check), rehash },
    // The account as this login's first read saw it: what the batch may leave out (auth/core/sign-in.ts).
    session: { passwordVersion: user.passwordVersion, seen: user, after: joined(passPasswordCheck(deps, user.id, check, now, undefined, user), { rehash }) },
    // The password changed, or TOTP was turned on, while it was being checked.
    changed: "invalid_credentials",
  });
}
