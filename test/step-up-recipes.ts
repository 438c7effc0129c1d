import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { Action } from "../src/auth/core/ways-in";
import { SoftAuthenticator } from "./authenticator";
import { type ApiResponse, awayFromStepEdge, call, codeAt, login, ORIGIN, PASSWORD, registerUser, wrongCode } from "./helpers";
import { orgOwnedBy } from "./orgs";
import { exchange } from "./social";
import {
  address,
  box,
  type Check,
  enable,
  identityOf,
  linkCode,
  mailedLink,
  NEW_PASSWORD,
  passkeyOf,
  passkeyResponse,
  passwordless,
  RING,
  reset,
  revoke,
  setupTotp,
  verifyPasskey,
  withPassword,
} from "./step-up-setups";

/**
 * How to ask for each action of the step-up table (test/step-up.test.ts generates the tests from it):
 * the request without the proof, with a proof from another session of the same user (or, for a
 * mailed link, another link of the same user), with a spent proof, and the legitimate one. A
 * `Record<Action, Recipe>`: an action added to the table without a recipe does not compile.
 */

/** An answer and the refusal it must be (status, error code), or the legitimate answer's status. */
export type Tried = { res: ApiResponse; refused: [number, string] };
export interface Recipe {
  /** What "another session's proof" and "a spent proof" mean for this action. */
  means: { otherSession: string; spent: string };
  without(): Promise<Tried>;
  otherSession(): Promise<Tried>;
  spent(): Promise<Tried>;
  legit(): Promise<{ res: ApiResponse; status: number }>;
}

/**
 * An action of one request that takes the password (a recent sign-in without one) and, while TOTP is
 * on, a code. Another session's proof: the recent sign-in of another session (the account has no
 * password; this session signed in an hour ago). A spent proof: the code this session signed in with.
 */
function single(opts: {
  send: (token: string, check: Check, target: string) => Promise<ApiResponse>;
  /** What the action acts on, made for this user (a passkey, an identity, another user). */
  target?: (userId: string) => Promise<string>;
  admin?: boolean;
  totp?: "needed" | "refused";
  status: number;
}): Recipe {
  const target = opts.target ?? (async () => "");
  const needsTotp = opts.totp === "needed";
  return {
    means: { otherSession: "another session's recent sign-in (no password)", spent: "the code this session signed in with" },
    async without() {
      const u = await withPassword({ admin: opts.admin, totp: needsTotp });
      return { res: await opts.send(u.token, {}, await target(u.userId)), refused: [400, "validation_failed"] };
    },
    async otherSession() {
      const u = await passwordless(opts.admin);
      if (needsTotp) await env.DB.prepare("UPDATE users SET totp_enabled_at = ?, totp_secret = 'x' WHERE id = ?").bind(Date.now(), u.userId).run();
      // No password to send; a code where TOTP is on (the recent sign-in is checked first).
      const check = needsTotp ? { code: "000000" } : {};
      return { res: await opts.send(u.stale, check, await target(u.userId)), refused: [401, "reauthentication_required"] };
    },
    async spent() {
      const u = await withPassword({ admin: opts.admin, totp: true });
      return {
        res: await opts.send(u.signedIn, { current_password: PASSWORD, code: u.spentCode }, await target(u.userId)),
        refused: [401, "invalid_mfa_code"],
      };
    },
    async legit() {
      const u = await withPassword({ admin: opts.admin, totp: needsTotp });
      return { res: await opts.send(u.token, { current_password: PASSWORD, ...u.recovery }, await target(u.userId)), status: opts.status };
    },
  };
}

