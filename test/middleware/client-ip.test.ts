import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { clientIp, ipKey } from "../../src/middleware/client-ip";

// A route that answers the address the middleware reads, and its rate-limit key.
const app = new Hono().get("/", (c) => c.json({ ip: clientIp(c), key: ipKey(clientIp(c)) }));
const seen = async (headers: Record<string, string>) => (await app.request("/", { headers })).json<{ ip: string; key: string }>();

describe("clientIp", () => {
  it("is CF-Connecting-IP, which Cloudflare's edge sets", async () => {
    expect(await seen({ "cf-connecting-ip": "192.0.2.7" })).toEqual({ ip: "192.0.2.7", key: "ip:192.0.2.7" });
  });

  it("never takes X-Forwarded-For or X-Real-IP, which any client can write: not alone, not beside CF-Connecting-IP", async () => {
    expect(await seen({ "x-forwarded-for": "198.51.100.1", "x-real-ip": "198.51.100.2" })).toEqual({ ip: "unknown", key: "ip:unknown" });
    expect((await seen({ "cf-connecting-ip": "192.0.2.7", "x-forwarded-for": "198.51.100.1, 192.0.2.7" })).ip).toBe("192.0.2.7");
  });

  it("is one shared 'unknown' without the header (wrangler dev): such requests share one budget", async () => {
    expect(await seen({})).toEqual({ ip: "unknown", key: "ip:unknown" });
  });
});

describe("ipKey", () => {
  it("counts IPv4 per address, IPv4-mapped IPv6 as its IPv4 address", () => {
    expect(ipKey("203.0.113.9")).toBe("ip:203.0.113.9");
    expect(ipKey("::ffff:203.0.113.9")).toBe("ip:203.0.113.9");
    expect(ipKey("203.0.113.10")).not.toBe(ipKey("203.0.113.9"));
  });

  it("counts IPv6 per /64, however the address is written (case, leading zeros, ::)", () => {
    const key = "ip6:2001:db8:a:b::/64";
    for (const ip of ["2001:db8:a:b::1", "2001:DB8:A:B:ffff:ffff:ffff:ffff", "2001:0db8:000a:000b:0:0:0:2", "2001:db8:a:b:1::"])
      expect(ipKey(ip), ip).toBe(key);
    expect(ipKey("2001:db8:a:c::1")).toBe("ip6:2001:db8:a:c::/64");
    expect(ipKey("2001:db8::1")).toBe("ip6:2001:db8:0:0::/64");
    expect(ipKey("::1")).toBe("ip6:0:0:0:0::/64");
  });
});
