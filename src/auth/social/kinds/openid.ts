import * as oauth from "oauth4webapi";
import type { ProviderConfig } from "../../../config";
import { openIdProfile, type Profile } from "../claims";
import { discover, type Exchange, openIdClaims, type ProviderKind } from "../protocol";

/** What an OpenID kind changes from the defaults (OpenID's scopes, a nonce, client_secret_basic, the standard claims). */
type OpenIdParts<P extends ProviderConfig> = Pick<ProviderKind<P>, "label" | "server"> &
  Partial<Pick<ProviderKind<P>, "scopes" | "postsBack" | "authorizationParams" | "clientAuth" | "maxAge">> & {
    /** The server whose issuer and keys the ID token is checked against (Microsoft: its own tenant's). */
    checkedBy?(x: Exchange<P>): Promise<oauth.AuthorizationServer>;
    /** The profile from the checked claims (ID token and userinfo). */
    person?(issuer: string, subject: string, claims: Record<string, unknown>, x: Exchange<P>): Profile;
  };

/** An OpenID Connect kind: its ID token is checked in full (auth/social/protocol.ts openIdClaims). */
export function openIdKind<P extends ProviderConfig>({ checkedBy, person, ...parts }: OpenIdParts<P>): ProviderKind<P> {
  return {
    scopes: ["openid", "email", "profile"],
    postsBack: false,
    maxAge: "required",
    authorizationParams: (flow) => ({ nonce: flow.nonce }),
    clientAuth: async (_p, secret) => oauth.ClientSecretBasic(secret),
    ...parts,
    async profile(x) {
      const { claims, info } = await openIdClaims(x, checkedBy ? await checkedBy(x) : x.as);
      return person ? person(claims.iss, claims.sub, info, x) : openIdProfile(claims.iss, claims.sub, info);
    },
  };
}

/** Any OpenID Connect issuer with discovery. */
export const oidc = openIdKind<Extract<ProviderConfig, { kind: "oidc" }>>({ label: "OpenID Connect", server: (p) => discover(p.issuer) });

/** Google takes max_age but does not promise auth_time in its ID tokens: one given is checked. */
export const google = openIdKind<Extract<ProviderConfig, { kind: "google" }>>({
  label: "Google",
  maxAge: "if_given",
  server: () => discover("https://accounts.google.com"),
});
