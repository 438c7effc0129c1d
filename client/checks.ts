import type { LoginMfaRequest } from "./types.js";

// The proofs a sensitive call carries, apart from index.ts so the modules of calls (orgs.ts, keys.ts)
// take them without importing the client that imports them.

type OneOf<T> = { [K in keyof T]-?: Required<Pick<T, K>> & { [O in Exclude<keyof T, K>]?: undefined } }[keyof T];
/** A TOTP code from the authenticator app, or one of the recovery codes: exactly one. */
export type SecondFactor = OneOf<Pick<LoginMfaRequest, "code" | "recovery_code">>;
/**
 * A step-up (the server's table, Security["step_up"]): the password, and while TOTP is on a code or a
 * recovery code. Without the code, the API answers 401 invalid_mfa_code: ask for one and send again.
 */
export type FreshCheck = { current_password?: string } & (SecondFactor | { code?: undefined; recovery_code?: undefined });
