import type { z } from "zod";
import type * as Client from "../client/types";
import type * as Res from "../src/response-schemas";
import type * as Req from "../src/schemas";

/**
 * A compile-time proof (npm run typecheck) that the client's types, printed from the schemas by
 * scripts/client.mjs, are the types the schemas themselves infer: each pair must be identical, or
 * tsc fails here.
 */

/** True only for identical types (not merely assignable: an extra optional field, or `?: T` against `?: T | undefined`, differ). */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Out<S extends z.ZodType> = z.output<S>;
type In<S extends z.ZodType> = z.input<S>;

export const sameTypes: [
  Same<Client.ErrorCode, Res.ErrorCode>,
  Same<Client.ErrorBody, Out<typeof Res.errorSchema>>,
  Same<Client.User, Out<typeof Res.userSchema>>,
  Same<Client.Tokens, Out<typeof Res.tokensSchema>>,
  Same<Client.SignedInBody, Out<typeof Res.signedInSchema>>,
  Same<Client.MfaChallengeBody, Out<typeof Res.mfaChallengeSchema>>,
  Same<Client.Me, Out<typeof Res.meWithFactorsSchema>>,
  Same<Client.Factors, Out<typeof Res.factorsSchema>>,
  Same<Client.Security, Out<typeof Res.securitySchema>>,
  Same<Client.Message, Out<typeof Res.messageSchema>>,
  Same<Client.Protected, Out<typeof Res.protectedSchema>>,
  Same<Client.SessionsPage, Out<typeof Res.sessionsPageSchema>>,
  Same<Client.SessionsRevoked, Out<typeof Res.revokedCountSchema>>,
  Same<Client.TotpSetup, Out<typeof Res.totpSetupSchema>>,
  Same<Client.RecoveryCodes, Out<typeof Res.recoveryCodesSchema>>,
  Same<Client.Passkey, Out<typeof Res.passkeySchema>>,
  Same<Client.Passkeys, Out<typeof Res.passkeysSchema>>,
  Same<Client.ResetDone, Out<typeof Res.resetDoneSchema>>,
  Same<Client.WayInRevoked, Out<typeof Res.revokedWayInSchema>>,
  Same<Client.Providers, Out<typeof Res.providersSchema>>,
  Same<Client.IdentityLinked, Out<typeof Res.linkedSchema>>,
  Same<Client.RegisterRequest, In<typeof Req.registerSchema>>,
  Same<Client.LoginRequest, In<typeof Req.loginSchema>>,
  Same<Client.LoginMfaRequest, In<typeof Req.loginMfaSchema>>,
  Same<Client.PasswordChangeRequest, In<typeof Req.passwordChangeSchema>>,
] = [true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true];
