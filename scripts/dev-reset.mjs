// `npm run dev:reset`: a clean local state. Deletes the local D1 and KV (.wrangler/state) and
// .dev.vars, then writes a new .dev.vars and applies the migrations, as a first `npm run dev` does.

import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { portFree } from "./servers.mjs";

// Deleting the local database under a running server breaks it (and it keeps answering /health).
if (!(await portFree(8787))) {
  console.error("dev:reset: something is serving on 8787 (`npm run dev`?). Stop it first, then run `npm run dev:reset` again.");
  process.exit(1);
}

for (const path of [".wrangler/state", ".dev.vars"]) {
  rmSync(path, { recursive: true, force: true });
  console.log(`dev:reset: removed ${path}`);
}
const setup = spawnSync(process.execPath, ["scripts/dev-setup.mjs"], { stdio: "inherit" });
process.exit(setup.status ?? 1);
