import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
// @ts-expect-error: a plain ES module (scripts/ are JavaScript)
import { callbackUrls, preflight as check0, MAIL_ATTEMPTS as PREFLIGHT_ATTEMPTS, siteOf } from "../../scripts/preflight.mjs";
import { checkVars } from "../../src/config";
import { FREQUENT } from "../../src/cron";
import { MAIL_ATTEMPTS } from "../../src/mail-queue";

const preflight = (config: unknown) => check0(config, checkVars) as string[];

const check = (change: (c: any) => void) => {
  const config = structuredClone(good);
  change(config);
  return preflight(config);
};
// wrangler.toml as this repository ships it. A deployment edits the settings below (and commits
// them, so CI can deploy); the tests put back the shipped values, so they pass on its edits too.
const committed = unstable_readConfig({ config: "wrangler.toml" });
const sample = {
  ...committed,
  vars: {
    ...committed.vars,
    ISSUER: "",
    CORS_ORIGINS: "",
    APP_URL: "",
    MAIL_FROM: "no-reply@example.com",
    WEBAUTHN_RP_ID: "",
    WEBAUTHN_ORIGINS: "",
    COOKIE_SAMESITE: "Strict",
  },
  d1_databases: committed.d1_databases.map((d: object) => ({ ...d, database_id: undefined })),
  kv_namespaces: committed.kv_namespaces.map((k: object) => ({ ...k, id: undefined })),
};
// What production must add to it.
const good = {
  vars: {
    ...sample.vars,
    ISSUER: "https://auth.example.com",
    CORS_ORIGINS: "https://app.example.com",
    APP_URL: "https://app.example.com/account",
    MAIL_FROM: "no-reply@acme-mail.io",
  },
  routes: [{ pattern: "auth.example.com", custom_domain: true }],
  d1_databases: [{ binding: "DB", database_id: "0c5b3d2e-1111-2222-3333-444455556666" }],
  kv_namespaces: [{ binding: "REVOKED", id: "0123456789abcdef0123456789abcdef" }],
  queues: committed.queues,
  secrets: committed.secrets,
};
/** ISSUER moved, with what serves it: a custom domain for its host, or nothing on workers.dev. */
const issuerAt = (c: any, issuer: string) => {
  c.vars.ISSUER = issuer;
  const host = new URL(issuer).hostname;
  c.routes = host.endsWith(".workers.dev") ? [] : [{ pattern: host, custom_domain: true }];
};
/** The apps' origins, with mailed links landing on the first one's page. */
const appsAt = (c: any, origins: string) => {
  c.vars.CORS_ORIGINS = origins;
  c.vars.APP_URL = `${origins.split(",")[0]}/account`;
};

