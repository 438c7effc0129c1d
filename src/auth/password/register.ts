import { ConfigError } from "../../config";
import { uniqueViolation } from "../../db/client";
import type { User } from "../../db/schema";
import { findTaken } from "../../db/users";
import type { Deps } from "../../deps";
import { log } from "../../log";
import { firstSession } from "../core/decision";
import { Refusal } from "../core/errors";
import { insertAccount, newUserRow } from "../core/new-account";
import { checkNewPassword, type PasswordVerdict } from "../core/password-policy";
import { hashPassword, passwordOptions } from "../core/passwords";
import { type Issued, issue } from "../core/sign-in";
import { NO_USERNAME } from "../core/ways-in";
import { requestEmailVerification } from "../mail/verification";

/** Sign-up. Knows nothing of HTTP. */

export interface RegisterInput {
  /** Optional: an account without one signs in by its address (NO_USERNAME is stored). */
  username?: string;
  email?: string;
  password: string;
}

/**
 * Creates the user and, unless the service wants the address verified first (REQUIRE_VERIFIED_EMAIL:
 * then no session until it is), its first session; mails a verification link to an address given.
 */
export async function register(deps: Deps, input: RegisterInput): Promise<{ user: User; issued?: Issued } & PasswordVerdict> {
  const { db, config } = deps;
  const email = input.email?.toLowerCase();
  const verifyFirst = config.REQUIRE_VERIFIED_EMAIL === "on";
  // A service that confirms addresses cannot let an account without one in: it could never sign in.
  if (verifyFirst && !email) throw new Refusal("validation_failed", undefined, { email: "is required: this service confirms every address before sign-in" });
  // Cheap pre-check so a taken name does not cost a hash; the unique indexes settle races.
  // Something besides the password to sign in with (the schema asks the same).
  if (!input.username && !email) throw new Refusal("validation_failed", undefined, { email: "is required without a username" });
  const username = input.username ?? NO_USERNAME;
  const taken = await findTaken(db, username, email);
  if (taken.username) throw new Refusal("username_taken");
  if (taken.email) throw new Refusal("email_taken");
  // The password policy before any write (and after the cheap lookups: a taken name costs no range query).
  const verdict = await checkNewPassword(config, input.password, { username: input.username || null, email: email ?? null }, deps.requestId);

  const now = new Date();
  const id = crypto.randomUUID();
  // Sign-up asks the sign-in decision: a first session now, or none until the address is verified.
  const first = await firstSession(deps, id, { kind: "password" }, null, now);
  const user = newUserRow({
    id,
    username,
    email: email ?? null,
    passwordHash: await hashPassword(input.password, passwordOptions(config)),
    emailVerifiedAt: null,
    // Verify first: an account that never proves its address is removed by the cron (src/cron.ts).
    verifyBy: verifyFirst ? new Date(now.getTime() + config.UNVERIFIED_ACCOUNT_DAYS * 86_400_000) : null,
    setBy: first?.row.id ?? null,
    now,
  });
  const registered = { user_id: user.id, session_id: first?.row.id ?? null };
  try {
    await insertAccount(deps, user, first, registered, now);
  } catch (err) {
    const index = uniqueViolation(err);
    if (index?.includes("username")) throw new Refusal("username_taken");
    if (index?.includes("email")) throw new Refusal("email_taken");
    throw err;
  }
  // The account exists now: a problem with the verification mail must not turn that into an error.
  if (email) {
    await requestEmailVerification(deps, user).catch((err: Error) => {
      if (err instanceof ConfigError) log("config_invalid", { request_id: deps.requestId, problems: err.problems }, "error");
      else log("verification_mail_failed", { request_id: deps.requestId, user_id: user.id, message: err.message }, "error");
    });
  }
  return { user, issued: first && (await issue(deps, { ...user, epoch: 0 }, first.row, now, first.refreshToken)), ...verdict };
}
