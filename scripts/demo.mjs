// `npm run demo`: the API on http://localhost:8787 (as `npm run dev`: local D1/KV, dev key) and the
// demo app on http://localhost:5173, together. Ctrl-C stops both.
import { spawnSync } from "node:child_process";
import { portFree, root, start, waitFor } from "./servers.mjs";

for (const [port, what] of [
  [8787, "the API (`npm run dev`?)"],
  [5173, "the demo app"],
]) {
  if (!(await portFree(port))) {
    console.error(`demo: port ${port} is in use by something else, maybe ${what}. Stop it first.`);
    process.exit(1);
  }
}

const setup = spawnSync(process.execPath, ["scripts/dev-setup.mjs"], { cwd: root, stdio: "inherit" });
if (setup.status !== 0) process.exit(setup.status ?? 1);
start("wrangler", ["dev", "--port", "8787"]);
start("vite", ["--config", "demo/vite.config.ts"]);
await waitFor("http://localhost:8787/health", "the API");
await waitFor("http://localhost:5173/", "the demo app");
console.log("\n  demo: open http://localhost:5173  (API: http://localhost:8787, reference: http://localhost:8787/docs)\n");
await new Promise(() => {}); // until Ctrl-C
