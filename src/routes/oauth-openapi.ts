import { z } from "@hono/zod-openapi";
import type { ZodType } from "zod";
import { OAuthRefusal } from "../auth/oauth-server/errors";
import { type ErrorCode, errorSchema } from "../response-schemas";
import { oauthErrorSchema } from "../response-schemas-oauth";
import { errors } from "./openapi";

/**
 * What the authorization server's protocol routes declare for the OpenAPI document: form bodies,
 * and refusals in the protocol's shape (errors.ts protocolError) beside the API's own.
 */

/** A protocol route's validation failure is the protocol's invalid_request, naming the first field at fault. */
export function protocolHook(result: { success: true } | { success: false; error: { issues: readonly z.core.$ZodIssue[] } }): undefined {
  if (result.success) return undefined;
  const issue = result.error.issues[0];
  throw new OAuthRefusal("invalid_request", issue ? `${issue.path.join(".") || "request"}: ${issue.message}` : "The request is malformed");
}

/** A form-encoded request body (RFC 6749's token and revocation requests). */
export const form = <T extends ZodType>(schema: T) => ({ body: { content: { "application/x-www-form-urlencoded": { schema } }, required: true as const } });

const eitherShape = z.union([oauthErrorSchema, errorSchema]);

/**
 * The answers a protocol route refuses with: 400 and 401 in the protocol's shape (or the API's, for a
 * body that cannot be read), and the API's own codes (`also`: rate_limited, payload_too_large...).
 */
export function protocolErrors(also: ErrorCode[], statuses: (400 | 401 | 403 | 429)[] = [400, 401]) {
  const own = errors(...also) as Record<number, unknown>;
  for (const status of statuses) {
    own[status] = {
      description: "the protocol's error (RFC 6749 5.2): error, error_description",
      content: { "application/json": { schema: eitherShape } },
      ...(status === 401 ? { headers: { "WWW-Authenticate": { schema: { type: "string" as const }, description: "the scheme that failed" } } } : {}),
      ...(status === 429 ? { headers: { "Retry-After": { schema: { type: "integer" as const }, description: "seconds to wait before trying again" } } } : {}),
    };
  }
  return own;
}
