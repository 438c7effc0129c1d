// `npm run deploy`: checks the configuration first (scripts/preflight.mjs) and refuses to upload one
// that would fail at run time; then applies the migrations to the remote D1 and deploys. Extra
// flags go to `wrangler deploy` (e.g. --secrets-file on the first deploy).
import { spawnSync } from "node:child_process";
import { unstable_readConfig } from "wrangler";
import { preflight } from "./preflight.mjs";

const problems = preflight(unstable_readConfig({ config: "wrangler.toml" }));
if (problems.length) {
  console.error(`deploy: not deploying; wrangler.toml needs ${problems.length === 1 ? "one fix" : `${problems.length} fixes`}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  process.exit(1);
}
const run = (args) => {
  const r = spawnSync("wrangler", args, { stdio: "inherit", shell: process.platform === "win32", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
run(["d1", "migrations", "apply", "DB", "--remote"]);
run(["deploy", ...process.argv.slice(2)]);
