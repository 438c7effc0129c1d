import { availableParallelism } from "node:os";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { exportJWK, generateKeyPair } from "jose";
import { defineConfig } from "vitest/config";
import { unstable_readConfig } from "wrangler";
import { buildAssets } from "../scripts/assets.mjs";
import { buildDist } from "../scripts/client.mjs";
import { startClientDocuments } from "../scripts/client-documents.mjs";
import { startLocalIdp } from "../scripts/identity-providers.mjs";
import { startStandInsProcess } from "../scripts/stand-ins.mjs";

const root = path.resolve(import.meta.dirname, "..");

export default defineConfig(async () => {
  // Tests sign with their own throwaway key. Wrangler still opens .dev.vars beside wrangler.toml,
  // but takes from it only names that are set explicitly below, so nothing in it reaches a test;
  // its log level quiets the "Using secrets defined in ..." line it would print once per test file.
  process.env.WRANGLER_SEND_METRICS ??= "false";
  process.env.WRANGLER_LOG ??= "warn";
  // wrangler.toml's [assets] directory must exist (the API reference's script; test/meta.test.ts serves it).
  buildAssets();
  // The client's tests import "../client", which resolves to its package's build, client/dist/ (not committed).
  await buildDist();
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: "test-key-1", alg: "ES256" };
  const secrets = {
    JWT_PRIVATE_KEY: JSON.stringify(jwk),
    PASSWORD_PEPPER: "dGVzdC1wZXBwZXItMDEyMzQ1Njc4OWFiY2RlZjAxMjM", // 32 bytes, base64url: the floor config.ts sets
    MFA_ENCRYPTION_KEY: "dGVzdC1tZmEta2V5LTAxMjM0NTY3ODlhYmNkZWYwMTI",
    JWT_WRAPPING_KEY: "dGVzdC13cmFwLWtleS0wMTIzNDU2Nzg5YWJjZGVmMDE",
  };
  // The environment copy only quiets wrangler's "missing required secrets" check.
  Object.assign(process.env, secrets);
  // Every var is passed explicitly, so a developer's .dev.vars can never change what tests see:
  // wrangler.toml's values, with the settings a deployment edits (and commits, for CI to deploy) put
  // back to what this repository ships, plus the local issuer, origin and app page.
  const { vars } = unstable_readConfig({ config: path.join(root, "wrangler.toml") });
  // Real identity providers on loopback for the social sign-in tests (test/social.test.ts): the
  // local oidc-provider, a crafted OpenID issuer, a GitHub stand-in. The server does not keep the
  // test run alive (unref); it ends with this process.
  const issuer = "http://localhost:8787";
  const idp = await startLocalIdp({ redirectUris: ["local", "crafted", "github"].map((id) => `${issuer}/oauth/${id}/callback`), unref: true });
  const oauthProviders = [
    { id: "local", kind: "oidc", name: "Local IdP", issuer: idp.oidc, client_id: idp.clientId },
    { id: "crafted", kind: "oidc", issuer: idp.crafted, client_id: idp.clientId },
    // The crafted issuer's twin that lists `none` and promises RFC 9207's `iss`; one whose metadata names another issuer.
    { id: "lax", kind: "oidc", issuer: idp.lax, client_id: idp.clientId },
    { id: "impostor", kind: "oidc", issuer: idp.impostor, client_id: idp.clientId },
    { id: "github", kind: "github", client_id: idp.clientId, server: idp.github, api: `${idp.github}/api` },
    // Unreachable: nothing listens at the issuer; the issuer's discovery works but its token endpoint does not answer.
    { id: "down", kind: "oidc", issuer: idp.down, client_id: idp.clientId },
    { id: "deaf", kind: "oidc", issuer: idp.deaf, client_id: idp.clientId },
  ];
  // Client ID metadata documents on loopback (test/oauth-client-documents.test.ts): good ones and hostile ones.
  const clientDocuments = await startClientDocuments({ unref: true });
  // Pwned Passwords' range API and Turnstile's siteverify on loopback (scripts/stand-ins.mjs): every
  // new password in the suite is checked in "refuse" mode, one loopback fetch each. In a process of
  // their own: this one is busy transforming modules, and a range query must not wait on it.
  const standIns = await startStandInsProcess();
  const oauthSecrets = JSON.stringify(Object.fromEntries(oauthProviders.map((p) => [p.id, idp.clientSecret])));
  process.env.OAUTH_CLIENT_SECRETS = oauthSecrets;
  const testVars = {
    ...vars,
    ISSUER: issuer,
    CORS_ORIGINS: "http://localhost:5173",
    APP_URL: "http://localhost:5173/",
    MAIL_FROM: "no-reply@example.com",
    WEBAUTHN_RP_ID: "",
    WEBAUTHN_ORIGINS: "",
    COOKIE_SAMESITE: "Strict",
    APP_NAME: "Edge Auth",
    REGISTRATION: "open",
    REQUIRE_VERIFIED_EMAIL: "off",
    API_DOCS: "off",
    LOG_REQUESTS: "off",
    OAUTH_PROVIDERS: JSON.stringify(oauthProviders),
    STEP_UP_MAX_AGE: "300",
    // The bulk of the suite signs with JWT_PRIVATE_KEY: the ring's own re-reads of KV and D1 would
    // land inside the tests that count round trips or make a binding fail once. The ring is tested
    // on its own (test/signing-keys.test.ts), with SIGNING_KEYS = "rotating" per request.
    SIGNING_KEYS: "secret",
    // Nothing on the internet is reachable from a test: the stand-ins answer instead.
    PWNED_PASSWORDS: "refuse",
    PWNED_PASSWORDS_URL: standIns.pwned("suite"),
    TURNSTILE_VERIFY_URL: standIns.siteverify(),
  };

  return {
    root,
    // As wrangler.toml's [alias] does for the Worker: the suite runs the same lean `z` (src/zod.ts).
    resolve: { alias: [{ find: /^zod$/, replacement: path.join(root, "src/zod.ts") }] },
    plugins: [
      cloudflareTest({
        wrangler: { configPath: path.join(root, "wrangler.toml") },
        miniflare: {
          bindings: {
            ...testVars,
            ...secrets,
            OAUTH_CLIENT_SECRETS: oauthSecrets,
            TEST_MIGRATIONS: await readD1Migrations(path.join(root, "drizzle")),
            TEST_CLIENT_DOCUMENTS: clientDocuments.origin,
            TEST_STAND_INS: standIns.origin,
          },
        },
      }),
    ],
    test: {
      include: ["test/**/*.test.ts"],
      // test/node/ runs under Node (its own config): the OpenAPI validator needs the file system and Ajv.
      exclude: ["test/node/**", "**/node_modules/**"],
      setupFiles: ["test/setup.ts"],
      // Two files at a time at the least: each runs in a workerd of its own (its own D1, KV and rate
      // limits), and while one computes in workerd the other's modules are transformed here. Vitest's
      // default, one core fewer than the machine has, is one at a time on a 2-core machine (a quarter slower).
      maxWorkers: Math.max(2, availableParallelism() - 1),
      // Request logs are one JSON line each; show them only for failing tests.
      silent: "passed-only",
    },
  };
});
