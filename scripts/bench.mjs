// `npm run bench`: runs test/bench/*.bench.ts inside workerd (BENCH=1 switches vitest's include).
import { spawnSync } from "node:child_process";

const run = spawnSync("vitest", ["run", "--config", "test/vitest.config.ts"], {
  stdio: "inherit",
  shell: process.platform === "win32",
  env: { ...process.env, BENCH: "1" },
});
process.exit(run.status ?? 1);
