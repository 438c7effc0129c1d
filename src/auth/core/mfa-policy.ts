import type { Config } from "../../config";

/**
 * REQUIRE_MFA (docs/second-factors.md): which accounts must hold a second factor, and what a session
 * of one that holds none may do. Decided from what the token's owner is at signing time (its roles,
 * whether it is a guest, whether it holds TOTP or a passkey: db/users.ts holdsSecondFactor), so a
 * refresh after enrolment carries a full token. Knows nothing of HTTP.
 */

/** Whether REQUIRE_MFA applies to an account with these roles ("all", or one of the listed roles). */
export function mfaRequiredFor(config: Pick<Config, "REQUIRE_MFA">, roles: readonly string[]): boolean {
  const rule = config.REQUIRE_MFA;
  if (rule === "off") return false;
  if (rule === "all") return true;
  const required = rule.slice("roles:".length).split(",");
  return roles.some((r) => required.includes(r));
}

/** What the policy needs of a token's owner. `secondFactor` absent means none (a new account): fails closed. */
export interface MfaSubject {
  roles: string[];
  isGuest?: boolean;
  secondFactor?: boolean;
}

/**
 * A session of this owner may only enrol a second factor (its tokens carry `mfa_enrolment: true`):
 * the policy applies, the account holds none, and it is not a guest (a guest has no password or
 * address to protect yet; upgrading makes it a member, and its next token follows the policy).
 */
export const enrolmentOnly = (config: Pick<Config, "REQUIRE_MFA">, owner: MfaSubject): boolean =>
  !owner.isGuest && !owner.secondFactor && mfaRequiredFor(config, owner.roles);