export const RECIPES: Record<Action, Recipe> = {
  change_password: {
    ...single({ send: (token, check) => call("POST", "/password", { token, body: { new_password: NEW_PASSWORD, ...check } }), status: 200 }),
    means: { otherSession: "a code another session of the user signed in with", spent: "the code this session signed in with" },
    async otherSession() {
      const u = await withPassword({ totp: true }); // the code was spent by the sign-in of `signedIn`, not of `token`
      const res = await call("POST", "/password", { token: u.token, body: { current_password: PASSWORD, new_password: NEW_PASSWORD, code: u.spentCode } });
      return { res, refused: [401, "invalid_mfa_code"] };
    },
  },
  change_email: single({ send: (token, check) => box.send("POST", "/email", { token, body: { new_email: address(), ...check } }), status: 202 }),
  delete_account: single({ send: (token, check) => call("DELETE", "/me", { token, body: check }), status: 200 }),
  // POST /logout/all here; DELETE /sessions/{id} of another session: test/logout.test.ts.
  end_sessions: single({ send: (token, check) => call("POST", "/logout/all", { token, body: check }), status: 200 }),
  setup_totp: {
    ...single({ send: (token, check) => call("POST", "/mfa/totp/setup", { token, body: check }), totp: "refused", status: 200 }),
    means: { otherSession: "another session's recent sign-in (no password)", spent: "this session's own sign-in, no longer recent" },
    async spent() {
      const u = await passwordless();
      return { res: await call("POST", "/mfa/totp/setup", { token: u.stale, body: {} }), refused: [401, "reauthentication_required"] };
    },
  },
  disable_totp: single({ send: (token, check) => call("POST", "/mfa/totp/disable", { token, body: check }), totp: "needed", status: 200 }),
  remove_passkey: single({ send: (token, check, id) => call("DELETE", `/passkeys/${id}`, { token, body: check }), target: passkeyOf, status: 200 }),
  remove_identity: single({
    send: (token, check, id) => call("DELETE", `/me/identities/${id}`, { token, body: check }),
    target: identityOf,
    status: 200,
  }),
  change_roles: single({
    send: (token, check, id) => call("PATCH", `/admin/users/${id}`, { token, body: { roles: ["user", "auditor"], ...check } }),
    target: async () => (await registerUser()).user.id,
    admin: true,
    status: 200,
  }),
  // Past the check, the ring is not ready to turn (409) and there is no such key (404): test/operator.test.ts.
  rotate_signing_keys: single({ send: (token, check) => call("POST", "/admin/keys/rotate", { token, body: check, bindings: RING }), admin: true, status: 409 }),
  retire_signing_key: single({
    send: (token, check) => call("POST", "/admin/keys/no-such-key/retire", { token, body: check, bindings: RING }),
    admin: true,
    status: 404,
  }),
  manage_clients: single({
    send: (token, check) =>
      call("POST", "/admin/clients", { token, body: { name: "Step-up App", redirect_uris: ["https://app.example/cb"], type: "confidential", ...check } }),
    admin: true,
    status: 201,
  }),
  manage_organization: single({
    send: (token, check, orgId) => call("DELETE", `/orgs/${orgId}`, { token, body: check }),
    target: orgOwnedBy,
    status: 200,
  }),
  create_api_key: single({
    send: (token, check) => call("POST", "/keys", { token, body: { name: "Step-up key", scopes: ["user"], ...check } }),
    status: 201,
  }),
  enable_totp: {
    means: { otherSession: "the setup of another session of the user", spent: "a setup already enabled (and turned off since)" },
    async without() {
      const reg = await registerUser();
      const secret = await setupTotp(reg.access_token);
      return { res: await enable(reg.access_token, await wrongCode(secret)), refused: [401, "invalid_mfa_code"] };
    },
    async otherSession() {
      const reg = await registerUser();
      const secret = await setupTotp(reg.access_token);
      const other = (await login(reg.input.username)).body.access_token;
      return { res: await enable(other, await codeAt(secret)), refused: [409, "mfa_not_enabled"] };
    },
    async spent() {
      const reg = await registerUser();
      const secret = await setupTotp(reg.access_token);
      await awayFromStepEdge();
      const codes = (await enable(reg.access_token, await codeAt(secret, -1))).body.recovery_codes as string[];
      const off = await call("POST", "/mfa/totp/disable", { token: reg.access_token, body: { current_password: PASSWORD, recovery_code: codes[0] } });
      expect(off.status, off.text).toBe(200);
      return { res: await enable(reg.access_token, await codeAt(secret)), refused: [409, "mfa_not_enabled"] };
    },
    async legit() {
      const reg = await registerUser();
      const secret = await setupTotp(reg.access_token);
      return { res: await enable(reg.access_token, await codeAt(secret)), status: 200 };
    },
  },
  add_passkey: {
    means: { otherSession: "options (a challenge) another session asked for", spent: "a challenge a passkey was already registered with" },
    async without() {
      const reg = await registerUser();
      return { res: await call("POST", "/passkeys/register/options", { token: reg.access_token, body: {} }), refused: [400, "validation_failed"] };
    },
    async otherSession() {
      const reg = await registerUser();
      const { response } = await passkeyResponse(reg.access_token);
      const other = (await login(reg.input.username)).body.access_token;
      return { res: await verifyPasskey(other, response), refused: [401, "invalid_challenge"] };
    },
    async spent() {
      const reg = await registerUser();
      const { options, response } = await passkeyResponse(reg.access_token);
      expect((await verifyPasskey(reg.access_token, response)).status).toBe(201);
      const again = await new SoftAuthenticator(ORIGIN).register(options);
      return { res: await verifyPasskey(reg.access_token, again), refused: [401, "invalid_challenge"] };
    },
    async legit() {
      const reg = await registerUser();
      return { res: await verifyPasskey(reg.access_token, (await passkeyResponse(reg.access_token)).response), status: 201 };
    },
  },
  add_identity: {
    means: { otherSession: "a link another session asked for", spent: "a link code already exchanged" },
    async without() {
      const reg = await registerUser();
      return { res: (await linkCode(reg.access_token, {})).asked, refused: [400, "validation_failed"] };
    },
    async otherSession() {
      const reg = await registerUser();
      const { code } = await linkCode(reg.access_token);
      const other = (await login(reg.input.username)).body.access_token;
      return { res: await exchange(code!, { token: other }), refused: [400, "invalid_grant"] };
    },
    async spent() {
      const reg = await registerUser();
      const { code } = await linkCode(reg.access_token);
      expect((await exchange(code!, { token: reg.access_token })).status).toBe(200);
      return { res: await exchange(code!, { token: reg.access_token }), refused: [400, "invalid_grant"] };
    },
    async legit() {
      const reg = await registerUser();
      return { res: await exchange((await linkCode(reg.access_token)).code!, { token: reg.access_token }), status: 200 };
    },
  },
  reset_password: {
    means: { otherSession: 'another mailed link of the user (its "this was not me" link)', spent: "a reset link already used" },
    without: async () => ({ res: await reset("A".repeat(43)), refused: [400, "invalid_link"] }),
    async otherSession() {
      const { email } = await mailedLink("revoke-way-in");
      return { res: await reset(box.link(email, "revoke-way-in")), refused: [400, "invalid_link"] };
    },
    async spent() {
      const { token } = await mailedLink("reset-password");
      expect((await reset(token)).status).toBe(200);
      return { res: await reset(token), refused: [400, "invalid_link"] };
    },
    legit: async () => ({ res: await reset((await mailedLink("reset-password")).token), status: 200 }),
  },
  revoke_way_in: {
    means: { otherSession: "another mailed link of the user (a reset link)", spent: 'a "this was not me" link already used' },
    without: async () => ({ res: await revoke("A".repeat(43)), refused: [400, "invalid_link"] }),
    async otherSession() {
      const { email } = await mailedLink("revoke-way-in");
      await box.send("POST", "/password/forgot", { body: { email } });
      return { res: await revoke(box.link(email, "reset-password")), refused: [400, "invalid_link"] };
    },
    async spent() {
      const { token } = await mailedLink("revoke-way-in");
      expect((await revoke(token)).status).toBe(200);
      return { res: await revoke(token), refused: [400, "invalid_link"] };
    },
    legit: async () => ({ res: await revoke((await mailedLink("revoke-way-in")).token), status: 200 }),
  },
};
