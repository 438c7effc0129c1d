import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createAuthClient } from "../client";
import worker from "../src/index";
import { awayFromStepEdge, codeAt, expectDocumented, PASSWORD, randomIp, uniqueName } from "./helpers";

/** The client under REQUIRE_MFA: enrolmentRequired() from the token, the refusal's code, and the refresh after enrolment. */

function underPolicy() {
  const ip = randomIp();
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    req.headers.set("cf-connecting-ip", ip);
    const res = await worker.fetch(req, { ...env, REQUIRE_MFA: "all" } as Env, { waitUntil() {}, passThroughOnException() {} } as unknown as ExecutionContext);
    const text = await res.clone().text();
    await expectDocumented(req.method, new URL(req.url).pathname, res, text ? JSON.parse(text) : undefined);
    return res;
  };
  return createAuthClient({ baseUrl: "http://localhost", fetch: fetch as typeof globalThis.fetch, cookie: false });
}

describe("the client under REQUIRE_MFA", () => {
  it("says enrolment is required, surfaces mfa_enrolment_required, and is full after totpEnable()", async () => {
    const client = underPolicy();
    await client.register({ username: uniqueName("enrol"), password: PASSWORD });
    expect(client.enrolmentRequired()).toBe(true);
    await expect(client.sessions()).rejects.toMatchObject({ code: "mfa_enrolment_required", status: 403 });
    expect((await client.me()).factors.totp).toBe(false);
    const { secret } = await client.totpSetup(PASSWORD);
    await awayFromStepEdge();
    const { recovery_codes } = await client.totpEnable(await codeAt(secret));
    expect(recovery_codes).toHaveLength(10);
    expect(client.enrolmentRequired()).toBe(false);
    expect((await client.sessions()).sessions).toHaveLength(1);
  });
});
