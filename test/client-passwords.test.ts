import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AuthError, createAuthClient, type PasswordWarning, passwordProblem, type TurnstileAction } from "../client";
import worker from "../src/index";
import { PASSWORD, randomIp, uniqueName } from "./helpers";

/** The client's side of the password policy and of Turnstile (client/passwords.ts, client/turnstile.ts). */

/** The worker's fetch with these bindings, recording each request's Turnstile header. */
function viaWorker(bindings: Partial<Env>, seen: Record<string, string | null> = {}) {
  const ip = randomIp();
  return async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    req.headers.set("cf-connecting-ip", ip);
    seen[`${req.method} ${new URL(req.url).pathname}`] = req.headers.get("cf-turnstile-response");
    return worker.fetch(req, { ...env, ...bindings }, { waitUntil() {}, passThroughOnException() {} } as unknown as ExecutionContext);
  };
}

const turnstileOn = { TURNSTILE_SECRET: "client-test-secret", TURNSTILE_VERIFY_URL: `${env.TEST_STAND_INS}/siteverify` } as Partial<Env>;

describe("the client and the password policy", () => {
  it("surfaces a refusal as AuthError with the policy's code, and passwordProblem words it", async () => {
    const client = createAuthClient({ baseUrl: "http://localhost", fetch: viaWorker({}) as typeof fetch, cookie: false });
    const err = await client.register({ username: uniqueName("cp"), password: "sunshine" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).code).toBe("password_too_common");
    expect(passwordProblem((err as AuthError).code)).toMatch(/most common/);
    expect(passwordProblem("password_contains_context")).toMatch(/username/);
    expect(passwordProblem("password_breached")).toMatch(/breaches/);
    expect(passwordProblem("invalid_credentials")).toBeUndefined();
  });

  it("passes a warn mode's password_warning to onPasswordWarning at sign-up and change", async () => {
    const warnings: PasswordWarning[] = [];
    const fetch = viaWorker({ PWNED_PASSWORDS: "warn" } as Partial<Env>) as typeof globalThis.fetch;
    const client = createAuthClient({ baseUrl: "http://localhost", fetch, cookie: false, onPasswordWarning: (w) => warnings.push(w) });
    await client.register({ username: uniqueName("cp"), password: "Tr0ub4dor&3" });
    expect(warnings).toEqual(["password_breached"]);
    const changed = await client.changePassword({ current_password: "Tr0ub4dor&3", new_password: PASSWORD });
    expect(changed.password_warning).toBeUndefined();
    expect(warnings).toHaveLength(1);
  });
});

describe("the client and Turnstile", () => {
  it("sends turnstileToken(action) as cf-turnstile-response on sign-up and forgot-password only", async () => {
    const asked: TurnstileAction[] = [];
    const seen: Record<string, string | null> = {};
    const client = createAuthClient({
      baseUrl: "http://localhost",
      fetch: viaWorker(turnstileOn, seen) as typeof fetch,
      cookie: false,
      turnstileToken: (action) => (asked.push(action), "pass"),
    });
    await client.register({ username: uniqueName("cp"), password: PASSWORD });
    await client.forgotPassword(`${uniqueName("cp")}@example.com`).catch(() => undefined); // no APP_URL needed for the header
    await client.me();
    expect(asked).toEqual(["sign_up", "forgot_password"]);
    expect(seen).toMatchObject({ "POST /register": "pass", "POST /password/forgot": "pass", "GET /me": null });
  });

  it("without a token the API's turnstile_required reaches the app", async () => {
    const client = createAuthClient({ baseUrl: "http://localhost", fetch: viaWorker(turnstileOn) as typeof fetch, cookie: false });
    await expect(client.register({ username: uniqueName("cp"), password: PASSWORD })).rejects.toMatchObject({ code: "turnstile_required", status: 400 });
  });
});
