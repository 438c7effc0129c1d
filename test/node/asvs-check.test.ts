import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";

/** scripts/asvs-check.mjs on a docs/asvs.md and a test file of its own, in a temporary copy of the layout. */

const script = path.resolve("scripts/asvs-check.mjs");
let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const TEST_FILE = `import { it } from "vitest";\nit("proves the first", () => {});\nit("proves the second", () => {});\n`;

/** The summary table, then a V6 and a V7 section holding these rows (status, proof). */
function doc(summary: string[], v6: [string, string][], v7: [string, string][]) {
  const rows = (rows: [string, string][], chapter: number) =>
    rows.map(([status, proof], i) => `| ${chapter}.1.${i + 1} | A requirement | 1 | ${status} | ${proof} |`).join("\n");
  const head = "| # | Requirement | L | Status | Proved by / reason |\n|---|---|---|---|---|";
  return [
    "# ASVS",
    "",
    ...(summary.length ? ["| chapter | requirements | met | n/a | gap |", "|---|---|---|---|---|", ...summary, ""] : []),
    "## V6 Authentication",
    "",
    head,
    rows(v6, 6),
    "",
    "## V7 Session Management",
    "",
    head,
    rows(v7, 7),
    "",
  ].join("\n");
}

function check(text: string) {
  dir = mkdtempSync(path.join(tmpdir(), "asvs-"));
  for (const sub of ["scripts", "docs", "test"]) mkdirSync(path.join(dir, sub));
  copyFileSync(script, path.join(dir, "scripts/asvs-check.mjs"));
  writeFileSync(path.join(dir, "docs/asvs.md"), text);
  writeFileSync(path.join(dir, "test/a.test.ts"), TEST_FILE);
  const run = spawnSync("node", [path.join(dir, "scripts/asvs-check.mjs")], { encoding: "utf8" });
  return { status: run.status, out: run.stdout, problems: run.stderr.split("\n").filter((l) => l.startsWith("asvs: ") && !/problems? in/.test(l)) };
}

const met = "`test/a.test.ts › proves the first`<br>`test/a.test.ts › proves the second`";
const summary = ["| V6 Authentication | 2 | 1 | 1 | 0 |", "| V7 Session Management | 1 | 1 | 0 | 0 |", "| **total** | **3** | **2** | **1** | **0** |"];

describe("scripts/asvs-check.mjs", () => {
  it("passes rows that are met (with tests that exist) or n/a, under a summary that counts them", () => {
    const run = check(
      doc(
        summary,
        [
          ["met", met],
          ["n/a", "An API with no pages."],
        ],
        [["met", "`test/a.test.ts › proves the second`"]],
      ),
    );
    expect(run.problems).toEqual([]);
    expect(run.status).toBe(0);
    expect(run.out).toMatch(/3 requirements, 2 met .* 1 n\/a, 0 gap/);
  });

  it("fails on every gap row, one line each naming it", () => {
    const run = check(
      doc(
        ["| V6 Authentication | 2 | 0 | 0 | 2 |", "| V7 Session Management | 1 | 1 | 0 | 0 |", "| **total** | **3** | **1** | **0** | **2** |"],
        [
          ["gap", "Would take: a test."],
          ["gap", "Would take: another."],
        ],
        [["met", met]],
      ),
    );
    expect(run.status).toBe(1);
    expect(run.problems).toEqual([
      "asvs: 6.1.1: still a gap: meet it (name the tests) or say why it does not apply (n/a)",
      "asvs: 6.1.2: still a gap: meet it (name the tests) or say why it does not apply (n/a)",
    ]);
  });

  it("fails when the summary table does not count the rows, per chapter and in total, and prints the right table", () => {
    // One row moved from n/a to met, and the table not updated.
    const run = check(
      doc(
        summary,
        [
          ["met", met],
          ["met", met],
        ],
        [["met", met]],
      ),
    );
    expect(run.status).toBe(1);
    expect(run.problems).toEqual([
      expect.stringMatching(/^asvs: docs\/asvs\.md:5: the summary says V6 met 1, n\/a 1; the rows say met 2, n\/a 0$/),
      expect.stringMatching(/^asvs: docs\/asvs\.md:7: the summary says total met 2, n\/a 1; the rows say met 3, n\/a 0$/),
      "asvs: the summary table, as the rows count it:",
    ]);
    expect(run.problems.length).toBe(3);
  });

  it("fails when a chapter has no line in the summary, or the summary names a chapter with no section", () => {
    const run = check(
      doc(
        [summary[0]!, "| V9 Tokens | 0 | 0 | 0 | 0 |", summary[2]!],
        [
          ["met", met],
          ["n/a", "No pages."],
        ],
        [["met", met]],
      ),
    );
    expect(run.status).toBe(1);
    expect(run.problems).toEqual([
      expect.stringMatching(/the summary counts V9, which has no "## V9" section$/),
      "asvs: docs/asvs.md: the summary table has no line for V7",
    ]);
  });

  it("still fails a met row naming no test, a missing file or a missing title", () => {
    const run = check(
      doc(
        [],
        [
          ["met", "Proved by reading the code."],
          ["met", "`test/none.test.ts › proves the first`"],
        ],
        [["met", "`test/a.test.ts › proves nothing`"]],
      ),
    );
    expect(run.status).toBe(1);
    expect(run.problems).toEqual([
      'asvs: 6.1.1: "Proved by reading the code." is not a reference of the form test/<path> › <title>',
      "asvs: 6.1.1: met, but no test is named",
      "asvs: 6.1.2: test/none.test.ts does not exist",
      'asvs: 7.1.1: test/a.test.ts has no test titled "proves nothing"',
    ]);
  });
});
