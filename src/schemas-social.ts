import { z } from "@hono/zod-openapi";
import { notBoth, stepUpExample, stepUpFields, useCookie } from "./schemas";

/** Request schemas of social sign-in (auth/social/flow.ts, routes/oauth.ts); the shared pieces come from schemas.ts. */

const providerParam = z
  .string()
  .max(32, "is not a provider id")
  .openapi({ param: { name: "provider", in: "path" }, example: "google" });
export const providerParamSchema = z.object({ provider: providerParam });

// Kept in the flow's row (oauth_flows) until the cron drops it: an app page needs no more.
export const RETURN_TO_MAX = 512;
const returnTo = z
  .string()
  .max(RETURN_TO_MAX, `at most ${RETURN_TO_MAX} characters`)
  .optional()
  .openapi({ description: "the app page to come back to: on APP_URL's origin or one of CORS_ORIGINS (default APP_URL)" });

const optionalMatch = (pattern: RegExp, rule: string, description: string) => z.string().regex(pattern, rule).optional().openapi({ description });

export const oauthStartQuerySchema = z.object({
  use_cookie: z
    .enum(["true", "false"])
    .optional()
    .openapi({ description: "true: the session ends up in the refresh cookie (cookie mode); else the app exchanges a one-time code for tokens" }),
  return_to: returnTo,
  link: z.string().max(200, "is not a link request").optional().openapi({ description: "the URL POST /me/identities/{provider}/link answered carries it" }),
  code_challenge: optionalMatch(
    /^[A-Za-z0-9_-]{43}$/,
    "must be the S256 of a code_verifier: 43 base64url characters",
    "PKCE between the app and this API (RFC 7636, S256 only): BASE64URL(SHA-256(code_verifier)) of a secret the app keeps in this tab. Then POST /oauth/exchange needs that code_verifier, and nothing else finishes the sign-in. The typed client's signInWith() sends one.",
  ),
});

export const oauthExchangeSchema = z
  .object({
    code: z.string({ error: "is required" }).min(1, "is required").max(200, "is not a sign-in code"),
    code_verifier: optionalMatch(
      /^[A-Za-z0-9._~-]{43,128}$/,
      "must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
      "the secret whose S256 the sign-in's start was given as code_challenge (required then)",
    ),
    use_cookie: useCookie,
  })
  .openapi("OAuthExchange", { description: "the one-time code the callback put in the app URL's fragment (oauth_code), within a minute" });

export const identityLinkSchema = z
  .object({ ...stepUpFields, return_to: returnTo })
  .refine(...notBoth)
  .openapi("IdentityLink", { description: "the step-up (add_identity), and where the browser comes back to", example: stepUpExample });

export const identityIdSchema = z.object({
  id: z
    .string()
    .max(64, "is not an identity id")
    .openapi({ param: { name: "id", in: "path" } }),
});
