import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { Refusal, RevocationIncomplete, TooManyAttempts } from "./auth/core/errors";
import { OAuthRefusal } from "./auth/oauth-server/errors";
import { ConfigError } from "./config";
import { overloaded } from "./db/client";
import type { AppEnv } from "./env";
import { log } from "./log";
import type { ErrorCode } from "./response-schemas";

export type { ErrorCode };

/** The one code -> status table. Codes are part of the public contract (docs/api.md, and /openapi.json). */
export const STATUS = {
  invalid_request: 400,
  validation_failed: 400,
  invalid_credentials: 401,
  invalid_token: 401,
  forbidden: 403,
  registration_closed: 403,
  account_disabled: 403,
  email_unverified: 403,
  invalid_link: 400,
  invalid_mfa_code: 401,
  invalid_challenge: 401,
  passkey_rejected: 400,
  too_many_passkeys: 409,
  scope_not_allowed: 403,
  too_many_api_keys: 409,
  not_found: 404,
  method_not_allowed: 405,
  username_taken: 409,
  email_taken: 409,
  mfa_already_enabled: 409,
  mfa_not_enabled: 409,
  last_admin: 409,
  last_way_in: 409,
  account_exists: 409,
  account_proof_required: 401,
  identity_in_use: 409,
  password_not_set: 409,
  reauthentication_required: 401,
  invalid_grant: 400,
  unknown_provider: 404,
  provider_unavailable: 503,
  key_not_ready: 409,
  keys_not_rotating: 409,
  org_slug_taken: 409,
  last_owner: 409,
  too_many_organizations: 409,
  already_member: 409,
  too_many_invitations: 409,
  invitation_wrong_account: 403,
  invalid_mail_code: 401,
  password_too_common: 400,
  password_contains_context: 400,
  password_breached: 400,
  turnstile_required: 400,
  turnstile_failed: 403,
  turnstile_unavailable: 503,
  guest_not_allowed: 403,
  mfa_enrolment_required: 403,
  mfa_required: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal_error: 500,
  service_unavailable: 503,
} as const satisfies Record<ErrorCode, ContentfulStatusCode>;

