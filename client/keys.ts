import type { FreshCheck } from "./checks.js";
import { type Answer, read, unreachable } from "./errors.js";
import type { ApiKey, ApiKeyCreated, ApiKeyCreateRequest, ApiKeys, Message, TokenResponse } from "./types.js";

/**
 * API keys (docs/api-keys.md): for the team's own scripts and services. A key belongs to a user or to
 * an organization; its secret (`eak_...`) is shown once, at creation, and stored by the API only as a
 * hash. A script does not send the key to your backends: it exchanges it at the API's token endpoint
 * (RFC 8693) for a short-lived access token, which every backend verifies like any other (the JWKS).
 */

export type { ApiKey, ApiKeyCreated };
/** The token endpoint's answer to an exchange (RFC 8693 2.2.1): an access token, never a refresh token. */
export type TokenExchanged = Pick<TokenResponse, "access_token" | "token_type" | "expires_in" | "scope"> & {
  issued_token_type: NonNullable<TokenResponse["issued_token_type"]>;
};
export type ApiKeyInput = ApiKeyCreateRequest & FreshCheck;

type Call = <T>(method: string, path: string, body?: unknown) => Promise<T>;

export function keyCalls(authed: Call) {
  return {
    /**
     * A new key, after the step-up (the password, and a code while TOTP is on): `{ key, secret }`, the
     * secret shown this once. With `org_id`, the organization's (keys:manage); its scopes never wider
     * than the caller's (403 scope_not_allowed).
     */
    createApiKey: (input: ApiKeyInput) => authed<ApiKeyCreated>("POST", "/keys", input),
    /** The caller's own keys, or (with `orgId`) the organization's: never their secrets, only their first characters (`start`). */
    apiKeys: (orgId?: string) => authed<ApiKeys>("GET", `/keys${orgId ? `?org_id=${encodeURIComponent(orgId)}` : ""}`).then((r) => r.keys),
    /** Refused at its next exchange (docs/api-keys.md says how soon); tokens already issued live out their short lifetime. */
    revokeApiKey: (id: string) => authed<Message>("DELETE", `/keys/${encodeURIComponent(id)}`),
  };
}

type FormFetch = (input: string, init: { method: "POST"; headers: Record<string, string>; body: string }) => Promise<Answer>;

/** RFC 8693's names for what goes in and what comes out. */
const EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const KEY_TYPE = "urn:edge-auth:params:oauth:token-type:api-key";

/**
 * For a script or service holding an API key: exchanges it at `baseUrl`/oauth2/token (RFC 8693 token
 * exchange) for an access token carrying the key's owner and scopes (`scope`: fewer of them). Send
 * that token as a Bearer to your backends, and exchange again when it expires (`expires_in`). A wrong,
 * revoked or expired key: AuthError invalid_grant; too many exchanges: rate_limited with retryAfter.
 */
export async function exchangeApiKey(baseUrl: string, key: string, options: { scope?: string; fetch?: FormFetch } = {}): Promise<TokenExchanged> {
  const form: Record<string, string> = { grant_type: EXCHANGE, subject_token: key, subject_token_type: KEY_TYPE };
  if (options.scope) form.scope = options.scope;
  const body = Object.entries(form)
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join("&");
  const doFetch = options.fetch ?? (globalThis as unknown as { fetch: FormFetch }).fetch;
  let res: Answer;
  try {
    res = await doFetch(`${baseUrl.replace(/\/$/, "")}/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body,
    });
  } catch (err) {
    throw unreachable(err);
  }
  return read<TokenExchanged>(res);
}
