import * as oauth from "oauth4webapi";
import type { ProviderConfig } from "../../../config";
import { type Profile, ProviderFailure, text } from "../claims";
import { type ProviderKind, reach } from "../protocol";

type GitHub = Extract<ProviderConfig, { kind: "github" }>;

/**
 * GitHub (or GitHub Enterprise Server: `server` and `api`): OAuth 2 only, no ID token and no nonce;
 * the client secret is posted. The profile is read from its API: the user, and an address only if
 * it is the primary one and verified (/user/emails).
 */
export const github: ProviderKind<GitHub> = {
  label: "GitHub",
  scopes: ["read:user", "user:email"],
  postsBack: false,
  maxAge: "none", // OAuth 2 without max_age or prompt=login: nothing to ask (docs/social-sign-in.md)
  server: async (p) => ({
    issuer: p.server,
    authorization_endpoint: `${p.server}/login/oauth/authorize`,
    token_endpoint: `${p.server}/login/oauth/access_token`,
  }),
  authorizationParams: () => ({}),
  clientAuth: async (_p, secret) => oauth.ClientSecretPost(secret),
  profile: async ({ p, as, client, response }) => profileOf(p, await oauth.processAuthorizationCodeResponse(as, client, response)),
};

async function profileOf(p: GitHub, tokens: oauth.TokenEndpointResponse): Promise<Profile> {
  const get = async <T>(path: string) => {
    const res = await reach(`${p.api}${path}`, {
      headers: { authorization: `Bearer ${tokens.access_token}`, accept: "application/vnd.github+json", "user-agent": "edge-auth" },
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new ProviderFailure("provider_error", `GitHub ${path} answered ${res.status}`);
    return (await res.json()) as T;
  };
  const user = await get<{ id?: number; login?: string; name?: string | null }>("/user");
  if (typeof user.id !== "number") throw new ProviderFailure("invalid_response", "GitHub user without an id");
  const emails = await get<{ email: string; primary: boolean; verified: boolean }[]>("/user/emails");
  const primary = Array.isArray(emails) ? emails.find((e) => e.primary) : undefined;
  return {
    issuer: p.server,
    subject: String(user.id),
    email: primary?.email.toLowerCase() ?? null,
    emailVerified: primary?.verified === true,
    username: text(user.login),
    name: text(user.name),
  };
}
