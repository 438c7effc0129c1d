// `npm run deploy`: checks the configuration first (scripts/preflight.mjs) and refuses to upload one
// that would fail at run time; then applies the migrations to the remote D1 and deploys. Extra
// flags go to wrangler (e.g. --secrets-file on the first deploy; -c/--config and -e/--env are
// honoured by the check and by the migrations too). With --check it only checks.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { unstable_readConfig } from "wrangler";
import { buildAssets } from "./assets.mjs";
import { callbackUrls, preflight } from "./preflight.mjs";

const args = process.argv.slice(2);
const flag = (...names) => {
  const i = args.findIndex((a) => names.includes(a) || names.some((n) => a.startsWith(`${n}=`)));
  return i < 0 ? undefined : args[i].includes("=") ? args[i].split("=").slice(1).join("=") : args[i + 1];
};
const configPath = flag("-c", "--config") ?? "wrangler.toml";
const envName = flag("-e", "--env");
const scoped = [...(configPath !== "wrangler.toml" ? ["--config", configPath] : []), ...(envName ? ["--env", envName] : [])];

// The Worker's own check of its vars (src/config.ts), with the rules clients declared in OAUTH_CLIENTS
// meet (src/auth/oauth-server/client-declarations.ts), bundled for Node on the spot.
const dir = mkdtempSync(path.join(tmpdir(), "deploy-check-"));
let checkVars;
let declarationProblems;
try {
  await build({
    entryPoints: { config: "src/config.ts", declarations: "src/auth/oauth-server/client-declarations.ts" },
    bundle: true,
    format: "esm",
    platform: "node",
    outdir: dir,
    outExtension: { ".js": ".mjs" },
    logLevel: "silent",
  });
  ({ checkVars } = await import(pathToFileURL(path.join(dir, "config.mjs")).href));
  ({ declarationProblems } = await import(pathToFileURL(path.join(dir, "declarations.mjs")).href));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const config = unstable_readConfig({ config: configPath, env: envName });
const problems = preflight(config, (vars) => checkVars(vars, declarationProblems));
if (problems.length) {
  console.error(
    `deploy: not deploying; ${configPath} needs ${problems.length === 1 ? "one fix" : `${problems.length} fixes`}:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
  );
  process.exit(1);
}
// `npm run deploy:check`: the check alone (CI runs it before the tests, so a bad config fails fast).
// Social sign-in: the URL each provider must have registered, and the secret the Worker needs.
for (const line of callbackUrls(config)) console.log(`deploy: sign-in provider ${line} (register it at the provider; its secret in OAUTH_CLIENT_SECRETS)`);
if (args.includes("--check")) {
  console.log(`deploy: ${configPath} passes the check`);
  process.exit(0);
}
const run = (wranglerArgs) => {
  const r = spawnSync("wrangler", wranglerArgs, {
    stdio: "inherit",
    shell: process.platform === "win32",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
buildAssets(); // wrangler uploads .assets/ with the Worker (the API reference's script)
run(["d1", "migrations", "apply", "DB", "--remote", ...scoped]);
run(["deploy", ...args]);
