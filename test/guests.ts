import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { type CallOptions, call, decodeJwtPart } from "./helpers";

/** Guests from a test's side (test/guests*.test.ts): GUESTS is "off" in wrangler.toml, so creation names it per request. */

export const GUESTS_ON = { GUESTS: "on" } as Partial<Env>;

export const startGuest = (opts: CallOptions = {}) => call("POST", "/guests", { ...opts, bindings: { ...GUESTS_ON, ...opts.bindings } });

/** A new guest, signed in: its id and tokens. */
export async function newGuest() {
  const res = await startGuest();
  expect(res.status, res.text).toBe(201);
  return res.body as { user: { id: string; username: null; email: null; roles: string[] }; access_token: string; refresh_token: string };
}

export const claimsOf = (token: string) => decodeJwtPart(token, 1);

export const userRow = (id: string) =>
  env.DB.prepare("SELECT id, username, email, email_verified_at, password_hash, is_guest, roles FROM users WHERE id = ?")
    .bind(id)
    .first<{ id: string; username: string; email: string | null; email_verified_at: number | null; password_hash: string; is_guest: number; roles: string }>();

let n = 0;
export const uniqueEmail = (prefix = "guest") => `${prefix}_${Date.now().toString(36)}_${n++}@example.com`;
