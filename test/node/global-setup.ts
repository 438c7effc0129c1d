import { spawnSync } from "node:child_process";
import path from "node:path";

/**
 * The local state the scripts share, written once before the files run side by side: .dev.vars and the
 * migrated local D1 in .wrangler/state (scripts/dev-setup.mjs, as `npm run dev` runs it). Two first runs
 * at once would both append keys to .dev.vars and both apply the migrations.
 */
export default function setup() {
  const root = path.resolve(import.meta.dirname, "../..");
  const run = spawnSync(process.execPath, ["scripts/dev-setup.mjs"], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" },
  });
  if (run.status !== 0) throw new Error(`dev-setup failed:\n${run.stdout}${run.stderr}`);
}