const DEFAULT_MESSAGE: Record<ErrorCode, string> = {
  invalid_request: "The request could not be read",
  validation_failed: "Some fields are invalid",
  invalid_credentials: "Invalid username or password",
  invalid_token: "Invalid or expired token",
  forbidden: "You do not have permission to do this",
  registration_closed: "Sign-up is closed on this service",
  account_disabled: "This account is disabled",
  email_unverified: "Verify your email address first: follow the link we sent",
  invalid_link: "This link is invalid, used, replaced by a newer one, or expired",
  invalid_mfa_code: "That code is wrong, expired or already used",
  invalid_challenge: "This challenge is unknown, used or expired: start again",
  passkey_rejected: "The passkey could not be verified",
  too_many_passkeys: "This account has as many passkeys as it may: remove one first",
  scope_not_allowed: "A key's scopes are never wider than what its creator may do",
  too_many_api_keys: "This owner has as many live API keys as it may: revoke one first",
  not_found: "Not found",
  method_not_allowed: "Method not allowed",
  username_taken: "That username is taken",
  email_taken: "That email is already registered",
  mfa_already_enabled: "Two-step sign-in is already on: disable it first",
  mfa_not_enabled: "Two-step sign-in is not on for this account",
  last_admin: "At least one active admin must remain",
  last_way_in: "This is the account's last way to sign in: add another first",
  account_exists:
    "An account with this address exists. If it is yours, sign in to it and link this provider from your security settings; if it is not, reset its password by mail",
  account_proof_required:
    "This link confirms an address for an account: send that account's password with it, or open it where you are signed in to the account. Not your account? Reset its password by mail instead: that hands it to you and ends everything its creator set up",
  identity_in_use: "That provider account is linked to another account here",
  password_not_set: "This account has no password: POST /password/forgot mails a link that sets one",
  reauthentication_required: "Sign in again, then retry: this account proves changes by a recent sign-in",
  invalid_grant: "This sign-in code is unknown, used or expired: sign in again",
  unknown_provider: "No sign-in provider by that id is configured",
  provider_unavailable: "Sign-in with this provider is unavailable: its configuration on this service is incomplete or invalid (the operator's log says why)",
  key_not_ready: "The next signing key has not been published long enough to sign",
  keys_not_rotating: "This deployment signs with JWT_PRIVATE_KEY (SIGNING_KEYS=secret): rotate that secret by hand",
  org_slug_taken: "That organization slug is taken",
  last_owner: "An organization keeps at least one owner: make another member owner first",
  too_many_organizations: "You belong to as many organizations as you may (100): leave one first",
  already_member: "That account is already a member of this organization",
  too_many_invitations: "This organization has as many pending invitations as it may (100): revoke one first",
  invitation_wrong_account:
    "This invitation is for another address: sign in to the account whose verified address received it (or sign up with that address and confirm it), then open the link again",
  invalid_mail_code: "That code is wrong, expired, used, or from an earlier message: use the newest one, or ask for another",
  password_too_common: "That password is among the most common ones: choose another",
  password_contains_context: "That password contains your username, your address or this service's name: choose another",
  password_breached: "That password appears in known data breaches: choose another",
  turnstile_required: "Complete the bot check first (send its token as cf-turnstile-response)",
  turnstile_failed: "The bot check failed or expired: complete it again",
  turnstile_unavailable: "The bot check could not be verified right now: try again shortly",
  guest_not_allowed: "Guests cannot do this: add an address, a password, a passkey or a provider to your account first",
  mfa_enrolment_required: "This account must set up a second factor before anything else: enrol TOTP or a passkey",
  mfa_required: "This account must keep a second factor: add another (TOTP or a passkey) before removing this one",
  payload_too_large: "The request body is too large",
  unsupported_media_type: "Send the body as application/json",
  rate_limited: "Too many requests, try again later",
  internal_error: "Something went wrong on our side",
  service_unavailable: "The service is temporarily unavailable",
};

/** Every client error is thrown as an ApiError; app.onError renders it. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly fields?: Record<string, string>,
    readonly headers?: Record<string, string>,
  ) {
    super(message ?? DEFAULT_MESSAGE[code]);
    this.name = "ApiError";
  }

  get status(): ContentfulStatusCode {
    return STATUS[this.code];
  }
}

export function errorBody(code: ErrorCode, message?: string, fields?: Record<string, string>) {
  return { error: code, message: message ?? DEFAULT_MESSAGE[code], ...(fields ? { fields } : {}) };
}

// RFC 7235/6750: a 401 carries a challenge. Bearer routes set a precise one; this is the fallback.
const INVALID_TOKEN_CHALLENGE = 'Bearer realm="edge-auth-api", error="invalid_token"';

function render(c: Context, err: ApiError): Response {
  const headers = err.code === "invalid_token" ? { "WWW-Authenticate": INVALID_TOKEN_CHALLENGE, ...err.headers } : err.headers;
  return c.json(errorBody(err.code, err.message, err.fields), err.status, headers);
}

/**
 * What of an unexpected error may go to the log: Drizzle's query errors end with the bound
 * parameters (hashes, emails), so everything from "params:" on is cut, in the stack too.
 */
function loggable(err: Error) {
  const clean = (text: string | undefined) => text?.replace(/\bparams:[\s\S]*?(?=\n\s+at |$)/, "params: [redacted]");
  const cause = err.cause instanceof Error ? `${err.cause.name}: ${clean(err.cause.message)}` : undefined;
  return { name: err.name, message: clean(err.message), cause, stack: clean(err.stack) };
}

// Hono's own middleware (body limit, validator, bearer auth) throws HTTPException.
const CODE_FOR_STATUS: Partial<Record<number, ErrorCode>> = {
  400: "invalid_request",
  401: "invalid_token",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "rate_limited",
};

