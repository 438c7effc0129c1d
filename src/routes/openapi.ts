import { OpenAPIHono } from "@hono/zod-openapi";
import type { ZodType } from "zod";
import type { AppEnv } from "../env";
import { STATUS } from "../errors";
import { validationHook } from "../middleware/validate";
import { type ErrorCode, errorSchema } from "../response-schemas";

/**
 * What every route file uses to declare its routes for the OpenAPI document (GET /openapi.json):
 * the app factory with the shared validation hook, the error shape, and response helpers.
 */

/** A sub-app whose routes validate through the shared hook and appear in the document. */
export const openApiApp = () => new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

export const BEARER = [{ bearerAuth: [] }];
export const REFRESH_COOKIE_AUTH = [{ refreshCookie: [] }];

const retryAfter = { "Retry-After": { schema: { type: "integer" as const }, description: "seconds to wait before trying again" } };
const challenge = {
  "WWW-Authenticate": {
    schema: { type: "string" as const },
    description: 'on invalid_token: the RFC 6750 challenge, e.g. Bearer realm="edge-auth-api", error="invalid_token"',
  },
};
export const setCookie = {
  "Set-Cookie": {
    schema: { type: "string" as const },
    description: "cookie mode: refresh_token=...; HttpOnly; Secure; SameSite; Path=/refresh (and again for /logout)",
  },
};

/** A few words beside a code where its answer carries more than the error shape. */
const NOTE: Partial<Record<ErrorCode, string>> = {
  invalid_request: "malformed JSON or headers",
  validation_failed: "with fields",
  rate_limited: "with Retry-After",
  service_unavailable: "retry after Retry-After: the database was busy, or a revocation is completed by repeating it",
};

/** Errors every request body route can answer: a body that is not JSON, too large, or invalid. */
export const BODY_ERRORS: ErrorCode[] = ["invalid_request", "validation_failed", "payload_too_large", "unsupported_media_type"];

/**
 * The error answers a route can give, named by code: each status comes from errors.ts's one table
 * and lists its codes, so the document cannot drift from the code (internal_error and
 * service_unavailable on every route). All in the contract's error shape. A route that takes an access
 * token (it lists invalid_token) refuses an enrolment-only one too (REQUIRE_MFA: middleware/require-auth.ts).
 */
export const errors = (...codes: ErrorCode[]) => errorAnswers(codes.includes("invalid_token") ? [...codes, "mfa_enrolment_required"] : codes);

/** errors() for a route open to an enrolment-only token (requireAuth({ duringEnrolment: true })), or one that takes none (a refresh). */
export const errorsDuringEnrolment = (...codes: ErrorCode[]) => errorAnswers(codes);

function errorAnswers(codes: ErrorCode[]) {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set([...codes, "internal_error" as const, "service_unavailable" as const])) {
    byStatus.set(STATUS[code], [...(byStatus.get(STATUS[code]) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, listed]) => [
      status,
      {
        description: listed.map((code) => (NOTE[code] ? `${code} (${NOTE[code]})` : code)).join(", "),
        content: { "application/json": { schema: errorSchema } },
        ...(status === 401 ? { headers: challenge } : status === 429 || status === 503 ? { headers: retryAfter } : {}),
      },
    ]),
  );
}

/** A JSON answer. */
export const json = <T extends ZodType>(
  schema: T,
  description: string,
  headers?: Record<string, { schema: { type: "string" | "integer" }; description: string }>,
) => ({
  description,
  content: { "application/json": { schema } },
  ...(headers ? { headers } : {}),
});

/** A JSON request body. */
export const body = <T extends ZodType>(schema: T, required = true) => ({ body: { content: { "application/json": { schema } }, required } });
