import { afterEach, describe, expect, it, vi } from "vitest";
import { type Action, STEP_UP } from "../src/auth/core/ways-in";
import {
  awayFromStepEdge,
  call,
  codeAt,
  expectError,
  forgeToken,
  login,
  makeAdmin,
  nowSeconds,
  PASSWORD,
  registerUser,
  stepUpFailures,
  uniqueName,
  userWithTotp,
} from "./helpers";

/** Switches and signals for whoever runs the service. */

afterEach(() => vi.restoreAllMocks());

describe("REGISTRATION", () => {
  it("closed: POST /register answers 403 registration_closed, and sign-in still works", async () => {
    const existing = await registerUser();
    const bindings = { REGISTRATION: "closed" } as Partial<Env>;
    expectError(await call("POST", "/register", { body: { username: uniqueName(), password: PASSWORD }, bindings }), 403, "registration_closed");
    expect((await call("POST", "/login", { body: { username: existing.input.username, password: PASSWORD }, bindings })).status).toBe(200);
  });

  it("open (the default) registers as before", async () => {
    expect((await call("POST", "/register", { body: { username: uniqueName(), password: PASSWORD } })).status).toBe(201);
  });
});

describe("why a token was refused", () => {
  const reasons = () => {
    const debug = vi.spyOn(console, "debug").mockImplementation(() => {});
    return () =>
      debug.mock.calls
        .map(([line]) => JSON.parse(String(line)))
        .filter((l) => l.event === "token_refused")
        .map((l) => l.reason);
  };

  it("goes to the log at debug level, never into the answer", async () => {
    const reg = await registerUser();
    const logged = reasons();
    const expired = await forgeToken({ claims: { iat: nowSeconds() - 1000, exp: nowSeconds() - 10 } });
    const otherAudience = await forgeToken({ claims: { aud: "another-api" } });
    const tampered = `${reg.access_token.slice(0, -6)}AAAAAA`;
    const answers = [];
    for (const token of [expired, otherAudience, tampered, "x".repeat(5000)]) answers.push(await call("GET", "/protected", { token }));
    const again = await login(reg.input.username);
    await call("POST", "/logout", { token: again.body.access_token });
    answers.push(await call("GET", "/protected", { token: again.body.access_token }));
    expect(logged()).toEqual(["expired", "claim_aud", "bad_signature", "too_long", "revoked"]);
    // Every answer is the same 401, whatever the reason.
    expect(new Set(answers.map((a) => a.text)).size).toBe(1);
  });
});

describe("operator actions take a fresh check: a stolen admin token alone grants no role and turns no key (issue 27 item 6)", () => {
  const RING = { SIGNING_KEYS: "rotating", KEY_PROPAGATION: "0" } as Partial<Env>;
  /** Each admin action of the step-up table, as a request with the given proof. */
  const actions = {
    change_roles: async (token: string, check: object) =>
      call("PATCH", `/admin/users/${(await registerUser()).user.id}`, { token, body: { roles: ["user", "auditor"], ...check } }),
    rotate_signing_keys: (token: string, check: object) => call("POST", "/admin/keys/rotate", { token, body: check, bindings: RING }),
    retire_signing_key: (token: string, check: object) => call("POST", "/admin/keys/no-such-key/retire", { token, body: check, bindings: RING }),
  } as const;

  it("declares them in the step-up table: the password, and a second factor while TOTP is on", () => {
    for (const action of Object.keys(actions))
      expect(STEP_UP[action as Action]).toMatchObject({ by: "session", proof: ["password", "second_factor"], secondFactor: "while_totp_on" });
  });

  it.each(Object.keys(actions))("%s: refused without the password, and with a wrong one (on the session's own budget)", async (action) => {
    const admin = await adminWithPassword();
    const act = actions[action as keyof typeof actions];
    expectError(await act(admin.token, {}), 400, "validation_failed");
    expectError(await act(admin.token, { current_password: "not it at all" }), 401, "invalid_credentials");
    expect(await stepUpFailures(admin.token)).toBe(1);
    // Past the check, the action's own answer: the role granted; the ring not ready to turn; no such key.
    const past = { change_roles: 200, rotate_signing_keys: 409, retire_signing_key: 404 }[action as keyof typeof actions];
    const done = await act(admin.token, { current_password: PASSWORD });
    expect(done.status, done.text).toBe(past);
  });

  it("an admin with TOTP on also sends a code; disabling a user takes no check (taking access away stays quick)", async () => {
    const admin = await userWithTotp();
    await makeAdmin(admin.user.id);
    const first = await login(admin.input.username);
    await awayFromStepEdge();
    const token = (await call("POST", "/login/mfa", { body: { challenge: first.body.challenge, code: await codeAt(admin.secret) } })).body.access_token;
    const target = await registerUser();
    expectError(
      await call("PATCH", `/admin/users/${target.user.id}`, { token, body: { roles: ["user", "admin"], current_password: PASSWORD } }),
      401,
      "invalid_mfa_code",
    );
    const granted = await call("PATCH", `/admin/users/${target.user.id}`, {
      token,
      body: { roles: ["user", "admin"], current_password: PASSWORD, recovery_code: admin.recoveryCodes[0] },
    });
    expect(granted.status, granted.text).toBe(200);
    expect((await call("PATCH", `/admin/users/${target.user.id}`, { token, body: { disabled: true } })).status).toBe(200);
  });
});

async function adminWithPassword() {
  const reg = await registerUser();
  await makeAdmin(reg.user.id);
  return { ...reg, token: (await login(reg.input.username)).body.access_token as string };
}
