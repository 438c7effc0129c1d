import { z } from "zod";
import { ACCESS_SECRETS, accessFields } from "./config-access";
import { type ConfiguredClient, clientListStrict, clientsConfig } from "./config-clients";
import { orgRolesSchema } from "./config-orgs";
import { providerListStrict, type SocialConfig, socialConfig } from "./config-providers";
import { fromBase64Url } from "./encoding";
import { log } from "./log";

/** Production Workers refuse PBKDF2 above this count; local workerd does not (auth/core/passwords.ts enforces it). */
export const MAX_PASSWORD_ITERATIONS = 100_000;

const isJson = (s: string) => {
  if (s === "") return true; // reported as "is required"
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
};

const seconds = (fallback: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(fallback);

const aesKey = (keygen: string) =>
  z.preprocess(
    (v) => (v === "" ? undefined : v),
    z
      .string()
      .refine((s) => fromBase64Url(s)?.length === 32, `must be 32 random bytes, base64url (npm run -s keygen ${keygen})`)
      .optional(),
  );

// 32 random bytes or more, base64url (`openssl rand -hex 32` fits too): 43 characters at the least,
// so the pepper alone gives 128 bits and more. An older, shorter one goes to PASSWORD_PEPPER_PREVIOUS.
const pepper = z.preprocess(
  (v) => (v === "" ? undefined : v),
  z
    .string()
    .regex(
      /^[A-Za-z0-9_-]{43,}$/,
      "must be 32 random bytes or more, base64url: 43 characters at the least (npm run -s keygen pepper); move a shorter one to PASSWORD_PEPPER_PREVIOUS (docs/crypto.md)",
    )
    .optional(),
);

const origins = z
  .string()
  .default("")
  .transform((s) =>
    s
      .split(",")
      .map((o) => o.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.url().refine((o) => new URL(o).origin === o, "must be a bare origin like https://app.example.com")));

// A list in a var: separated by commas or spaces.
const words = z
  .string()
  .default("")
  .transform((s) => s.split(/[\s,]+/).filter(Boolean));

const ConfigFields = z.object({
  ISSUER: z.url(),
  AUDIENCE: z.string().min(1),
  ACCESS_TOKEN_TTL: seconds(900, 60, 86_400),
  REFRESH_TOKEN_TTL: seconds(2_592_000, 3_600, 31_536_000),
  CORS_ORIGINS: origins,
  // A rotated refresh token presented again within this many seconds is a racing tab, not theft.
  REFRESH_REUSE_GRACE: seconds(10, 0, 60),
  // A request whose answer was lost may be sent again within this many seconds and get the same
  // answer: a login's second step (the same client), a TOTP enable (the same recovery codes), a
  // passkey registration (the stored passkey).
  RETRY_GRACE: seconds(10, 0, 60),
  // Account lock after repeated failed logins: threshold, first lock, longest lock (seconds).
  LOGIN_LOCK_THRESHOLD: z.coerce.number().int().min(3).max(100).default(5),
  LOGIN_LOCK_BASE: seconds(30, 1, 3_600),
  LOGIN_LOCK_MAX: seconds(900, 1, 86_400),
  // Live sessions per user; a new login ends the oldest one beyond this.
  MAX_SESSIONS_PER_USER: z.coerce.number().int().min(1).max(1000).default(50),
  // Wrong passwords or codes in a session's step-up checks (auth/core/step-up.ts: changing the password or
  // the address, deleting the account, adding or removing a way in) before that session is signed
  // out: its own budget, apart from the login lock, so nobody else's failed logins can block the owner.
  STEP_UP_MAX_FAILURES: z.coerce.number().int().min(1).max(100).default(5),
  // Audit rows older than this are deleted by the daily cron.
  AUDIT_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
  // POST /register: "closed" answers 403 registration_closed (invite-only apps, or until the first
  // admin exists: register them, grant the role, then close).
  REGISTRATION: z.enum(["open", "closed"]).default("open"),
  // Mail: the sender, and the app page that completes each mailed link (empty: links cannot be made,
  // and the mail flows answer 500 config_invalid in the log). With REQUIRE_VERIFIED_EMAIL "on",
  // sign-up needs an address and sign-in a verified one.
  MAIL_FROM: z.email().default("no-reply@example.com"),
  APP_URL: z.union([z.literal(""), z.url()]).default(""),
  REQUIRE_VERIFIED_EMAIL: z.enum(["on", "off"]).default("off"),
  // With REQUIRE_VERIFIED_EMAIL on: days a new account has to prove its address before the cron
  // removes it (it never had a session) and frees the address.
  UNVERIFIED_ACCOUNT_DAYS: z.coerce.number().int().min(1).max(365).default(7),
  // Mail a third party can cause, per recipient and purpose in any 24 hours (auth/mail/budget.ts).
  MAIL_RECIPIENT_DAILY: z.coerce.number().int().min(1).max(100).default(5),
  // "on": one JSON log line per request (Workers Observability records every request anyway).
  LOG_REQUESTS: z.enum(["on", "off"]).default("off"),
  // GET /docs (the interactive API reference); GET /openapi.json is always served.
  API_DOCS: z.enum(["on", "off"]).default("off"),
  // SameSite of the refresh cookie; "None" only for an API on another site than the app.
  COOKIE_SAMESITE: z.enum(["Strict", "Lax", "None"]).default("Strict"),
  // Production Workers refuse PBKDF2 above 100,000 iterations; local workerd does not.
  PASSWORD_ITERATIONS: z.coerce.number().int().min(10_000).max(MAX_PASSWORD_ITERATIONS).default(MAX_PASSWORD_ITERATIONS),
  // Signing keys (docs/design.md "Signing keys"): "rotating" keeps a key ring in D1, sealed with the
  // secret JWT_WRAPPING_KEY and rotated by the cron every KEY_ROTATION_DAYS; "secret" signs with the
  // secret JWT_PRIVATE_KEY, rotated by hand. A ring started while JWT_PRIVATE_KEY is set takes that
  // key as its first, so moving from one to the other signs nobody out.
  SIGNING_KEYS: z.enum(["rotating", "secret"]).default("secret"),
  JWT_PRIVATE_KEY: z.preprocess(
    (v) => (v === "" ? undefined : v),
    z.string().refine(isJson, 'is not JSON (a private JWK, or a JWK set {"keys": [...]})').optional(),
  ),
  JWT_WRAPPING_KEY: aesKey("wrap"),
  KEY_ROTATION_DAYS: z.coerce.number().int().min(1).max(365).default(30),
  // How long verifiers may cache GET /.well-known/jwks.json (its Cache-Control max-age): a new key
  // is published at least this long (plus KEY_PROPAGATION) before it signs.
  JWKS_MAX_AGE: seconds(600, 1, 86_400),
  // How long a change of the ring takes to reach every location: KV's propagation (60 s or more) plus
  // each isolate's re-read (half of this, at most 60 s), with a minute's margin. Lower than 120 only
  // for a local test (the deploy check refuses it).
  KEY_PROPAGATION: seconds(180, 0, 3_600),
  PASSWORD_PEPPER: pepper,
  // Seals TOTP secrets at rest (auth/core/secrets.ts). Without it, everything but second factors works.
  MFA_ENCRYPTION_KEY: aesKey("mfa"),
  // The HMAC of new TOTP setups: "SHA1" (RFC 6238's default, what every authenticator app computes) or
  // "SHA256" (ASVS's approved HMAC; some apps ignore it and show codes that never match, so a setup
  // fails at its first code). Existing setups keep theirs (docs/crypto.md).
  TOTP_ALGORITHM: z.enum(["SHA1", "SHA256"]).default("SHA1"),
  // Second factors: the name authenticator apps and passkey prompts show; the WebAuthn relying
  // party id (a domain; empty: the host of the first allowed origin) and the page origins allowed to
  // use passkeys (empty: CORS_ORIGINS).
  APP_NAME: z.string().min(1).max(64).default("Edge Auth"),
  WEBAUTHN_RP_ID: z.string().default(""),
  WEBAUTHN_ORIGINS: origins,
  // How long a login's second step and a WebAuthn challenge stay usable.
  CHALLENGE_TTL: seconds(300, 30, 900),
  // Social sign-in (OAUTH_PROVIDERS, OAUTH_CLIENT_SECRETS) is read apart (config-providers.ts): a
  // fault there turns off that provider, not the API.
  // An account without a password proves a step-up by a sign-in this recent (seconds).
  STEP_UP_MAX_AGE: seconds(300, 60, 3_600),
  // While TOTP is on, what a mailbox alone asks to lower (a "this was not me" link removing TOTP, a
  // reset that would remove it) waits this long, announced, and a sign-in with a second factor
  // cancels it (auth/mail/recovery-holds.ts). Seven days by default; one day at the least.
  RECOVERY_DELAY: seconds(604_800, 86_400, 2_592_000),
  // The authorization server (docs/oauth-server.md): the scopes apps may ask for besides openid,
  // profile, email and offline_access; the resources (RFC 8707) their tokens may be for, besides a
  // client's own list; how long a request may wait for consent and a code for its exchange.
  OAUTH_SCOPES: words.pipe(
    z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,64}$/, "each scope must be 1-64 printable characters, no quote or backslash")),
  ),
  // The consent page's words for OAUTH_SCOPES, a JSON object from scope to description (one line, at most 200 characters).
  OAUTH_SCOPE_DESCRIPTIONS: z
    .string()
    .default("{}")
    .transform((s, ctx) => {
      try {
        return JSON.parse(s || "{}") as unknown;
      } catch {
        ctx.addIssue({ code: "custom", message: 'is not JSON: an object like {"notes:read": "Read your notes"}' });
        return z.NEVER;
      }
    })
    .pipe(z.record(z.string(), z.string().regex(/^[^\p{Cc}]{1,200}$/u, "each description must be 1-200 characters on one line"))),
  OAUTH_RESOURCES: words.pipe(z.array(z.url().refine((u) => !u.includes("#"), "must be an absolute URL without a fragment"))),
  OAUTH_REQUEST_TTL: seconds(600, 60, 3_600),
  OAUTH_CODE_TTL: seconds(60, 10, 600),
  // Dynamic client registration (RFC 7591, POST /oauth2/register): "closed", "open" to anyone, or
  // "token": with an initial access token whose SHA-256 (base64url) is in OAUTH_REGISTRATION_TOKENS
  // (`npm run -s keygen registration` makes one). A registration that gets no token within
  // OAUTH_UNUSED_CLIENT_TTL seconds lapses, and the daily cron removes it.
  OAUTH_REGISTRATION: z.enum(["closed", "open", "token"]).default("closed"),
  OAUTH_REGISTRATION_TOKENS: words.pipe(
    z.array(z.string().regex(/^[A-Za-z0-9_-]{43}$/, "each must be a SHA-256 in base64url (npm run -s keygen registration)")),
  ),
  OAUTH_UNUSED_CLIENT_TTL: seconds(86_400, 600, 2_592_000),
  // "on": a client_id that is an https URL is a client ID metadata document's (auth/oauth-server/
  // metadata-document.ts), fetched and cached; "off": such ids are unknown clients, and discovery
  // does not advertise them.
  OAUTH_CLIENT_METADATA_DOCUMENTS: z.enum(["on", "off"]).default("on"),
  // Organizations (docs/organizations.md): roles beyond owner, admin and member, and how long an invitation waits.
  ORG_ROLES: orgRolesSchema,
  INVITATION_TTL: seconds(604_800, 3_600, 2_592_000),
  // Mail sign-in, guests, the password policy, Turnstile, idle timeout, mandatory second factor, key rotation.
  ...accessFields,
  // Local dev only (src/dev-faults.ts): injected D1 and KV faults, switched by POST /dev/faults.
  DEV_FAULTS: z.enum(["on", "off"]).default("off"),
});

