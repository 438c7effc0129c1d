import type { Context } from "hono";

/** Cloudflare sets CF-Connecting-IP at the edge (a client cannot forge it); wrangler dev may not. */
export const clientIp = (c: Context) => c.req.header("cf-connecting-ip") ?? "unknown";

/**
 * The rate-limit key for an address. One IPv6 client commonly holds a whole /64 (2^64 addresses),
 * so IPv6 counts per /64; IPv4 (and IPv4-mapped IPv6) per address.
 */
export function ipKey(ip: string): string {
  if (!ip.includes(":") || /\d+\.\d+\.\d+\.\d+$/.test(ip)) return `ip:${ip.slice(ip.lastIndexOf(":") + 1)}`;
  const [head = "", tail] = ip.toLowerCase().split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined ? left : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `ip6:${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}
