import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
// @ts-expect-error: a plain ES module (scripts/ are JavaScript)
import { preflight as check0 } from "../../scripts/preflight.mjs";
import { checkVars } from "../../src/config";

const preflight = (config: unknown) => check0(config, checkVars) as string[];

const check = (change: (c: any) => void) => {
  const config = structuredClone(good);
  change(config);
  return preflight(config);
};
// The committed vars, with what production must add.
const committed = unstable_readConfig({ config: "wrangler.toml" });
const good = {
  vars: { ...committed.vars, ISSUER: "https://auth.example.com", CORS_ORIGINS: "https://app.example.com", APP_URL: "https://app.example.com/account" },
  d1_databases: [{ binding: "DB", database_id: "0c5b3d2e-1111-2222-3333-444455556666" }],
  kv_namespaces: [{ binding: "REVOKED", id: "0123456789abcdef0123456789abcdef" }],
};

describe("npm run deploy's preflight", () => {
  it("passes a complete production configuration", () => {
    expect(preflight(good)).toEqual([]);
  });

  it("refuses the committed wrangler.toml as it is: empty ISSUER, no database or namespace id, no APP_URL", () => {
    const problems: string[] = preflight(unstable_readConfig({ config: "wrangler.toml" }));
    expect(problems).toEqual([
      expect.stringMatching(/^ISSUER is empty.*workers\.dev/),
      expect.stringMatching(/wrangler d1 create/),
      expect.stringMatching(/wrangler kv namespace create/),
      expect.stringMatching(/^APP_URL/),
    ]);
  });

  it("names the fix for each mistake", () => {
    expect(check((c) => (c.vars.ISSUER = ""))).toEqual([expect.stringMatching(/ISSUER is empty/)]);
    expect(check((c) => (c.vars.ISSUER = "http://auth.example.com"))).toEqual([expect.stringMatching(/https origin/)]);
    expect(check((c) => (c.vars.ISSUER = "https://auth.example.com/"))).toEqual([expect.stringMatching(/https origin/)]);
    expect(check((c) => delete c.d1_databases[0].database_id)).toEqual([expect.stringMatching(/database_id.*wrangler d1 create edge-auth/)]);
    expect(check((c) => (c.kv_namespaces = []))).toEqual([expect.stringMatching(/kv namespace create REVOKED/)]);
    expect(check((c) => (c.vars.CORS_ORIGINS = "https://app.example.com, http://localhost:5173"))).toEqual([
      expect.stringMatching(/https origins.*http:\/\/localhost:5173/),
    ]);
    expect(check((c) => (c.vars.PASSWORD_ITERATIONS = "600000"))).toEqual([expect.stringMatching(/at most 100000/)]);
    expect(check((c) => (c.vars.WEBAUTHN_ORIGINS = "http://app.example.com"))).toEqual([expect.stringMatching(/WEBAUTHN_ORIGINS must list https/)]);
  });

  it("checks that every passkey origin is on the relying-party domain", () => {
    expect(check((c) => (c.vars.CORS_ORIGINS = "https://app.example.com,https://admin.example.com"))).toEqual([
      expect.stringMatching(/admin\.example\.com is not on the relying-party domain "app\.example\.com".*WEBAUTHN_RP_ID/),
    ]);
    expect(check((c) => ((c.vars.CORS_ORIGINS = "https://app.example.com,https://admin.example.com"), (c.vars.WEBAUTHN_RP_ID = "example.com")))).toEqual([]);
    expect(check((c) => (c.vars.WEBAUTHN_RP_ID = "other.com"))).toEqual([
      expect.stringMatching(/app\.example\.com is not on the relying-party domain "other\.com"/),
    ]);
    expect(
      check((c) => ((c.vars.WEBAUTHN_ORIGINS = "https://app.example.com"), (c.vars.CORS_ORIGINS = "https://app.example.com,https://x.other.net"))),
    ).toEqual([]);
  });

  it("refuses whatever else the Worker itself would refuse at run time, by the Worker's own check", () => {
    expect(check((c) => (c.vars.CORS_ORIGINS = "https://app.example.com/"))).toEqual([expect.stringMatching(/CORS_ORIGINS.*bare origin/)]);
    expect(check((c) => (c.vars.REGISTRATION = "Closed"))).toEqual([expect.stringMatching(/^In \[vars\], REGISTRATION/)]);
    expect(check((c) => (c.vars.ACCESS_TOKEN_TTL = "30"))).toEqual([expect.stringMatching(/^In \[vars\], ACCESS_TOKEN_TTL/)]);
  });
});
