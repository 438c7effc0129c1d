import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * `npm run admin:grant` against a local D1 of its own (EDGE_AUTH_PERSIST_TO), migrated as `npm run
 * dev` would: what it says and does to a disabled account.
 */

const root = path.resolve(import.meta.dirname, "../..");
const state = mkdtempSync(path.join(tmpdir(), "admin-grant-"));
const env = {
  ...process.env,
  EDGE_AUTH_PERSIST_TO: state,
  WRANGLER_SEND_METRICS: "false",
  CI: "true",
  PATH: path.join(root, "node_modules", ".bin") + path.delimiter + process.env.PATH,
};
const wrangler = (...args: string[]) => execFileSync("wrangler", args, { cwd: root, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const sql = (command: string) => JSON.parse(wrangler("d1", "execute", "DB", "--local", "--persist-to", state, "--json", "--command", command))[0].results;
const grant = (...args: string[]) => spawnSync(process.execPath, ["scripts/admin-grant.mjs", ...args], { cwd: root, env, encoding: "utf8" });

beforeAll(() => {
  wrangler("d1", "migrations", "apply", "DB", "--local", "--persist-to", state);
  const now = Date.now();
  sql(`INSERT INTO users (id, username, password_hash, created_at, updated_at, disabled_at) VALUES ('u-1', 'carol', 'x', ${now}, ${now}, ${now})`);
}, 60_000);
afterAll(() => rmSync(state, { recursive: true, force: true }));

describe("npm run admin:grant", () => {
  it("grants the role to a disabled account, says it stays disabled, and enables it only with --enable", () => {
    const first = grant("carol");
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/carol now has roles \["user","admin"\]/);
    expect(first.stdout).toMatch(/carol is disabled, and stays disabled[\s\S]*--enable/);
    expect(sql("SELECT disabled_at FROM users WHERE id = 'u-1'")[0].disabled_at).not.toBeNull();

    const second = grant("carol", "--enable");
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/carol is enabled/);
    expect(second.stdout).not.toMatch(/stays disabled/);
    expect(sql("SELECT roles, disabled_at FROM users WHERE id = 'u-1'")[0]).toEqual({ roles: '["user","admin"]', disabled_at: null });
  }, 60_000);

  it("names an unknown user, and refuses a malformed one", () => {
    expect(grant("nobody").status).toBe(1);
    expect(grant("no body").status).toBe(2);
  }, 60_000);
});
