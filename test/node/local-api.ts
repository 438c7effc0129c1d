import { spawnSync } from "node:child_process";
import path from "node:path";
// @ts-expect-error: a plain ES module shared with `npm run demo` and the e2e setup
import { root } from "../../scripts/servers.mjs";

/** What the Node tests that start a real `wrangler dev` of the API share: its environment, its local D1, JSON calls to it. */

export const wranglerEnv = {
  ...process.env,
  CI: "true",
  WRANGLER_SEND_METRICS: "false",
  PATH: path.join(root, "node_modules", ".bin") + path.delimiter + process.env.PATH,
};

/** Runs SQL on the local D1 kept under `state` (what `wrangler d1 execute --local` does). */
export const localD1 = (state: string) => (sql: string) => {
  const run = spawnSync("wrangler", ["d1", "execute", "DB", "--local", "--persist-to", state, "--command", sql], {
    cwd: root,
    env: wranglerEnv,
    encoding: "utf8",
  });
  if (run.status !== 0) throw new Error(`d1 execute failed: ${run.stderr}`);
};

/**
 * A fresh local D1 under `state` with every migration applied, and the secrets a `wrangler dev` of the
 * API reads from .dev.vars (dev-setup writes them if missing): what each test's own API starts from.
 */
export function prepareLocalApi(state: string) {
  const migrate = spawnSync("wrangler", ["d1", "migrations", "apply", "DB", "--local", "--persist-to", state], {
    cwd: root,
    env: wranglerEnv,
    encoding: "utf8",
  });
  if (migrate.status !== 0) throw new Error(`migrations failed:\n${migrate.stdout}${migrate.stderr}`);
  spawnSync(process.execPath, ["scripts/dev-setup.mjs"], { cwd: root, stdio: "ignore", env: wranglerEnv });
}

/** A JSON call to the API at `base`, with a bearer token if given; the body parsed (null when it is not JSON). */
export const jsonApi =
  (base: string) =>
  async (method: string, p: string, body?: unknown, token?: string): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${base}${p}`, {
      method,
      headers: { ...(body ? { "content-type": "application/json" } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: await res.json().catch(() => null) };
  };
