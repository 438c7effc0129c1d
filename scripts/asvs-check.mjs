// Fails when docs/asvs.md claims what the tests do not name:
// - a row's status is not exactly met, n/a or gap;
// - a `met` row names no test: at least one `test/<path> › <title>` per row, several joined by <br>;
// - a named test file does not exist, or has no test (`it(`/`test(`, not skipped) with that title (in ", ' or `);
// - a KEYS-TODO placeholder is left anywhere in the file;
// - a row's status is gap: every requirement is met or n/a (with its reason);
// - the summary table at the top (chapter | requirements | met | n/a | gap) does not count the rows below it.
// One line per problem, naming the requirement. It checks that the named tests exist, not that they
// prove their rows: that is review's job.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const doc = "docs/asvs.md";
const lines = readFileSync(path.join(root, doc), "utf8").split("\n");

const STATUSES = new Set(["met", "n/a", "gap"]);
const problems = [];
const counts = { met: 0, "n/a": 0, gap: 0 };
let rows = 0;
// The rows counted under each "## V<n> ..." heading, and the summary table's claims, by chapter ("V6").
const chapters = new Map();
const summary = new Map();
let chapter = null;
const table = []; // the summary as the rows count it, printed when it is off
let references = 0;

/** The cells of a table row, without the outer pipes; `\|` stays inside its cell. */
const cellsOf = (line) =>
  line
    .trim()
    .replace(/^\|/, "")
    .replace(/\|$/, "")
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());

/** Drops the backticks or bold around a cell or reference. */
const bare = (s) =>
  s
    .replace(/^\*\*(.*)\*\*$/, "$1")
    .replace(/^`(.*)`$/, "$1")
    .trim();

const sources = new Map();
function source(file) {
  if (!sources.has(file)) {
    const full = path.join(root, file);
    sources.set(file, existsSync(full) ? readFileSync(full, "utf8") : null);
  }
  return sources.get(file);
}

const regexEscape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Whether `text` has a test (`it(` or `test(`, not `.skip` or `.todo`) titled `title`, in any of the
 * three quotes, escaped as JS would. A title in a comment or a `describe` does not count.
 */
function hasTest(text, title) {
  return ['"', "'", "`"].some((q) => {
    const escaped = title.replaceAll("\\", "\\\\").replaceAll(q, `\\${q}`);
    // it("title", ...), it.concurrent("title", ...), it.each([...])("title", ...)
    const call = String.raw`\b(?:it|test)(?:\.(?:only|concurrent|sequential))?(?:\.each\([\s\S]*?\))?\(\s*`;
    return [title, escaped].some((t) => new RegExp(call + regexEscape(q + t + q)).test(text));
  });
}

const COLUMNS = ["requirements", "met", "n/a", "gap"];

/** A line of the summary table: "| V6 Authentication | 35 | 15 | 7 | 13 |" or its bold total row. */
function summaryRow(cells) {
  if (cells.length !== 5) return null;
  const name = bare(cells[0]);
  const numbers = cells.slice(1).map((c) => bare(c));
  if (!numbers.every((n) => /^\d+$/.test(n))) return null;
  const chapter = /^V\d+\b/.exec(name)?.[0] ?? (name === "total" ? "total" : null);
  if (!chapter) return null;
  return { chapter, name, counted: Object.fromEntries(COLUMNS.map((k, j) => [k, Number(numbers[j])])) };
}

