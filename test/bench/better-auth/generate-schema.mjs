// Writes schema.sql, better-auth's tables for the bench's peer (options.ts), with better-auth's own
// migration generator (getMigrations, what its CLI's `generate` runs for a Kysely database) against an
// empty in-memory SQLite. Run once after changing options.ts or better-auth's version, and commit:
//   node test/bench/better-auth/generate-schema.mjs
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath, pathToFileURL } from "node:url";
import { getMigrations } from "better-auth/db/migration";
import { build } from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
// Beside options.ts, so its packages resolve from the project's node_modules; removed after.
const outfile = path.join(here, `.options-${process.pid}.mjs`);
await build({ entryPoints: [path.join(here, "options.ts")], bundle: true, format: "esm", platform: "node", outfile, logLevel: "silent", packages: "external" });
const { peerOptions } = await import(pathToFileURL(outfile).href).finally(() => rmSync(outfile));
const { compileMigrations } = await getMigrations({ ...peerOptions("scrypt", 1), database: new DatabaseSync(":memory:") });
const { version } = JSON.parse(readFileSync(path.join(here, "../../../node_modules/better-auth/package.json"), "utf8"));
writeFileSync(
  path.join(here, "schema.sql"),
  `-- better-auth ${version}'s tables for test/bench/better-auth/options.ts: written by generate-schema.mjs.\n${await compileMigrations()}\n`,
);
