// The Workers runtime's types (Request, KVNamespace, D1Database, ExecutionContext...) for tsc: generated
// by the installed wrangler's workerd at wrangler.toml's compatibility date into worker-runtime.d.ts.
// Not committed (16,000 lines, most of them typings for AI models this project never calls, that change
// with every workerd): `npm install` (prepare) and `npm run typecheck` write it. The Env types stay
// committed in worker-configuration.d.ts (`npm run cf-typegen`, checked by `npm run types:check`).
import { spawnSync } from "node:child_process";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const run = spawnSync("wrangler", ["types", "--include-env=false", "worker-runtime.d.ts"], {
  cwd: root,
  encoding: "utf8",
  shell: process.platform === "win32",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
if (run.status !== 0) {
  console.error(`runtime-types: wrangler types failed\n${run.error ?? ""}${run.stdout}${run.stderr}`);
  process.exit(1);
}
