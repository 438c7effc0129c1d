import { readFileSync } from "node:fs";
import { is } from "drizzle-orm";
import { getTableConfig, SQLiteTable } from "drizzle-orm/sqlite-core";
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
import { KV_KEYS, KV_PREFIXES } from "../../src/auth/core/kv-keys";
import * as accessTables from "../../src/db/access-tables";
import * as serverTables from "../../src/db/oauth-server-tables";
import * as organizationTables from "../../src/db/organization-tables";
import * as schema from "../../src/db/schema";

/**
 * docs/storage.md lists every D1 table and KV key: the tables as Drizzle declares them (src/db/schema.ts
 * and src/db/oauth-server-tables.ts; not a regex on the source), the KV keys as src/auth/core/kv-keys.ts
 * declares them (every workerd test file checks that the keys it left in KV are those: test/setup.ts),
 * and the queues as wrangler.toml declares them.
 */

const doc = readFileSync("docs/storage.md", "utf8");

/** The first cell of each row of the table under `heading` (a level-2 heading that starts so), without backticks. */
function firstCells(heading: string): string[] {
  const section = doc.split(/^## /m).find((s) => s.startsWith(heading));
  if (!section) throw new Error(`docs/storage.md has no "## ${heading}" section`);
  return section
    .split("\n")
    .filter((line) => line.startsWith("| `"))
    .map((line) => /^\| `([^`]+)`/.exec(line)![1]!);
}

// schema.ts re-exports every table module but the authorization server's, the organizations' and issue 31's (they import schema.ts).
const tables = [...Object.values(schema), ...Object.values(serverTables), ...Object.values(organizationTables), ...Object.values(accessTables)]
  .filter((value) => is(value, SQLiteTable))
  .map((table) => getTableConfig(table as SQLiteTable).name);

describe("docs/storage.md", () => {
  it("finds the schema's tables (the check itself works)", () => {
    expect(tables).toContain("users");
    expect(tables).toContain("oauth_flows");
    expect(tables).toContain("oauth_requests");
    expect(tables.length).toBeGreaterThanOrEqual(11);
  });

  it("has one row for every D1 table in src/db/schema.ts, and none for a table that is gone", () => {
    const rows = firstCells("D1 tables");
    expect(
      rows.filter((t) => !tables.includes(t)),
      "rows for tables the schema does not have",
    ).toEqual([]);
    expect(
      tables.filter((t) => !rows.includes(t)),
      "tables missing from docs/storage.md",
    ).toEqual([]);
    expect(new Set(rows).size, "a table listed twice").toBe(rows.length);
  });

  it("has one row for every KV key in src/auth/core/kv-keys.ts, and none for a key that is gone", () => {
    // A prefix is written `sid:<session id>`: the key up to the first `<`.
    const rows = firstCells("KV keys").map((cell) => cell.replace(/<.*$/, ""));
    const keys = Object.values(KV_KEYS) as string[];
    expect(
      rows.filter((k) => !keys.includes(k)),
      "rows for keys the code does not declare",
    ).toEqual([]);
    expect(
      keys.filter((k) => !rows.includes(k)),
      "KV keys missing from docs/storage.md",
    ).toEqual([]);
    // Prefixes are shown with what follows them, whole keys as they are.
    for (const cell of firstCells("KV keys")) expect(cell.includes("<"), cell).toBe(KV_PREFIXES.includes(cell.replace(/<.*$/, "")));
  });

  it("has one row for every queue in wrangler.toml", () => {
    const { queues } = unstable_readConfig({ config: "wrangler.toml" });
    const names: string[] = [...(queues.producers ?? []), ...(queues.consumers ?? [])].map((q: { queue: string }) => q.queue);
    expect(names.length).toBeGreaterThan(0);
    expect(
      [...new Set(names)].filter((q) => !firstCells("Queue").includes(q)),
      "queues missing from docs/storage.md",
    ).toEqual([]);
  });
});
