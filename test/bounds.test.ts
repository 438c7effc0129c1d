import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MAX_PASSKEYS } from "../src/auth/passkeys/passkeys";
import { SoftAuthenticator } from "./authenticator";
import { call, expectError, ORIGIN, registerOptions, registerUser } from "./helpers";
import { start } from "./social";

/**
 * What one client can write to a table that lives on (docs/storage.md): the bounds that are not rate
 * limits. The cleaning rules are in cron.test.ts.
 */

describe("social sign-in flows", () => {
  it("refuse a return_to longer than 512 characters with a clear field error, before any row is written", async () => {
    const page = (length: number) => `${ORIGIN}/${"a".repeat(length - ORIGIN.length - 1)}`;
    const flows = async () => (await env.DB.prepare("SELECT count(*) AS n FROM oauth_flows").first<{ n: number }>())!.n;
    const before = await flows();
    const res = await call("GET", `/oauth/local/start?return_to=${encodeURIComponent(page(513))}`);
    expectError(res, 400, "validation_failed");
    expect(res.body.fields).toEqual({ return_to: "at most 512 characters" });
    expect(await flows()).toBe(before);
    // The longest allowed page starts a flow, and its row holds it.
    await start("local", { return_to: page(512) });
    expect(await flows()).toBe(before + 1);
  });
});

describe("passkeys", () => {
  /** Passkey rows for the user without the ceremony (the cap counts rows). */
  async function plant(userId: string, n: number) {
    for (let i = 0; i < n; i++) {
      await env.DB.prepare(
        "INSERT INTO passkeys (id, user_id, public_key, counter, device_type, backed_up, name, created_at) VALUES (?, ?, 'x', 0, 'singleDevice', 0, 'Old', ?)",
      )
        .bind(`planted-${userId}-${i}`, userId, Date.now())
        .run();
    }
  }
  const count = async (userId: string) => (await env.DB.prepare("SELECT count(*) AS n FROM passkeys WHERE user_id = ?").bind(userId).first<{ n: number }>())!.n;

  it(`hold at most ${MAX_PASSKEYS} per account: options are refused at the cap, and two registrations racing for the last place store one`, async () => {
    const reg = await registerUser();
    await plant(reg.user.id, MAX_PASSKEYS - 1);
    // Two ceremonies started while one place is left.
    const [a, b] = [new SoftAuthenticator(ORIGIN), new SoftAuthenticator(ORIGIN)];
    const [optionsA, optionsB] = [await registerOptions(reg.access_token), await registerOptions(reg.access_token)];
    const [responseA, responseB] = [await a.register(optionsA), await b.register(optionsB)];
    // Sent at once: the count in the insert itself lets exactly one of them take the last place.
    const results = await Promise.all([
      call("POST", "/passkeys/register/verify", { token: reg.access_token, body: { response: responseA } }),
      call("POST", "/passkeys/register/verify", { token: reg.access_token, body: { response: responseB } }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    expect(results.find((r) => r.status === 409)!.body.error).toBe("too_many_passkeys");
    expect(await count(reg.user.id)).toBe(MAX_PASSKEYS);
    // No new ceremony at the cap (and no challenge row for one).
    expectError(
      await call("POST", "/passkeys/register/options", { token: reg.access_token, body: { current_password: reg.input.password } }),
      409,
      "too_many_passkeys",
    );
  });
});
