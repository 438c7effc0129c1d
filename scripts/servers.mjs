// Starts the API (wrangler dev) and the demo app (vite) as child processes, waits until both answer,
// and stops them (whole process groups) on stop() or when this process exits.
import { spawn, spawnSync } from "node:child_process";
import { openSync } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("..", import.meta.url));
// Wrangler needs Node >= 22.12: the `node` devDependency's binary first on PATH, however we were started.
const env = { ...process.env, PATH: join(root, "node_modules", ".bin") + delimiter + process.env.PATH, WRANGLER_SEND_METRICS: "false" };
const children = new Set();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts a server; `log` (a file) keeps its output, `quiet` drops it. */
export function start(command, args, { quiet = false, log, extraEnv = {} } = {}) {
  const stdio = log ? ["ignore", openSync(log, "a"), openSync(log, "a")] : quiet ? "ignore" : "inherit";
  const child = spawn(command, args, {
    cwd: root,
    env: { ...env, ...extraEnv },
    detached: process.platform !== "win32",
    shell: process.platform === "win32",
    stdio,
  });
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

/** Whether nothing listens on `port` (localhost). */
export function portFree(port) {
  return new Promise((resolve) => {
    const probe = createServer().once("error", () => resolve(false));
    probe.listen(port, "localhost", () => probe.close(() => resolve(true)));
  });
}

export async function waitFor(url, what, seconds = 60) {
  for (const end = Date.now() + seconds * 1000; Date.now() < end; await sleep(300)) {
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(2000) })).ok) return;
    } catch {
      // not up yet
    }
  }
  throw new Error(`${what} did not answer at ${url} within ${seconds} s`);
}

/**
 * A local database for a run in `state`: the dev setup (.dev.vars kept if there, the static assets)
 * and the migrations. Throws with wrangler's output when they fail.
 */
export function prepareState(state) {
  const quiet = { ...env, CI: "true" }; // CI: wrangler takes "yes" for its confirmation prompt
  spawnSync(process.execPath, ["scripts/dev-setup.mjs"], { cwd: root, stdio: "ignore", env: quiet });
  const migrate = spawnSync("wrangler", ["d1", "migrations", "apply", "DB", "--local", "--persist-to", state], {
    cwd: root,
    env: quiet,
    encoding: "utf8",
    shell: process.platform === "win32",
  });
  if (migrate.status !== 0) throw new Error(`migrations failed:\n${migrate.stdout}${migrate.stderr}`);
}

export function stop() {
  for (const child of children) {
    try {
      // Windows: the whole tree under the shell (wrangler, workerd, vite). Elsewhere: the group.
      if (process.platform === "win32") spawnSync("taskkill", ["/pid", String(child.pid), "/T", "/F"], { stdio: "ignore" });
      else process.kill(-child.pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
  children.clear();
}
process.on("exit", stop);
// A closed terminal (SIGHUP) or Ctrl-C must not leave the servers holding their ports.
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => process.exit(130));
