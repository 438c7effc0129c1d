import { z } from "@hono/zod-openapi";

/** The consent page's answers (routes/oauth-requests.ts, auth/oauth-server/consent.ts): the app-facing JSON of an authorization request. */

export const requestIdParamSchema = z.object({
  id: z
    .string()
    .max(64, "is not a request id")
    .openapi({ param: { name: "id", in: "path" }, description: "the request id from the fragment of the app page (#authorize=...)" }),
});

export const authorizationRequestSchema = z
  .object({
    id: z.string(),
    client: z.object({
      id: z.string(),
      name: z.string(),
      uri: z.string().nullable(),
      verified: z.boolean().openapi({
        description:
          "registered by this deployment (an admin, OAUTH_CLIENTS); false: the app registered itself or is known by its own document, so its name and site are its own claims",
      }),
    }),
    scopes: z
      .array(
        z.object({
          name: z.string(),
          description: z.string().openapi({
            description: "plain words for the consent page; a deployment's own scope as OAUTH_SCOPE_DESCRIPTIONS says, else by its name",
          }),
        }),
      )
      .openapi({ description: "what the app asks for" }),
    lifetime: z
      .object({
        access_token_seconds: z.number().int().openapi({ description: "each access token's lifetime (ACCESS_TOKEN_TTL)" }),
        refresh: z
          .object({
            max_seconds: z.number().int().openapi({ description: "the grant ends at the latest this long after the approval (REFRESH_TOKEN_TTL)" }),
            idle_seconds: z.number().int().openapi({ description: "and sooner when the app goes this long without renewing (REFRESH_IDLE_TTL)" }),
          })
          .nullable()
          .openapi({ description: "null: no refresh token (no offline_access, or the app may not refresh): access ends with the access token" }),
        description: z.string().openapi({ description: "the same in plain words for the consent page" }),
      })
      .openapi({ description: "for how long an approval gives the app access; disconnecting the app ends it at any time" }),
    resource: z.string().nullable().openapi({ description: "the API the tokens are for (RFC 8707); null: only this service's userinfo" }),
    redirect_origin: z.string().openapi({ description: "where the browser goes back to, to show the user" }),
    prompt: z.string().nullable().openapi({ description: "none, login, consent (space separated), as the app asked" }),
    login_required: z
      .boolean()
      .openapi({ description: "the app asks for a newer sign-in (prompt=login, max_age): sign in again first, then open the request with the new session" }),
    consent_remembered: z
      .boolean()
      .openapi({ description: "the user already agreed to all of this for this app (and it did not ask to ask again): the page may approve at once" }),
    expires_at: z.string().openapi({ format: "date-time" }),
  })
  .openapi("AuthorizationRequest");

export const redirectToSchema = z
  .object({
    redirect_to: z.string().openapi({ description: "send the browser here: the app's redirect_uri with code (or error), state and iss" }),
  })
  .openapi("AuthorizationRedirect");
