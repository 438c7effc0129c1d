// `npm run docs:check`: runs the README's walkthrough (between the walkthrough markers), top to
// bottom in bash, twice, against a fresh API on a port of its own; fails on the first command that fails.
// Needs bash, curl and jq.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { root, start, stop, waitFor } from "./servers.mjs";

const readme = readFileSync(path.join(root, "README.md"), "utf8");
const section = /<!-- walkthrough:start -->([\s\S]*?)<!-- walkthrough:end -->/.exec(readme)?.[1];
const script = [...(section ?? "").matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).join("\n");
if (!script.trim()) {
  console.error("docs:check: no walkthrough found in README.md");
  process.exit(1);
}

const API = "http://localhost:8792";
const state = mkdtempSync(path.join(tmpdir(), "docs-check-"));
const env = { ...process.env, PATH: path.join(root, "node_modules", ".bin") + path.delimiter + process.env.PATH, CI: "true", WRANGLER_SEND_METRICS: "false" };
let status = 1;
try {
  spawnSync(process.execPath, ["scripts/dev-setup.mjs"], { cwd: root, stdio: "ignore", env });
  const migrate = spawnSync("wrangler", ["d1", "migrations", "apply", "DB", "--local", "--persist-to", state], {
    cwd: root,
    env,
    encoding: "utf8",
    shell: process.platform === "win32",
  });
  if (migrate.status !== 0) throw new Error(`migrations failed:\n${migrate.stdout}${migrate.stderr}`);
  start("wrangler", ["dev", "--port", "8792", "--persist-to", state, "--var", `ISSUER:${API}`], { quiet: true });
  await waitFor(`${API}/health`, "the API");
  // Twice against the same API: the README promises it can be run again as it is.
  for (const round of [1, 2]) {
    const run = spawnSync("bash", ["-euo", "pipefail", "-c", script], {
      cwd: root,
      stdio: "inherit",
      env: { ...env, API, EDGE_AUTH_PERSIST_TO: state, npm_config_prefix: undefined },
    });
    status = run.status ?? 1;
    if (status !== 0) {
      console.log(`docs:check: the walkthrough failed in run ${round} (exit ${status})`);
      break;
    }
    console.log(`docs:check: the README's walkthrough ran top to bottom (run ${round} of 2)`);
  }
} finally {
  stop();
  rmSync(state, { recursive: true, force: true });
}
process.exit(status);
