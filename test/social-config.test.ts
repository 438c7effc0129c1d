import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../src/index";
import { call, expectError, login, PASSWORD, registerUser, uniqueName } from "./helpers";
import { atLocalIdp, providers, start } from "./social";

// A fault in social sign-in's configuration (OAUTH_PROVIDERS, OAUTH_CLIENT_SECRETS) turns off the
// providers it concerns, never the API: password sign-in, registration and the other providers go
// on; the log says what is wrong (docs/social-sign-in.md "When a provider is misconfigured").

const secrets = () => JSON.parse(env.OAUTH_CLIENT_SECRETS) as Record<string, string>;
const without = (id: string) => JSON.stringify(Object.fromEntries(Object.entries(secrets()).filter(([k]) => k !== id)));

/** The log lines written while `run` runs. */
async function logsOf(run: () => Promise<void>): Promise<string[]> {
  const lines: string[] = [];
  for (const level of ["log", "warn", "error"] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
  }
  await run();
  return lines;
}
afterEach(() => vi.restoreAllMocks());

const configProblems = (lines: string[]) =>
  lines.filter((l) => l.includes('"config_invalid"')).flatMap((l) => (JSON.parse(l) as { problems: string[] }).problems);

/** The API with these settings: password sign-in and registration work, and what social sign-in answers. */
async function withConfig(bindings: Partial<Env>) {
  const reg = await call("POST", "/register", { body: { username: uniqueName("cfg"), password: PASSWORD }, bindings });
  expect(reg.status, reg.text).toBe(201);
  const signedIn = await call("POST", "/login", { body: { username: reg.body.user.username, password: PASSWORD }, bindings });
  expect(signedIn.status, signedIn.text).toBe(200);
  const listed = await call("GET", "/oauth/providers", { bindings });
  expect(listed.status, listed.text).toBe(200);
  return { listed: listed.body.providers.map((p: { id: string }) => p.id) as string[], token: signedIn.body.access_token as string };
}

describe("a fault in a provider's configuration turns off that provider, not the API", () => {
  it("a listed provider without its secret: 503 provider_unavailable for it alone, and the log names the secret that is missing", async () => {
    const bindings = { OAUTH_CLIENT_SECRETS: without("local") };
    let seen: Awaited<ReturnType<typeof withConfig>> | undefined;
    const lines = await logsOf(async () => {
      seen = await withConfig(bindings);
      expectError(await call("GET", "/oauth/local/start", { bindings }), 503, "provider_unavailable");
      // Linking it is refused the same way, before any step-up.
      expectError(await call("POST", "/me/identities/local/link", { token: seen.token, body: {}, bindings }), 503, "provider_unavailable");
    });
    expect(seen!.listed).toEqual(["crafted", "lax", "impostor", "github", "down", "deaf"]);
    expect((await call("GET", "/oauth/crafted/start", { bindings })).status).toBe(302);
    expectError(await call("GET", "/oauth/nope/start", { bindings }), 404, "unknown_provider");
    expect(configProblems(lines)).toContainEqual("OAUTH_CLIENT_SECRETS.local: is missing (provider local is off)");
    // No secret's value in any line.
    for (const value of Object.values(secrets())) expect(lines.join("\n")).not.toContain(value);
  });

  it("an invalid entry is off alone, with the field and the rule it breaks", async () => {
    const list = [
      ...providers(),
      { id: "plain", kind: "oidc", issuer: "http://idp.example.com", client_id: "x" },
      { id: "fb", kind: "facebook", client_id: "x" },
      { id: "local", kind: "google", client_id: "twice" },
      { kind: "google", client_id: "no id" },
    ];
    const bindings = { OAUTH_PROVIDERS: JSON.stringify(list), OAUTH_CLIENT_SECRETS: JSON.stringify({ ...secrets(), plain: "s", fb: "s" }) };
    let listed: string[] = [];
    const lines = await logsOf(async () => void ({ listed } = await withConfig(bindings)));
    expect(listed).toEqual(["crafted", "lax", "impostor", "github", "down", "deaf"]);
    for (const id of ["plain", "fb", "local"]) expectError(await call("GET", `/oauth/${id}/start`, { bindings }), 503, "provider_unavailable");
    const problems = configProblems(lines);
    const n = providers().length;
    expect(new Set(problems)).toEqual(
      new Set([
        "OAUTH_PROVIDERS[0] (local): another provider has the id local (provider local is off)",
        `OAUTH_PROVIDERS[${n}] (plain): issuer must be https (http only for localhost) (provider plain is off)`,
        expect.stringMatching(new RegExp(`^OAUTH_PROVIDERS\\[${n + 1}\\] \\(fb\\): kind .*\\(provider fb is off\\)$`)),
        `OAUTH_PROVIDERS[${n + 2}] (local): another provider has the id local (provider local is off)`,
        expect.stringMatching(new RegExp(`^OAUTH_PROVIDERS\\[${n + 3}\\]: id .*\\(this entry is ignored\\)$`)),
      ]),
    );
  });

  it.each([
    ["OAUTH_PROVIDERS", "[{not json", "OAUTH_PROVIDERS: is not JSON (social sign-in is off)"],
    ["OAUTH_PROVIDERS", '{"id":"local"}', "OAUTH_PROVIDERS: is not a JSON list (social sign-in is off)"],
    ["OAUTH_CLIENT_SECRETS", "{oops", "OAUTH_CLIENT_SECRETS: is not JSON (social sign-in is off)"],
    ["OAUTH_CLIENT_SECRETS", '{"local": 42}', "OAUTH_CLIENT_SECRETS: is not a JSON object from provider id to secret (social sign-in is off)"],
  ])("%s = %s: social sign-in is off as a whole, everything else works", async (name, value, problem) => {
    const bindings = { [name]: value } as Partial<Env>;
    let listed: string[] = [];
    const lines = await logsOf(async () => void ({ listed } = await withConfig(bindings)));
    expect(listed).toEqual([]);
    expectError(await call("GET", "/oauth/local/start", { bindings }), 503, "provider_unavailable");
    expect(configProblems(lines)).toEqual(expect.arrayContaining([problem]));
  });

  it("a flow whose provider was turned off meanwhile lands back in the app with provider_unavailable", async () => {
    const trip = await start("local");
    const back = await atLocalIdp(trip.to, uniqueName("late"));
    const res = await call("GET", `/oauth/local/callback?${back}`, {
      headers: { cookie: `oauth_flow=${trip.cookie}` },
      bindings: { OAUTH_CLIENT_SECRETS: "{}" },
    });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("http://localhost:5173/#oauth_error=provider_unavailable");
  });

  it("the fault is logged once per isolate (per env), not on every request", async () => {
    const broken = { ...env, OAUTH_CLIENT_SECRETS: without("github") };
    const user = await registerUser();
    const lines = await logsOf(async () => {
      for (let i = 0; i < 3; i++) {
        const ctx = createExecutionContext();
        const req = new Request("http://localhost/login", {
          method: "POST",
          headers: { "content-type": "application/json", "cf-connecting-ip": `10.77.0.${i + 1}` },
          body: JSON.stringify({ username: user.user.username, password: PASSWORD }),
        });
        expect((await worker.fetch(req, broken, ctx)).status).toBe(200);
        await waitOnExecutionContext(ctx);
      }
    });
    expect(lines.filter((l) => l.includes('"config_invalid"'))).toHaveLength(1);
    expect((await login(user.user.username)).status).toBe(200);
  });
});
