import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

/**
 * `npm run dev`'s setup, as a developer sees it: one line for the migrations, not wrangler's tables
 * (those only when they fail). Runs the real script against the local database, as `npm run dev` does.
 */
describe("scripts/dev-setup.mjs", () => {
  it("says what it did in a line or two, with no table", () => {
    const run = spawnSync(process.execPath, ["scripts/dev-setup.mjs"], { encoding: "utf8", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trim().split("\n");
    expect(lines.at(-1)).toMatch(/^dev: migrations: (applied \d+ to the local database|the local database is up to date)$/);
    // At most the first run's note about .dev.vars before it.
    expect(lines.slice(0, -1).every((l) => l.startsWith("dev-setup: wrote "))).toBe(true);
    expect(run.stdout + run.stderr).not.toMatch(/[┌│└]|Migrations to be applied/);
  }, 60_000);
});
