// `npm run dev:reset`: a clean local state. Deletes the local D1 and KV (.wrangler/state) and
// .dev.vars, then writes a new .dev.vars and applies the migrations, as a first `npm run dev` does.
import { rmSync } from "node:fs";
import { spawnSync } from "node:child_process";

for (const path of [".wrangler/state", ".dev.vars"]) {
  rmSync(path, { recursive: true, force: true });
  console.log(`dev:reset: removed ${path}`);
}
const setup = spawnSync(process.execPath, ["scripts/dev-setup.mjs"], { stdio: "inherit" });
process.exit(setup.status ?? 1);
