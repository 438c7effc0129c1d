// `npm run bench`: runs test/bench/*.bench.ts inside workerd (BENCH=1 switches vitest's include) and
// prints its table only; the pool's request log lines stay out of the way (all of it on a failure).
import { spawnSync } from "node:child_process";

const run = spawnSync("vitest", ["run", "--config", "test/vitest.config.ts"], {
  shell: process.platform === "win32",
  env: { ...process.env, BENCH: "1" },
  encoding: "utf8",
  maxBuffer: 256 * 1024 * 1024,
});
const output = `${run.stdout}${run.stderr}`;
if (run.status !== 0) {
  process.stdout.write(output);
  process.exit(run.status ?? 1);
}
// eslint-disable-next-line no-control-regex
const plain = output.replace(/\x1b\[[0-9;]*m/g, "");
console.log(plain.split("\n").filter((line) => line.startsWith("|")).join("\n"));
