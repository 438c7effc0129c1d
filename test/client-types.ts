import type { z } from "zod";
import type * as Client from "../client/types";
import type * as Res from "../src/response-schemas";
import type * as Invites from "../src/response-schemas-invitations";
import type * as Keys from "../src/response-schemas-keys";
import type * as OAuth from "../src/response-schemas-oauth";
import type * as Orgs from "../src/response-schemas-orgs";
import type * as Pw from "../src/response-schemas-passwords";
import type * as Req from "../src/schemas";
import type * as GuestsReq from "../src/schemas-guests";
import type * as InvitesReq from "../src/schemas-invitations";
import type * as KeysReq from "../src/schemas-keys";
import type * as MailReq from "../src/schemas-mail";
import type * as OrgsReq from "../src/schemas-orgs";

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
  Same<Client.PasswordChanged, Out<typeof Pw.passwordChangedSchema>>,
  Same<Client.TurnstileConfig, Out<typeof Pw.turnstileSchema>>,
  Same<Client.Registered, Out<typeof Pw.registeredUnverifiedSchema>>,
  Same<Client.TotpSetup, Out<typeof Res.totpSetupSchema>>,
  Same<Client.RecoveryCodes, Out<typeof Res.recoveryCodesSchema>>,
  Same<Client.Passkey, Out<typeof Res.passkeySchema>>,
  Same<Client.Passkeys, Out<typeof Res.passkeysSchema>>,
  Same<Client.ResetDone, Out<typeof Pw.resetDoneSchema>>,
  Same<Client.WayInRevoked, Out<typeof Res.revokedWayInSchema>>,
  Same<Client.Providers, Out<typeof Res.providersSchema>>,
  Same<Client.IdentityLinked, Out<typeof Res.linkedSchema>>,
  Same<Client.RegisterRequest, In<typeof Req.registerSchema>>,
  Same<Client.LoginRequest, In<typeof Req.loginSchema>>,
  Same<Client.LoginMfaRequest, In<typeof Req.loginMfaSchema>>,
  Same<Client.PasswordChangeRequest, In<typeof Req.passwordChangeSchema>>,
  Same<Client.Organization, Out<typeof Orgs.organizationSchema>>,
  Same<Client.OrganizationBody, Out<typeof Orgs.organizationBodySchema>>,
  Same<Client.Organizations, Out<typeof Orgs.organizationsSchema>>,
  Same<Client.OrganizationSwitched, Out<typeof Orgs.switchedSchema>>,
  Same<Client.Member, Out<typeof Orgs.memberSchema>>,
  Same<Client.MemberBody, Out<typeof Orgs.memberBodySchema>>,
  Same<Client.MembersPage, Out<typeof Orgs.membersPageSchema>>,
  Same<Client.AdminOrganizationsPage, Out<typeof Orgs.adminOrganizationsPageSchema>>,
  Same<Client.OrganizationCreateRequest, In<typeof OrgsReq.orgCreateSchema>>,
  Same<Client.OrganizationUpdateRequest, In<typeof OrgsReq.orgPatchSchema>>,
  Same<Client.Invitation, Out<typeof Invites.invitationSchema>>,
  Same<Client.InvitationBody, Out<typeof Invites.invitationCreatedSchema>>,
  Same<Client.Invitations, Out<typeof Invites.invitationsSchema>>,
  Same<Client.InvitationCreateRequest, In<typeof InvitesReq.invitationCreateSchema>>,
  Same<Client.ApiKey, Out<typeof Keys.apiKeySchema>>,
  Same<Client.ApiKeyCreated, Out<typeof Keys.createdKeySchema>>,
  Same<Client.ApiKeys, Out<typeof Keys.keysSchema>>,
  Same<Client.ApiKeyCreateRequest, In<typeof KeysReq.keyCreateSchema>>,
  Same<Client.TokenResponse, Out<typeof OAuth.tokenResponseSchema>>,
  Same<Client.GuestUpgradeRequest, In<typeof GuestsReq.guestUpgradeSchema>>,
  Same<Client.UserBody, Out<typeof Res.meSchema>>,
  Same<Client.ProfilePatchRequest, In<typeof Req.profilePatchSchema>>,
  Same<Client.MailSignInStartRequest, In<typeof MailReq.mailSignInStartSchema>>,
  Same<Client.MailSignInLinkRequest, In<typeof MailReq.mailSignInLinkSchema>>,
  Same<Client.MailSignInCodeRequest, In<typeof MailReq.mailSignInCodeSchema>>,
] = [
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
];
