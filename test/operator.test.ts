import { afterEach, describe, expect, it, vi } from "vitest";
import { call, expectError, forgeToken, login, nowSeconds, PASSWORD, registerUser, uniqueName } from "./helpers";

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
