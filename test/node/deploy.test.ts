import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
// @ts-expect-error: a plain ES module (scripts/ are JavaScript)
import { preflight } from "../../scripts/preflight.mjs";

const check = (change: (c: any) => void) => {
  const config = structuredClone(good);
  change(config);
  return preflight(config) as string[];
};
const good = {
  vars: { ISSUER: "https://auth.example.com", CORS_ORIGINS: "https://app.example.com", PASSWORD_ITERATIONS: "100000" },
  d1_databases: [{ binding: "DB", database_id: "0c5b3d2e-1111-2222-3333-444455556666" }],
  kv_namespaces: [{ binding: "REVOKED", id: "0123456789abcdef0123456789abcdef" }],
};

describe("npm run deploy's preflight", () => {
  it("passes a complete production configuration", () => {
    expect(preflight(good)).toEqual([]);
  });

  it("refuses the committed wrangler.toml as it is: empty ISSUER, no database or namespace id", () => {
    const problems: string[] = preflight(unstable_readConfig({ config: "wrangler.toml" }));
    expect(problems).toEqual([expect.stringMatching(/^ISSUER is empty.*workers\.dev/), expect.stringMatching(/wrangler d1 create/), expect.stringMatching(/wrangler kv namespace create/)]);
  });

  it("names the fix for each mistake", () => {
    expect(check((c) => (c.vars.ISSUER = ""))).toEqual([expect.stringMatching(/ISSUER is empty/)]);
    expect(check((c) => (c.vars.ISSUER = "http://auth.example.com"))).toEqual([expect.stringMatching(/https origin/)]);
    expect(check((c) => (c.vars.ISSUER = "https://auth.example.com/"))).toEqual([expect.stringMatching(/https origin/)]);
    expect(check((c) => delete c.d1_databases[0].database_id)).toEqual([expect.stringMatching(/database_id.*wrangler d1 create edge-auth/)]);
    expect(check((c) => (c.kv_namespaces = []))).toEqual([expect.stringMatching(/kv namespace create REVOKED/)]);
    expect(check((c) => (c.vars.CORS_ORIGINS = "https://app.example.com, http://localhost:5173"))).toEqual([expect.stringMatching(/https origins.*http:\/\/localhost:5173/)]);
    expect(check((c) => (c.vars.PASSWORD_ITERATIONS = "600000"))).toEqual([expect.stringMatching(/at most 100000/)]);
  });
});