/** The summary table must say what the rows say, chapter by chapter and in total (when the file has one). */
function checkSummary() {
  if (summary.size === 0) return;
  const total = { requirements: rows, ...counts };
  const actual = new Map([...chapters, ["total", total]]);
  const fix = [];
  for (const [name, claim] of summary) {
    const real = actual.get(name);
    if (!real) {
      problems.push(`${claim.where}: the summary counts ${name}, which has no "## ${name}" section`);
      continue;
    }
    const off = COLUMNS.filter((k) => claim.counted[k] !== real[k]);
    if (off.length) {
      problems.push(
        `${claim.where}: the summary says ${name} ${off.map((k) => `${k} ${claim.counted[k]}`).join(", ")}; the rows say ${off.map((k) => `${k} ${real[k]}`).join(", ")}`,
      );
      fix.push(name);
    }
  }
  for (const name of actual.keys()) if (!summary.has(name)) problems.push(`${doc}: the summary table has no line for ${name}`);
  if (fix.length) {
    // What the table should read, to paste over it.
    for (const [name, c] of actual) {
      const claim = summary.get(name);
      const label = claim?.name ?? name;
      const cells = [label, ...COLUMNS.map((k) => c[k])].map((v) => (name === "total" ? `**${v}**` : v));
      table.push(`| ${cells.join(" | ")} |`);
    }
  }
}

lines.forEach((line, i) => {
  const where = `${doc}:${i + 1}`;
  const heading = /^##\s+(V\d+)\b/.exec(line);
  if (heading) chapter = heading[1];
  if (!line.trim().startsWith("|")) {
    if (line.includes("KEYS-TODO")) problems.push(`${where}: a KEYS-TODO placeholder outside the tables`);
    return;
  }
  const cells = cellsOf(line);
  const id = bare(cells[0] ?? "").replace(/^V/, "");
  if (!/^\d+\.\d+\.\d+$/.test(id)) {
    const claim = summaryRow(cells);
    if (claim) summary.set(claim.chapter, { ...claim, where });
    if (line.includes("KEYS-TODO")) problems.push(`${where}: a KEYS-TODO placeholder outside a requirement row`);
    return;
  }
  rows++;
  if (cells.length !== 5) {
    problems.push(`${id}: ${cells.length} cells, expected 5 (# | Requirement | L | Status | Proved by / reason)`);
    return;
  }
  const status = bare(cells[3]);
  if (!STATUSES.has(status)) {
    problems.push(`${id}: status "${status}" is not one of met, n/a, gap`);
    return;
  }
  counts[status]++;
  if (chapter) {
    const c = chapters.get(chapter) ?? { requirements: 0, met: 0, "n/a": 0, gap: 0 };
    c.requirements++;
    c[status]++;
    chapters.set(chapter, c);
  }
  if (status === "gap") problems.push(`${id}: still a gap: meet it (name the tests) or say why it does not apply (n/a)`);
  const todo = cells[4].includes("KEYS-TODO");
  if (todo) problems.push(`${id}: KEYS-TODO placeholder still to be replaced by a test`);
  if (status !== "met") return;

  let named = 0;
  for (const part of cells[4].split(/<br\s*\/?>/i).map(bare)) {
    if (!part || part.startsWith("KEYS-TODO")) continue;
    const m = /^(test\/\S+)\s+›\s+(.+)$/.exec(part);
    if (!m) {
      problems.push(`${id}: "${part.slice(0, 80)}" is not a reference of the form test/<path> › <title>`);
      continue;
    }
    const [, file, title] = m;
    named++;
    const text = source(file);
    if (text === null) problems.push(`${id}: ${file} does not exist`);
    else if (!hasTest(text, title)) problems.push(`${id}: ${file} has no test titled "${title}"`);
  }
  references += named;
  if (named === 0 && !todo) problems.push(`${id}: met, but no test is named`);
});

if (rows === 0) problems.push(`${doc}: no requirement rows found`);
checkSummary();
if (problems.length > 0) {
  for (const p of problems) console.error(`asvs: ${p}`);
  if (table.length) console.error(`asvs: the summary table, as the rows count it:\n${table.join("\n")}`);
  console.error(`asvs: ${problems.length} problem${problems.length === 1 ? "" : "s"} in ${doc}`);
  process.exit(1);
}
console.log(`asvs: ${rows} requirements, ${counts.met} met (proved by ${references} test references), ${counts["n/a"]} n/a, ${counts.gap} gap`);
