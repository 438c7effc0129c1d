import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { expect } from "vitest";
import { memberships, organizations } from "../src/db/organization-tables";
import { call, PASSWORD, registerUser, uniqueName } from "./helpers";
import { tokenRequest } from "./oauth";

/**
 * Test helpers for API keys (docs/api-keys.md). Organizations and memberships are written straight
 * into D1 (the organizations API is tested in its own files); keys are made through POST /keys.
 */

export const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
export const API_KEY_TYPE = "urn:edge-auth:params:oauth:token-type:api-key";

const db = () => drizzle(env.DB);

/** An organization with these members (user id -> role). */
export async function orgWith(members: Record<string, string>) {
  const id = crypto.randomUUID();
  const slug = uniqueName("org").toLowerCase().replace(/_/g, "-");
  await db().insert(organizations).values({ id, name: "Test Org", slug, createdAt: new Date() });
  for (const [userId, role] of Object.entries(members)) await db().insert(memberships).values({ orgId: id, userId, role, createdAt: new Date() });
  return { id, slug };
}

export async function removeMember(orgId: string, userId: string) {
  await env.DB.prepare("DELETE FROM memberships WHERE org_id = ? AND user_id = ?").bind(orgId, userId).run();
}

export interface KeyBody {
  name?: string;
  scopes?: string[];
  expires_in_days?: number;
  org_id?: string;
}

/** POST /keys with the password (the step-up), as `token`'s user. */
export const createKeyAs = (token: string, body: KeyBody = {}) =>
  call("POST", "/keys", { token, body: { name: "Test key", scopes: ["user"], current_password: PASSWORD, ...body } });

/** A fresh user and a key of theirs. */
export async function userWithKey(body: KeyBody = {}) {
  const reg = await registerUser();
  const res = await createKeyAs(reg.access_token, body);
  expect(res.status, res.text).toBe(201);
  return { reg, key: res.body.key as ApiKeyView, secret: res.body.secret as string };
}

export interface ApiKeyView {
  id: string;
  name: string;
  start: string;
  scopes: string[];
  owner: { type: "user" | "organization"; id: string };
  created_by: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** The token exchange's form for `key`. */
export const exchangeForm = (key: string, extra: Record<string, string> = {}) => ({
  grant_type: TOKEN_EXCHANGE,
  subject_token: key,
  subject_token_type: API_KEY_TYPE,
  ...extra,
});

/** An exchange, waiting for what it does after the answer (the last-used write). */
export async function exchange(key: string, extra: Record<string, string> = {}, opts: { ip?: string; bindings?: Partial<Env> } = {}) {
  const ctx = createExecutionContext();
  const res = await tokenRequest(exchangeForm(key, extra), { ip: opts.ip, bindings: opts.bindings ?? {}, ctx });
  await waitOnExecutionContext(ctx);
  return res;
}

export async function keyRow(id: string) {
  return env.DB.prepare("SELECT * FROM api_keys WHERE id = ?").bind(id).first<Record<string, unknown>>();
}