describe("npm run deploy's preflight", () => {
  it("passes a complete production configuration", () => {
    expect(preflight(good)).toEqual([]);
  });

  it("refuses wrangler.toml as shipped: empty ISSUER, no database or namespace id, no APP_URL, no CORS_ORIGINS, the sample MAIL_FROM", () => {
    const problems: string[] = preflight(sample);
    expect(problems).toEqual([
      expect.stringMatching(/^ISSUER is empty.*workers\.dev/),
      expect.stringMatching(/wrangler d1 create/),
      expect.stringMatching(/wrangler kv namespace create/),
      expect.stringMatching(/^APP_URL/),
      expect.stringMatching(/^CORS_ORIGINS is empty/),
      expect.stringMatching(/^MAIL_FROM is "no-reply@example\.com", a sample address/),
    ]);
  });

  it("refuses the API on another site than the app while the refresh cookie is SameSite=Strict or Lax", () => {
    // The usual first try: the Worker on workers.dev, the app on its own domain.
    const onWorkersDev = check((c) => issuerAt(c, "https://edge-auth-api.alice.workers.dev"));
    expect(onWorkersDev).toEqual([
      expect.stringMatching(
        /^Cookie mode cannot work: ISSUER is on the site alice\.workers\.dev, while CORS_ORIGINS has only other sites \(https:\/\/app\.example\.com\).*SameSite=Strict.*pattern = "auth\.example\.com", custom_domain = true.*ISSUER = "https:\/\/auth\.example\.com"/,
      ),
    ]);
    expect(check((c) => (issuerAt(c, "https://edge-auth-api.alice.workers.dev"), (c.vars.COOKIE_SAMESITE = "Lax")))).toEqual([
      expect.stringMatching(/SameSite=Lax refresh cookie is never sent/),
    ]);
    // Each workers.dev and pages.dev subdomain is a site of its own; so is each name under co.uk.
    expect(check((c) => (issuerAt(c, "https://api.alice.workers.dev"), appsAt(c, "https://app.pages.dev")))).toHaveLength(1);
    expect(check((c) => (issuerAt(c, "https://auth.shop.co.uk"), appsAt(c, "https://www.other.co.uk")))).toHaveLength(1);
    // Every origin on another site is named; with one on the API's site, the others may use token mode.
    expect(check((c) => (issuerAt(c, "https://api.acme.io"), (c.vars.CORS_ORIGINS = "https://app.example.com,https://app.other.net")))).toEqual([
      expect.stringMatching(/relying-party domain/), // passkeys' own rule: app.other.net is off app.example.com
      expect.stringMatching(
        /ISSUER is on the site acme\.io, while CORS_ORIGINS has only other sites \(https:\/\/app\.example\.com, https:\/\/app\.other\.net\)/,
      ),
    ]);
    expect(
      check((c) => ((c.vars.CORS_ORIGINS = "https://app.example.com,https://app.other.net"), (c.vars.WEBAUTHN_ORIGINS = "https://app.example.com"))),
    ).toEqual([]);
    // Same site: sibling hosts, and the site's own apex.
    expect(check((c) => appsAt(c, "https://example.com,https://www.app.example.com"))).toEqual([]);
    expect(check((c) => (issuerAt(c, "https://auth.shop.co.uk"), appsAt(c, "https://shop.co.uk")))).toEqual([]);
    // SameSite=None: the operator chose a cross-site cookie (or token mode only).
    expect(check((c) => (issuerAt(c, "https://edge-auth-api.alice.workers.dev"), (c.vars.COOKIE_SAMESITE = "None")))).toEqual([]);
  });

  it("refuses a route on another host than ISSUER's, and a custom-domain ISSUER that nothing serves", () => {
    // The Worker served on one host, tokens and links naming another.
    expect(check((c) => c.routes.push({ pattern: "api.example.com", custom_domain: true }))).toEqual([
      expect.stringMatching(
        /^routes: "api\.example\.com" serves this Worker on api\.example\.com, but ISSUER is https:\/\/auth\.example\.com.*ISSUER = "https:\/\/api\.example\.com"/,
      ),
    ]);
    expect(check((c) => (c.routes = ["www.example.com/*"]))).toEqual([
      expect.stringMatching(/^routes: "www\.example\.com\/\*" serves this Worker on www\.example\.com/),
      expect.stringMatching(/^ISSUER is https:\/\/auth\.example\.com, but nothing in wrangler\.toml serves this Worker there.*custom_domain = true/),
    ]);
    expect(check((c) => ((c.routes = []), (c.route = "*.example.com/*")))).toEqual([
      expect.stringMatching(/^routes: "\*\.example\.com\/\*" serves this Worker on \*\.example\.com/),
      expect.stringMatching(/nothing in wrangler\.toml serves this Worker there/),
    ]);
    // A custom-domain ISSUER with no route at all: wrangler deploys it to workers.dev only.
    expect(check((c) => delete c.routes)).toEqual([
      expect.stringMatching(
        /^ISSUER is https:\/\/auth\.example\.com, but nothing in wrangler\.toml serves this Worker there.*pattern = "auth\.example\.com", custom_domain = true/,
      ),
    ]);
    // Only part of the host: the API's routes are at the root.
    expect(check((c) => (c.routes = [{ pattern: "auth.example.com/api/*", zone_name: "example.com" }]))).toEqual([
      expect.stringMatching(/serves only \/api\/\* of auth\.example\.com/),
    ]);
    // What passes: a custom domain, a zone route for the whole host, the single `route` key, workers.dev without any.
    expect(check((c) => (c.routes = [{ pattern: "auth.example.com/*", zone_name: "example.com" }]))).toEqual([]);
    expect(check((c) => ((c.routes = []), (c.route = "auth.example.com/*")))).toEqual([]);
    expect(check((c) => ((c.vars.ISSUER = "https://edge-auth-api.alice.workers.dev"), (c.routes = []), (c.vars.COOKIE_SAMESITE = "None")))).toEqual([]);
    expect(
      check((c) => ((c.vars.ISSUER = "https://edge-auth-api.alice.workers.dev"), (c.routes = []), (c.vars.COOKIE_SAMESITE = "None"), (c.workers_dev = false))),
    ).toEqual([expect.stringMatching(/workers_dev = false .* turns that URL off/)]);
  });

  it("refuses an empty CORS_ORIGINS (no origin for the refresh cookie) and an APP_URL whose origin it does not list", () => {
    expect(check((c) => (c.vars.CORS_ORIGINS = ""))).toEqual([expect.stringMatching(/^CORS_ORIGINS is empty.*refresh cookie.*APP_URL/)]);
    expect(check((c) => (c.vars.CORS_ORIGINS = " , "))).toEqual([expect.stringMatching(/^CORS_ORIGINS is empty/)]);
    expect(check((c) => (c.vars.APP_URL = "https://www.example.com/account"))).toEqual([
      expect.stringMatching(
        /^APP_URL is on https:\/\/www\.example\.com, which CORS_ORIGINS \(https:\/\/app\.example\.com\) does not list.*Add https:\/\/www\.example\.com to CORS_ORIGINS/,
      ),
    ]);
    // Another port is another origin.
    expect(check((c) => (c.vars.APP_URL = "https://app.example.com:8443/"))).toHaveLength(1);
    // Any listed origin will do, with any path, query or fragment on the page.
    expect(check((c) => ((c.vars.CORS_ORIGINS = "https://admin.example.com,https://app.example.com"), (c.vars.WEBAUTHN_RP_ID = "example.com")))).toEqual([]);
    expect(check((c) => (c.vars.APP_URL = "https://app.example.com/auth/complete?from=mail"))).toEqual([]);
  });

  it("approximates a host's site by its registrable domain", () => {
    expect(siteOf("auth.example.com")).toBe("example.com");
    expect(siteOf("example.com")).toBe("example.com");
    expect(siteOf("edge-auth-api.alice.workers.dev")).toBe("alice.workers.dev");
    expect(siteOf("my-app.pages.dev")).toBe("my-app.pages.dev");
    expect(siteOf("a.b.shop.co.uk")).toBe("shop.co.uk");
    expect(siteOf("App.Example.COM.")).toBe("example.com");
  });

  it("refuses a sample MAIL_FROM: no mail is sent from a domain reserved for examples", () => {
    for (const from of ["no-reply@example.com", "auth@mail.example.org", "me@example.net", "x@shop.test", "x@foo.example", "x@localhost"]) {
      expect(
        check((c) => (c.vars.MAIL_FROM = from)),
        from,
      ).toEqual([expect.stringMatching(/^MAIL_FROM is ".+", a sample address.*Email Sending/)]);
    }
    expect(check((c) => (c.vars.MAIL_FROM = "no-reply@example.company.com"))).toEqual([]);
    expect(check((c) => (c.vars.MAIL_FROM = "no-reply@myexample.com"))).toEqual([]);
  });

  it("names the fix for each mistake", () => {
    expect(check((c) => (c.vars.ISSUER = ""))).toEqual([expect.stringMatching(/ISSUER is empty/)]);
    expect(check((c) => (c.vars.ISSUER = "http://auth.example.com"))).toEqual([expect.stringMatching(/https origin/)]);
    expect(check((c) => issuerAt(c, "https://auth.example.com/"))).toEqual([expect.stringMatching(/https origin/)]);
    expect(check((c) => delete c.d1_databases[0].database_id)).toEqual([expect.stringMatching(/database_id.*wrangler d1 create edge-auth/)]);
    expect(check((c) => (c.kv_namespaces = []))).toEqual([expect.stringMatching(/kv namespace create REVOKED/)]);
    expect(check((c) => (c.vars.CORS_ORIGINS = "https://app.example.com, http://localhost:5173"))).toEqual([
      expect.stringMatching(/https origins.*http:\/\/localhost:5173/),
    ]);
    expect(check((c) => (c.vars.PASSWORD_ITERATIONS = "600000"))).toEqual([expect.stringMatching(/at most 100000/)]);
    expect(check((c) => (c.vars.WEBAUTHN_ORIGINS = "http://app.example.com"))).toEqual([expect.stringMatching(/WEBAUTHN_ORIGINS must list https/)]);
  });

  it("ships the frequent trigger the key ring runs on, and a daily one for housekeeping", () => {
    expect(committed.triggers.crons).toContain(FREQUENT);
    expect(committed.triggers.crons.filter((c: string) => c !== FREQUENT)).toHaveLength(1);
  });

  it("refuses a configuration without the mail queue the code sends to and consumes, or with fewer retries than the consumer makes", () => {
    expect(committed.queues.producers).toEqual([expect.objectContaining({ binding: "MAIL_QUEUE", queue: "edge-auth-mail" })]);
    expect(committed.queues.consumers).toEqual([expect.objectContaining({ queue: "edge-auth-mail" })]);
    const missing = /^The mail queue is missing: .*wrangler queues create edge-auth-mail/;
    expect(check((c) => delete c.queues)).toEqual([expect.stringMatching(missing)]);
    expect(check((c) => (c.queues = { producers: c.queues.producers }))).toEqual([expect.stringMatching(missing)]);
    expect(check((c) => (c.queues = { ...c.queues, consumers: [{ queue: "another-queue" }] }))).toEqual([expect.stringMatching(missing)]);
    expect(check((c) => (c.queues = { ...c.queues, consumers: [{ queue: "edge-auth-mail", max_retries: 2 }] }))).toEqual([
      expect.stringMatching(/max_retries must be at least 5/),
    ]);
    expect(PREFLIGHT_ATTEMPTS).toBe(MAIL_ATTEMPTS);
  });

  it("refuses a key ring that could sign with a key verifiers lack, and a signing secret wrangler would not require", () => {
    expect(good.vars.SIGNING_KEYS).toBe("rotating");
    expect(check((c) => (c.vars.KEY_PROPAGATION = "119"))).toEqual([expect.stringMatching(/^KEY_PROPAGATION must be at least 120 seconds/)]);
    expect(check((c) => (c.vars.KEY_PROPAGATION = "120"))).toEqual([]);
    // The manual path does not use the ring's windows, but needs its own secret required.
    expect(check((c) => ((c.vars.SIGNING_KEYS = "secret"), (c.vars.KEY_PROPAGATION = "0")))).toEqual([
      expect.stringMatching(/SIGNING_KEYS is "secret": add JWT_PRIVATE_KEY to \[secrets\] required/),
    ]);
    expect(check((c) => ((c.vars.SIGNING_KEYS = "secret"), (c.secrets = { required: ["JWT_PRIVATE_KEY", "PASSWORD_PEPPER"] })))).toEqual([]);
    expect(check((c) => (c.secrets = { required: ["PASSWORD_PEPPER"] }))).toEqual([expect.stringMatching(/add JWT_WRAPPING_KEY to \[secrets\] required/)]);
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

  it("checks the social sign-in providers: a valid list, no local address, and prints each callback URL", () => {
    const google = { id: "google", kind: "google", client_id: "123.apps.googleusercontent.com" };
    const github = { id: "github", kind: "github", client_id: "Iv1.abc" };
    expect(check((c) => (c.vars.OAUTH_PROVIDERS = JSON.stringify([google, github])))).toEqual([]);
    const local = { id: "local", kind: "oidc", issuer: "http://127.0.0.1:9100", client_id: "edge-auth-local" };
    expect(check((c) => (c.vars.OAUTH_PROVIDERS = JSON.stringify([local])))).toEqual([expect.stringMatching(/provider local has issuer .* cannot reach/)]);
    expect(check((c) => (c.vars.OAUTH_PROVIDERS = JSON.stringify([{ id: "x", kind: "facebook", client_id: "1" }])))).toEqual([
      expect.stringMatching(/^In \[vars\], OAUTH_PROVIDERS/),
    ]);
    expect(check((c) => (c.vars.OAUTH_PROVIDERS = "not json"))).toEqual([expect.stringMatching(/OAUTH_PROVIDERS.*not JSON/)]);
    // Their secrets must be a required secret, or wrangler deploys without them and the providers are off.
    const undeclared = (c: any) => {
      c.vars.OAUTH_PROVIDERS = JSON.stringify([google, github]);
      c.secrets = { required: c.secrets.required.filter((s: string) => s !== "OAUTH_CLIENT_SECRETS") };
    };
    expect(check(undeclared)).toEqual([
      expect.stringMatching(/^OAUTH_PROVIDERS lists google, github, but OAUTH_CLIENT_SECRETS is not in \[secrets\] required/),
    ]);
    // Without providers a deployment may leave it out.
    expect(check((c) => (c.secrets = { required: c.secrets.required.filter((s: string) => s !== "OAUTH_CLIENT_SECRETS") }))).toEqual([]);
    const config = structuredClone(good);
    config.vars.OAUTH_PROVIDERS = JSON.stringify([google, github]);
    expect(callbackUrls(config)).toEqual([`google: ${good.vars.ISSUER}/oauth/google/callback`, `github: ${good.vars.ISSUER}/oauth/github/callback`]);
  });
});

describe("the GitHub Actions deploy workflow", () => {
  const workflow = readFileSync(".github/workflows/deploy.yml", "utf8");
  const scripts = JSON.parse(readFileSync("package.json", "utf8")).scripts as Record<string, string>;

  it("checks, tests, then deploys, with scripts that exist", () => {
    const runs = [...workflow.matchAll(/^\s+(?:- )?run: (.+)$/gm)].map((m) => m[1]!.trim());
    expect(runs).toEqual(["npm ci", "npm run deploy:check", "npm test", "npm run deploy"]);
    expect(scripts["deploy:check"]).toBe("node scripts/deploy.mjs --check");
    expect(scripts.deploy).toBe("node scripts/deploy.mjs");
  });

  it("authenticates wrangler with the token and account id, and is skipped where they are not set up", () => {
    expect(workflow).toMatch(/^ +CLOUDFLARE_API_TOKEN: \$\{\{ secrets\.CLOUDFLARE_API_TOKEN \}\}$/m);
    expect(workflow).toMatch(/^ +CLOUDFLARE_ACCOUNT_ID: \$\{\{ vars\.CLOUDFLARE_ACCOUNT_ID \}\}$/m);
    expect(workflow).toMatch(/^ {4}if: \$\{\{ vars\.CLOUDFLARE_ACCOUNT_ID != '' \}\}$/m);
    expect(workflow).toMatch(/cancel-in-progress: false/); // a deploy is never cut off halfway through its migrations
  });
});
