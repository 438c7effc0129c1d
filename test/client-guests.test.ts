import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createAuthClient } from "../client";
import worker from "../src/index";
import { uniqueEmail, userRow } from "./guests";
import { expectDocumented, PASSWORD, randomIp } from "./helpers";

/** The client's guest calls (client/guests.ts) against the real worker with GUESTS on, in token mode. */

function guestClient() {
  const ip = randomIp();
  const guestsOn = { ...env, GUESTS: "on" } as Env;
  const fetcher = async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    req.headers.set("cf-connecting-ip", ip);
    const res = await worker.fetch(req, guestsOn, undefined as unknown as ExecutionContext);
    const text = await res.clone().text();
    await expectDocumented(req.method, new URL(req.url).pathname, res, text ? JSON.parse(text) : undefined);
    return res;
  };
  return createAuthClient({ baseUrl: "http://localhost", fetch: fetcher as typeof fetch, cookie: false });
}

describe("the client's guests", () => {
  it("startGuest() signs in as a guest, upgradeGuest() keeps the id and takes a token without the claim", async () => {
    const client = guestClient();
    expect(client.isGuest()).toBe(false);
    const user = await client.startGuest();
    expect(client.state).toEqual({ signedIn: true, userId: user.id, username: null });
    expect(client.isGuest()).toBe(true);
    await expect(client.createOrganization({ name: "Nope", slug: "nope-guest" })).rejects.toMatchObject({ code: "guest_not_allowed", status: 403 });
    const email = uniqueEmail("client");
    const member = await client.upgradeGuest({ email, password: PASSWORD });
    expect(member).toMatchObject({ id: user.id, email });
    expect(client.isGuest()).toBe(false);
    expect(client.state).toEqual({ signedIn: true, userId: user.id, username: null });
    expect((await client.me()).user.id).toBe(user.id);
    expect(await userRow(user.id)).toMatchObject({ is_guest: 0 });
    await expect(client.upgradeGuest({ email: uniqueEmail(), password: PASSWORD })).rejects.toMatchObject({ code: "already_member", status: 409 });
  });
});
