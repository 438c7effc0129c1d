import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

/**
 * docs/security.md "Session lifetimes" (ASVS 7.1.1): each limit it gives is the one wrangler.toml
 * ships, and the section compares them with NIST SP 800-63B, saying where this product departs.
 */

const vars = readFileSync("wrangler.toml", "utf8");
const shipped = (name: string) => Number(new RegExp(`^${name} = "(\\d+)"`, "m").exec(vars)?.[1]);
const readable = (s: number) =>
  s % 86_400 === 0 ? `${s / 86_400} days` : s % 3_600 === 0 ? `${s / 3_600} hours` : s % 60 === 0 ? `${s / 60} minutes` : `${s} seconds`;
const section = () => {
  const doc = readFileSync("docs/security.md", "utf8");
  const start = doc.indexOf("## Session lifetimes");
  expect(start, "the section in docs/security.md").toBeGreaterThan(-1);
  return doc.slice(start, doc.indexOf("\n## ", start + 1));
};

describe("docs/security.md: Session lifetimes", () => {
  it("gives the absolute lifetime, the idle timeout, the access token's life and STEP_UP_MAX_AGE as shipped", () => {
    const text = section();
    for (const name of ["REFRESH_TOKEN_TTL", "REFRESH_IDLE_TTL", "ACCESS_TOKEN_TTL", "STEP_UP_MAX_AGE"]) {
      const row = text.split("\n").find((l) => l.includes(`| \`${name}\` |`));
      expect(row, name).toBeDefined();
      expect(row!.split("|")[3]!.trim(), name).toBe(readable(shipped(name)));
    }
  });

  it("compares them with NIST SP 800-63B's reauthentication limits and says where and why it departs", () => {
    const text = section();
    expect(text).toMatch(/NIST SP 800-63B/);
    for (const limit of ["30 days", "12 hours", "30 minutes", "15 minutes"]) expect(text).toContain(limit);
    expect(text).toMatch(/depart/);
    expect(text).toMatch(/step-up/);
  });
});
