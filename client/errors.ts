import type { ErrorBody, ErrorCode } from "./types.js";

/** What went wrong: `code` is the API's error code, or network_error / bad_response / origin_not_allowed (fetch() to an origin not in `backends`). */
export class AuthError extends Error {
  readonly code: ErrorCode | "network_error" | "bad_response" | "origin_not_allowed";
  readonly status: number; // 0 when no answer arrived
  readonly fields?: Record<string, string>;
  readonly retryAfter?: number; // seconds, from Retry-After

  // Plain fields, no parameter properties: Node 22 runs this file as it is (type stripping only).
  constructor(code: AuthError["code"], message: string, status: number, fields?: Record<string, string>, retryAfter?: number) {
    super(message);
    this.name = "AuthError";
    this.code = code;
    this.status = status;
    this.fields = fields;
    this.retryAfter = retryAfter;
  }
}

/** An answer as the client reads it: the platform's fetch Response fits. */
export interface Answer {
  ok: boolean;
  status: number;
  headers: { get(name: string): string | null };
  json(): Promise<unknown>;
}

/**
 * The JSON of an answer, or the AuthError it carries: the API's `{error, message, fields}` (the token
 * endpoint's `error_description` too), with Retry-After; a non-JSON answer is bad_response.
 */
export async function read<T>(res: Answer): Promise<T> {
  let json: unknown;
  try {
    json = await res.json();
  } catch {
    throw new AuthError("bad_response", `The API answered ${res.status} without JSON`, res.status);
  }
  if (res.ok) return json as T;
  const e = json as Partial<ErrorBody> & { error_description?: string };
  const retry = Number(res.headers.get("retry-after"));
  if (typeof e?.error !== "string") throw new AuthError("bad_response", `The API answered ${res.status}`, res.status);
  throw new AuthError(e.error, e.message ?? e.error_description ?? e.error, res.status, e.fields, Number.isFinite(retry) && retry > 0 ? retry : undefined);
}

/** A request that got no answer. */
export const unreachable = (err: unknown) => new AuthError("network_error", (err as Error).message || "The network request failed", 0);