/** DEV_FAULTS is refused anywhere but on a loopback http ISSUER: a deployment can never inject faults. */
export const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;
const devFaultsProblem = (c: { DEV_FAULTS: string; ISSUER: string }) =>
  c.DEV_FAULTS === "on" && !(c.ISSUER.startsWith("http://") && LOOPBACK.test(new URL(c.ISSUER).hostname))
    ? 'must be "off" unless ISSUER is an http URL on a loopback host (local dev only)'
    : null;

/** A description for a scope OAUTH_SCOPES does not list is a typo: refused at deploy and at start. */
const undescribable = (c: Pick<Config, "OAUTH_SCOPES" | "OAUTH_SCOPE_DESCRIPTIONS">) =>
  Object.keys(c.OAUTH_SCOPE_DESCRIPTIONS).filter((scope) => !c.OAUTH_SCOPES.includes(scope));
const undescribableMessage = (scopes: string[]) => `describes ${scopes.join(", ")}, not in OAUTH_SCOPES`;

const ConfigSchema = ConfigFields.superRefine((c, ctx) => {
  const stray = undescribable(c);
  if (devFaultsProblem(c)) ctx.addIssue({ code: "custom", path: ["DEV_FAULTS"], message: devFaultsProblem(c)! });
  if (stray.length) ctx.addIssue({ code: "custom", path: ["OAUTH_SCOPE_DESCRIPTIONS"], message: undescribableMessage(stray) });
  if (c.OAUTH_REGISTRATION === "token" && c.OAUTH_REGISTRATION_TOKENS.length === 0)
    ctx.addIssue({ code: "custom", path: ["OAUTH_REGISTRATION_TOKENS"], message: 'is required (OAUTH_REGISTRATION is "token")' });
  if (c.OAUTH_RESOURCES.includes(c.AUDIENCE))
    ctx.addIssue({ code: "custom", path: ["OAUTH_RESOURCES"], message: "must not hold AUDIENCE: the API's own tokens are never an app's" });
  // An app refreshes when its access token runs out: a shorter idle timeout would refuse every refresh.
  if (c.REFRESH_IDLE_TTL <= c.ACCESS_TOKEN_TTL)
    ctx.addIssue({
      code: "custom",
      path: ["REFRESH_IDLE_TTL"],
      message: "must be longer than ACCESS_TOKEN_TTL (a refresh comes when the access token runs out)",
    });
  if (c.SIGNING_KEYS === "secret" && !c.JWT_PRIVATE_KEY)
    ctx.addIssue({ code: "custom", path: ["JWT_PRIVATE_KEY"], message: "is required (SIGNING_KEYS is secret)" });
  // A guest has no address to prove: with every address proved before sign-in, it could never hold a session.
  if (c.GUESTS === "on" && c.REQUIRE_VERIFIED_EMAIL === "on")
    ctx.addIssue({ code: "custom", path: ["GUESTS"], message: 'must be "off" while REQUIRE_VERIFIED_EMAIL is "on" (a guest has no address to verify)' });
  // A guest becomes a member by adding an address and a password: sign-up by another door.
  if (c.GUESTS === "on" && c.REGISTRATION === "closed")
    ctx.addIssue({ code: "custom", path: ["GUESTS"], message: 'must be "off" while REGISTRATION is "closed" (a guest\'s upgrade is a sign-up)' });
  if (c.SIGNING_KEYS === "rotating" && !c.JWT_WRAPPING_KEY) {
    ctx.addIssue({ code: "custom", path: ["JWT_WRAPPING_KEY"], message: "is required (SIGNING_KEYS is rotating; npm run -s keygen wrap)" });
  }
});

