import { OpenAPIHono } from "@hono/zod-openapi";
import type { ZodType } from "zod";
import type { AppEnv } from "../env";
import { validationHook } from "../middleware/validate";
import { errorSchema } from "../schemas";

/**
 * What every route file uses to declare its routes for the OpenAPI document (GET /openapi.json):
 * the app factory with the shared validation hook, the error shape, and response helpers.
 */

/** A sub-app whose routes validate through the shared hook and appear in the document. */
export const openApiApp = () => new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

export const BEARER = [{ bearerAuth: [] }];
export const REFRESH_COOKIE_AUTH = [{ refreshCookie: [] }];

const retryAfter = { "Retry-After": { schema: { type: "integer" as const }, description: "seconds to wait before trying again" } };
const challenge = { "WWW-Authenticate": { schema: { type: "string" as const }, description: 'on invalid_token: the RFC 6750 challenge, e.g. Bearer realm="edge-auth-api", error="invalid_token"' } };
export const setCookie = {
  "Set-Cookie": { schema: { type: "string" as const }, description: "cookie mode: refresh_token=...; HttpOnly; Secure; SameSite; Path=/refresh (and again for /logout)" },
};

const ERROR_TEXT: Record<number, string> = {
  400: "invalid_request (malformed JSON or headers) or validation_failed (with fields)",
  401: "invalid_token, invalid_credentials, invalid_mfa_code or invalid_challenge",
  403: "forbidden (or registration_closed on /register)",
  404: "not_found",
  409: "a conflict with the account's state: username_taken, email_taken, mfa_already_enabled, mfa_not_enabled or last_admin",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "rate_limited",
  500: "internal_error",
  503: "service_unavailable: retry after Retry-After (the database was busy, or a revocation is completed by repeating it)",
};

/** The error answers a route can give, all in the contract's error shape (500 and 503 on every route). */
export function errors(...statuses: (keyof typeof ERROR_TEXT)[]) {
  return Object.fromEntries(
    [...statuses, 500 as const, 503 as const].map((status) => [
      status,
      {
        description: ERROR_TEXT[status]!,
        content: { "application/json": { schema: errorSchema } },
        ...(status === 401 ? { headers: challenge } : status === 429 || status === 503 ? { headers: retryAfter } : {}),
      },
    ]),
  );
}

/** A JSON answer. */
export const json = <T extends ZodType>(schema: T, description: string, headers?: Record<string, { schema: { type: "string" | "integer" }; description: string }>) => ({
  description,
  content: { "application/json": { schema } },
  ...(headers ? { headers } : {}),
});

/** A JSON request body. */
export const body = <T extends ZodType>(schema: T, required = true) => ({ body: { content: { "application/json": { schema } }, required } });
