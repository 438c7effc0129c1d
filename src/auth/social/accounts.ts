import { auditRow, logEvent } from "../../audit";
import { batch } from "../../db/batch";
import { uniqueViolation } from "../../db/client";
import { findForProfile, insertIdentity, takenUsernames } from "../../db/identities";
import type { User } from "../../db/schema";
import { insertUser } from "../../db/users";
import type { Deps } from "../../deps";
import { randomBytes, toBase64Url } from "../../encoding";
import { signUpVerdict } from "../core/decision";
import { Refusal } from "../core/errors";
import { newUserRow } from "../core/new-account";
import { NO_PASSWORD } from "../core/ways-in";
import type { Profile } from "./providers";

// Which account a social sign-in lands in (auth/social/flow.ts): the identity's own, or a new one.

/**
 * The account a provider's answer signs in to: the identity's own (whether it may sign in is the
 * decision's to say: auth/core/decision.ts); else a new account, where sign-up is open. Never an existing account found by its address (verified or not): that is
 * `account_exists` (its owner signs in and links the provider; a person who does not own it resets
 * its password by mail). Joining by address would hand whoever controls that address at a provider
 * everything the account's creator set up (its password, sessions, factors).
 */
export async function accountFor(deps: Deps, providerId: string, profile: Profile, now: Date): Promise<{ user: User; identityId: string }> {
  const { db, config } = deps;
  const found = await findForProfile(db, profile.issuer, profile.subject, profile.email);
  if (found.linked) return { user: found.linked.user, identityId: found.linked.identity.id };
  if (found.byAddress) throw new Refusal("account_exists");
  const identity = {
    id: crypto.randomUUID(),
    provider: providerId,
    issuer: profile.issuer,
    subject: profile.subject,
    email: profile.email,
    emailVerified: profile.emailVerified,
    createdAt: now,
  };
  if (config.REGISTRATION === "closed") throw new Refusal("registration_closed");
  const email = profile.emailVerified ? profile.email : null; // an address nobody vouches for is not copied
  // Sign-up asks the sign-in decision: an account it would refuse (no address where one is needed) is not made.
  const decided = signUpVerdict(config, { kind: "social" }, email ? now : null);
  if ("refuse" in decided) throw new Refusal(decided.refuse, "The provider did not vouch for an address, and this service needs one");
  const user = await newAccount(deps, profile, email, now);
  const registered = { user_id: user.id, provider: providerId };
  try {
    await batch(db, {
      user: insertUser(db, user),
      identity: insertIdentity(db, { ...identity, userId: user.id }),
      audited: auditRow(deps, "register", registered),
    });
  } catch (err) {
    const index = uniqueViolation(err);
    if (!index) throw err;
    // Another callback for the same person won the race, or the address was taken meanwhile.
    const again = await findForProfile(db, profile.issuer, profile.subject, profile.email);
    if (again.linked) return { user: again.linked.user, identityId: again.linked.identity.id };
    if (again.byAddress) throw new Refusal("account_exists");
    throw err;
  }
  logEvent(deps, "register", registered);
  return { user, identityId: identity.id };
}

/** A new account without a password: a username from the provider's hints, free regardless of case. */
async function newAccount(deps: Deps, profile: Profile, email: string | null, now: Date): Promise<User> {
  const hint = profile.username ?? profile.email?.split("@")[0] ?? profile.name ?? "user";
  let stem = hint
    .normalize("NFKD")
    .replace(/[^A-Za-z0-9_]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, 24);
  if (stem.length < 3) stem = `user${stem}`;
  const tail = () =>
    toBase64Url(randomBytes(4))
      .replace(/[^A-Za-z0-9]/g, "")
      .slice(0, 5)
      .toLowerCase();
  const candidates = [stem, `${stem}_${tail()}`, `${stem}_${tail()}`];
  const taken = await takenUsernames(deps.db, candidates);
  const username = candidates.find((c) => !taken.has(c.toLowerCase())) ?? `${stem}_${tail()}${tail()}`;
  return newUserRow({
    id: crypto.randomUUID(),
    username,
    email,
    passwordHash: NO_PASSWORD,
    emailVerifiedAt: email ? now : null,
    verifyBy: null,
    setBy: null,
    now,
  });
}