// OAUTH_CLIENTS (clients declared in configuration) is read apart too (config-clients.ts): a fault
// there turns off the client it concerns.
export type Config = z.infer<typeof ConfigSchema> & SocialConfig & { OAUTH_CLIENTS: ConfiguredClient[] };
export type { ConfiguredClient } from "./config-clients";
export type { ProviderConfig } from "./config-providers";

/** The domain's rules on vars that parsed (the deploy check passes auth/oauth-server/client-declarations.ts's): config never imports the domain. */
export type VarRules = (vars: Pick<Config, "OAUTH_SCOPES" | "AUDIENCE" | "OAUTH_CLIENTS">) => string[];

/**
 * What is wrong with a set of non-secret vars, as the Worker would judge them: `npm run deploy`
 * refuses to upload them (scripts/preflight.mjs). One message per problem, naming the var.
 */
export function checkVars(vars: Record<string, unknown>, rules?: VarRules): string[] {
  // Strict on OAUTH_PROVIDERS and OAUTH_CLIENTS' shape: a deployment must not ship a provider or client
  // the Worker would turn off.
  const parsed = ConfigFields.omit({
    JWT_PRIVATE_KEY: true,
    JWT_WRAPPING_KEY: true,
    PASSWORD_PEPPER: true,
    MFA_ENCRYPTION_KEY: true,
    ...ACCESS_SECRETS,
  })
    .extend({ OAUTH_PROVIDERS: providerListStrict, OAUTH_CLIENTS: clientListStrict })
    .safeParse(vars);
  if (!parsed.success) return parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  const stray = undescribable(parsed.data);
  const problems = [...(stray.length ? [`OAUTH_SCOPE_DESCRIPTIONS: ${undescribableMessage(stray)}`] : []), ...(rules ? rules(parsed.data) : [])];
  const faults = devFaultsProblem(parsed.data);
  return faults ? [...problems, `DEV_FAULTS: ${faults}`] : problems;
}