export const onError: ErrorHandler<AppEnv> = (err, c) => {
  if (err instanceof ApiError) return render(c, err);
  if (err instanceof OAuthRefusal) return protocolError(c, err);
  // The auth flows' failures (auth/core/errors.ts): their code's status, and Retry-After where they say when.
  if (err instanceof TooManyAttempts) return render(c, new ApiError("rate_limited", err.message, undefined, { "Retry-After": String(err.retryAfter) }));
  if (err instanceof Refusal) return render(c, new ApiError(err.code, err.explanation, err.fields));
  if (err instanceof HTTPException) {
    const res = err.getResponse();
    // A response Hono middleware already shaped as JSON (bearer auth) passes through.
    if (res.headers.get("content-type")?.startsWith("application/json")) return res;
    const code = CODE_FOR_STATUS[err.status];
    if (code) return render(c, new ApiError(code));
  }
  const requestId = c.get("requestId");
  if (err instanceof RevocationIncomplete) {
    // Recorded in D1, not yet in KV (a revocation, the key ring's mirror): never a 200 while the token still passes. A retry completes it.
    log("revocation_incomplete", { request_id: requestId, ...loggable(err) }, "error");
    return render(c, new ApiError("service_unavailable", "The change could not be completed everywhere; retry the request", undefined, { "Retry-After": "1" }));
  }
  if (overloaded(err)) {
    // The database's queue is full (its capacity, see docs/performance.md): the query did not run; retry soon.
    log("d1_overloaded", { request_id: requestId }, "error");
    return render(c, new ApiError("service_unavailable", "The service is busy; retry the request", undefined, { "Retry-After": "1" }));
  }
  if (err instanceof ConfigError) {
    log("config_invalid", { request_id: requestId, problems: err.problems }, "error");
  } else {
    log("unhandled_error", { request_id: requestId, ...loggable(err) }, "error");
  }
  return render(c, new ApiError("internal_error", `Something went wrong on our side (request ${requestId})`));
};

/** 404 for unknown paths, 405 (with Allow) for known paths asked with another method. */
export function notFoundHandler(routes: { method: string; path: string }[]): NotFoundHandler<AppEnv> {
  const patterns = routes
    .filter((r) => r.method !== "ALL" && !r.path.includes("*"))
    .map((r) => ({
      method: r.method,
      re: new RegExp(`^${r.path.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/:[^/]+/g, "[^/]+")}/?$`),
    }));
  return (c) => {
    const allowed = [...new Set(patterns.filter((p) => p.re.test(c.req.path)).map((p) => p.method))];
    if (allowed.length > 0) {
      if (allowed.includes("GET")) allowed.push("HEAD");
      allowed.push("OPTIONS");
      return render(c, new ApiError("method_not_allowed", `Use ${allowed.join(", ")} for this path`, undefined, { Allow: allowed.join(", ") }));
    }
    return render(c, new ApiError("not_found", "No such route"));
  };
}

/**
 * The authorization server's refusals in the protocol's words (RFC 6749 5.2): `error` and
 * `error_description`, which OAuth clients read, and `message` (the same words) like every other error.
 */
function protocolError(c: Context, refusal: OAuthRefusal): Response {
  const quoted = refusal.description.replace(/["\\]/g, "'");
  // RFC 6750 3: a refused bearer token names the scheme and the error; RFC 6749 5.2: so does a refused Basic client.
  if (refusal.error === "invalid_token" || refusal.error === "insufficient_scope")
    c.header("WWW-Authenticate", `Bearer error="${refusal.error}", error_description="${quoted}"`);
  else if (refusal.error === "invalid_client" && c.req.header("authorization")?.startsWith("Basic ")) c.header("WWW-Authenticate", 'Basic realm="oauth"');
  if (refusal.status === 429) c.header("Retry-After", "60");
  return c.json({ error: refusal.error, error_description: refusal.description, message: refusal.description }, refusal.status);
}
