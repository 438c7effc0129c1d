// First-run setup for `npm run dev`, safe to run every time:
// 1. writes a key to seal the signing key ring with, a pepper, an MFA encryption key, an empty
//    OAUTH_CLIENT_SECRETS and localhost ISSUER / CORS_ORIGINS into .dev.vars (gitignored; it
//    overrides wrangler.toml [vars]) unless each is already there (a pepper shorter than config.ts
//    takes, from an older setup, moves to PASSWORD_PEPPER_PREVIOUS and a new one is written);
// 2. applies pending migrations to the local D1 database;
// 3. puts the Worker's static assets (the API reference's script) into .assets/ (scripts/assets.mjs).

import { spawnSync } from "node:child_process";
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { buildAssets } from "./assets.mjs";
import { newMfaKey, newPepper, newWrappingKey } from "./keys.mjs";

buildAssets();

const file = new URL("../.dev.vars", import.meta.url);
let current = existsSync(file) ? readFileSync(file, "utf8") : "";

// A pepper shorter than config.ts now takes (32 bytes, base64url): it becomes PASSWORD_PEPPER_PREVIOUS
// and a new one is written, so the local users' passwords still sign in (and are rehashed under the
// new pepper). scripts/dev.mjs passes the _PREVIOUS secrets to wrangler dev.
const pepperLine = /^PASSWORD_PEPPER\s*=\s*['"]?([^'"\n]*)['"]?\s*$/m.exec(current);
if (pepperLine && !/^[A-Za-z0-9_-]{43,}$/.test(pepperLine[1]) && !/^PASSWORD_PEPPER_PREVIOUS\s*=/m.test(current)) {
  current = current.replace(pepperLine[0], `PASSWORD_PEPPER_PREVIOUS='${pepperLine[1]}'\nPASSWORD_PEPPER='${newPepper()}'`);
  writeFileSync(file, current);
  console.log("dev-setup: moved the short PASSWORD_PEPPER in .dev.vars to PASSWORD_PEPPER_PREVIOUS and wrote a new one");
}
const has = (name) => new RegExp(`^${name}\\s*=`, "m").test(current);

const lines = [];
// The ring (SIGNING_KEYS = "rotating") makes its own signing keys; a JWT_PRIVATE_KEY an older setup
// wrote stays, and the ring starts from it.
if (!has("JWT_WRAPPING_KEY")) lines.push(`JWT_WRAPPING_KEY='${newWrappingKey()}'`);
if (!has("PASSWORD_PEPPER")) lines.push(`PASSWORD_PEPPER='${newPepper()}'`);
if (!has("MFA_ENCRYPTION_KEY")) lines.push(`MFA_ENCRYPTION_KEY='${newMfaKey()}'`);
if (!has("ISSUER")) lines.push("ISSUER='http://localhost:8787'");
if (!has("CORS_ORIGINS")) lines.push("CORS_ORIGINS='http://localhost:5173'");
if (!has("API_DOCS")) lines.push("API_DOCS='on'");
if (!has("APP_URL")) lines.push("APP_URL='http://localhost:5173/'");
// Social sign-in's secrets (none until `npm run idp` or a real provider: replace this line then).
if (!has("OAUTH_CLIENT_SECRETS")) lines.push("OAUTH_CLIENT_SECRETS='{}'");
if (lines.length) {
  const prefix = current && !current.endsWith("\n") ? "\n" : "";
  appendFileSync(file, `${prefix}# Local development settings, written by scripts/dev-setup.mjs. Never commit.\n${lines.join("\n")}\n`);
  console.log(`dev-setup: wrote ${lines.map((l) => l.split("=")[0]).join(", ")} to .dev.vars`);
}

// CI=true makes wrangler take "yes" for its confirmation prompt instead of waiting at a terminal.
// Its tables of migrations are kept for a failure; otherwise one line says what happened (read from
// its "About to apply N" line, so its log level is set here whatever the developer's is).
const migrate = spawnSync("wrangler", ["d1", "migrations", "apply", "DB", "--local"], {
  encoding: "utf8",
  shell: process.platform === "win32",
  env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", WRANGLER_LOG: "log" },
});
if (migrate.status !== 0) {
  process.stdout.write(migrate.stdout ?? "");
  process.stderr.write(migrate.stderr ?? "");
  console.error(`dev: migrations failed (wrangler exited ${migrate.status ?? migrate.error}); its output is above`);
  process.exit(migrate.status ?? 1);
}
const applied = /About to apply (\d+) migration/.exec(migrate.stdout)?.[1];
console.log(applied ? `dev: migrations: applied ${applied} to the local database` : "dev: migrations: the local database is up to date");

// A new signing key and pepper with users already in the local database: their passwords can no
// longer be checked (the pepper is gone), and their names are taken. Say so, and how to start over.
if (lines.some((l) => l.startsWith("PASSWORD_PEPPER"))) {
  const count = spawnSync("wrangler", ["d1", "execute", "DB", "--local", "--json", "--command", "SELECT count(*) AS n FROM users"], {
    encoding: "utf8",
    shell: process.platform === "win32",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  const users = count.status === 0 ? (JSON.parse(count.stdout)[0]?.results?.[0]?.n ?? 0) : 0;
  if (users > 0) {
    console.warn(
      `\ndev-setup: WARNING: .dev.vars has a new pepper and key, but the local database already has ${users} user(s).\n` +
        "  Their passwords were hashed with the old pepper: every login will be invalid_credentials, and their\n" +
        "  usernames stay taken. To start clean, stop `npm run dev`, then run `npm run dev:reset`\n" +
        "  (fresh local D1, KV and .dev.vars).\n",
    );
  }
}
