import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { once } from "./helpers";
import { atLocalIdp, callback, socialSignIn, start } from "./social";

/**
 * D1 refusing a query ("overloaded") during a social callback, after the flow's state was spent: a
 * 503 there could not be completed by sending the callback again (the state and the provider's code
 * are single use), so the browser goes back to the app with an error to start over.
 */
const overloadedBatchOnce = () =>
  once(env.DB, "batch", async () => {
    throw new Error("D1_ERROR: D1 DB is overloaded. Requests queued for too long.");
  });

describe("a social callback while D1 is overloaded", () => {
  it("lands at the app with oauth_error=temporarily_unavailable, and a new trip signs in", async () => {
    const name = `overloaded_${crypto.randomUUID().slice(0, 8)}`;
    const trip = await start("local");
    const back = await atLocalIdp(trip.to, name);
    const landing = await callback("local", back, trip.cookie, { DB: overloadedBatchOnce() });
    expect(landing.fragment.get("oauth_error"), landing.to.hash).toBe("temporarily_unavailable");
    // The same callback again finds its state spent: a 503 would have promised a retry that cannot work.
    expect((await callback("local", back, trip.cookie)).fragment.get("oauth_error")).toBe("invalid_state");
    expect((await socialSignIn(name)).user.username).toBeTruthy();
  });
});