/** The app's origins: CORS_ORIGINS and APP_URL's. */
export const appOrigins = (config: Config) => new Set([...config.CORS_ORIGINS, ...(config.APP_URL ? [new URL(config.APP_URL).origin] : [])]);

/** Thrown when vars or secrets are missing or invalid; names the keys, never the values. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join("; ")}`);
    this.name = "ConfigError";
  }
}

const cache = new WeakMap<object, Config>();

/**
 * Parses vars and secrets once per isolate (per env object) and fails loudly when they are wrong.
 * Social sign-in's and OAUTH_CLIENTS' faults fail only what they touch: they are logged here
 * (config_invalid, once per isolate); the providers they concern answer provider_unavailable, the
 * clients are unknown.
 */
export function getConfig(env: Env): Config {
  let config = cache.get(env);
  if (!config) {
    const parsed = ConfigSchema.safeParse(env);
    if (!parsed.success) {
      throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`));
    }
    const { problems, ...social } = socialConfig(env);
    if (problems.length) log("config_invalid", { problems, effect: "social sign-in: the providers named are off; everything else works" }, "error");
    const clients = clientsConfig(env);
    if (clients.problems.length) log("config_invalid", { problems: clients.problems, effect: "the clients named are off; everything else works" }, "error");
    config = { ...parsed.data, ...social, OAUTH_CLIENTS: clients.OAUTH_CLIENTS };
    cache.set(env, config);
  }
  return config;
}
