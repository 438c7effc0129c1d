import * as oauth from "oauth4webapi";
import type { ProviderConfig } from "../../../config";
import { appleClientSecret } from "../../core/tokens";
import { openIdProfile, text } from "../claims";
import { discover } from "../protocol";
import { openIdKind } from "./openid";

/**
 * Apple: posts its answer (form_post, a cross-site POST), signs its client secret per exchange (a
 * JWT with the team's .p8 key, which is the secret in OAUTH_CLIENT_SECRETS), sends the name only
 * once (in the posted form), and documents email_verified as a boolean or a string ("true" or
 * "false"): for Apple alone the string "true" vouches too.
 */
export const apple = openIdKind<Extract<ProviderConfig, { kind: "apple" }>>({
  label: "Apple",
  scopes: ["openid", "name", "email"],
  postsBack: true,
  maxAge: "if_given", // max_age is not among its documented parameters; an auth_time given is checked
  server: () => discover("https://appleid.apple.com"),
  authorizationParams: (flow) => ({ nonce: flow.nonce, response_mode: "form_post" }),
  clientAuth: async (p, secret, now) =>
    oauth.ClientSecretPost(await appleClientSecret({ teamId: p.team_id, keyId: p.key_id, clientId: p.client_id, pkcs8: secret }, now)),
  person: (issuer, subject, claims, x) => {
    const profile = openIdProfile(issuer, subject, claims, claims.email_verified === true || claims.email_verified === "true");
    return { ...profile, name: profile.name ?? nameOf(x.params.get("user")) };
  },
});

/** The name in Apple's posted `user` field (JSON), the first time only. */
function nameOf(user: string | null): string | null {
  try {
    const n = user ? (JSON.parse(user) as { name?: { firstName?: string; lastName?: string } }).name : undefined;
    return text([n?.firstName, n?.lastName].filter(Boolean).join(" "));
  } catch {
    return null;
  }
}
