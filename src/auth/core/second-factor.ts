import { logEvent } from "../../audit";
import { ConfigError } from "../../config";
import type { Proof } from "../../db/mfa";
import type { User } from "../../db/schema";
import type { Deps } from "../../deps";
import { sha256Base64Url } from "../../encoding";
import { Refusal } from "./errors";
import { derive, open } from "./secrets";
import { toBase32, verifyTotp } from "./totp";

/**
 * What a TOTP code or a recovery code proves, for every flow that asks for one (the login's second
 * step, step-up, a reset): checked here, spent by the caller's conditional statement (db/mfa.ts).
 */

export const RECOVERY_CODES = 10;
/** 15 bytes: 120 bits, 24 base32 characters (ASVS 6.5.2 asks 112 or more of a code stored as a plain hash). */
const RECOVERY_CODE_BYTES = 15;

/** What a request offers as its second factor: a code, or a recovery code (schemas.ts checks). */
export interface SecondFactor {
  code?: string;
  recovery_code?: string;
}

export const offersSecondFactor = (offered: SecondFactor) => offered.code !== undefined || offered.recovery_code !== undefined;

/**
 * The recovery codes of a TOTP setup: 120 bits each, as six groups of four base32 characters
 * ("k7qp-2m4x-zhta-vw3e-r5dn-q6ua"). Derived from the sealed secret (random per setup: its secret and
 * its IV come from crypto.getRandomValues) under the MFA key, so a retried enable can be shown the
 * same codes again; only their hashes are stored. Codes of 80 bits (v1, before issue 31) already
 * handed out still work until used, or until TOTP is set up again (docs/second-factors.md).
 */
export async function recoveryCodesFor(deps: Deps, sealedSecret: string): Promise<string[]> {
  const codes = [];
  for (let i = 0; i < RECOVERY_CODES; i++) {
    const bits = (await derive(deps.config.MFA_ENCRYPTION_KEY, "edge-auth-api recovery codes v2", `${sealedSecret}|${i}`)).slice(0, RECOVERY_CODE_BYTES);
    codes.push(toBase32(bits).toLowerCase().match(/.{4}/g)!.join("-"));
  }
  return codes;
}

/** Case, spaces and dashes do not matter when typing one back. */
export const recoveryHash = (code: string) => sha256Base64Url(code.toLowerCase().replace(/[\s-]/g, ""));

/** The user's TOTP secret. One that does not open means the key was replaced: the operator's problem, said so in the log. */
export async function openSecret(deps: Deps, userId: string, sealed: string) {
  try {
    return await open(deps.config, userId, sealed);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(["MFA_ENCRYPTION_KEY: a stored TOTP secret does not open with it (was the key replaced?)"]);
  }
}

/** The proof `offered` makes for `user` now, or null when it is wrong, already used, or TOTP is off. */
export async function proofOf(deps: Deps, user: User, offered: SecondFactor, now: Date): Promise<Proof | null> {
  if (!user.totpEnabledAt || !user.totpSecret) return null;
  if (offered.code !== undefined) {
    const secret = await openSecret(deps, user.id, user.totpSecret);
    const step = await verifyTotp(secret, offered.code, now, user.totpLastStep);
    return step === null ? null : { step };
  }
  const hash = await recoveryHash(offered.recovery_code ?? "");
  return user.recoveryCodes?.includes(hash) ? { recoveryHash: hash } : null;
}

/**
 * A right code of a step at or before the last one accepted (the code that just turned TOTP on, or
 * one just used to sign in): a person retyping what the app still shows, not a guess. So it costs no
 * attempt: the caller's check is released (`release`), the person is told to wait for the next
 * code, and the log keeps a line (a replayed code someone watched being typed shows there).
 */
export async function refuseJustUsed(
  deps: Deps,
  user: User,
  offered: SecondFactor,
  now: Date,
  at: "login" | "step_up" | "password_reset",
  release: () => Promise<unknown>,
): Promise<void> {
  if (offered.code === undefined || !user.totpEnabledAt || !user.totpSecret) return;
  const secret = await openSecret(deps, user.id, user.totpSecret);
  if ((await verifyTotp(secret, offered.code, now)) === null) return;
  await release();
  logEvent(deps, "mfa_code_reused", { user_id: user.id, at });
  throw new Refusal("invalid_mfa_code", "That code can't be used again: wait for the next code from your app");
}

export const methodOf = (proof: Proof) => ("step" in proof ? ("totp" as const) : ("recovery_code" as const));
