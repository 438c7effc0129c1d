// Fails when the layers of src/ mix (ARCHITECTURE.md, Layout):
// - the domain (src/auth/, src/db/) reaches HTTP at run time: Hono (any `hono` or `@hono/` package),
//   the HTTP error type and renderer (src/errors.ts), routes, middleware or the app, directly or
//   through any module it imports;
// - a route queries src/db/ itself instead of asking src/auth/ (src/routes/deps.ts, which makes the
//   clients, is the one exception), or src/auth/ (or the audit and mail modules) builds SQL;
// - a D1 batch is read by position: db.batch appears anywhere but src/db/batch.ts, the named builder;
// - src/auth/'s folders import across the way they may not. The shared core/ and mail/ never import a
//   way in (password/, totp/, passkeys/, social/, mailbox/, oauth-server/, api-keys/, guests/, mail-sign-in/), account/ or keys/; a way in imports core/,
//   mail/ and its own folder, never another way in, account/ or keys/; account/ and keys/ never import
//   a way in. Here type-only imports count too: a type is owned where it is declared.
// - a step-up's ask is made anywhere but src/routes/step-up.ts, from a route that declared its action;
// - an import runs up: middleware to a route, or config, schemas, encoding, log or mail to the domain or above;
// - a provider's kind is branched on outside its object (src/auth/social/kinds/, config-providers.ts);
// - a file in src/ is over 300 lines.
// Elsewhere type-only imports are erased at build time and do not count.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

const files = readdirSync("src", { recursive: true })
  .filter((f) => f.endsWith(".ts"))
  .map((f) => path.join("src", f));

/** The modules a file imports at run time (or at all, with `types`): relative paths as files, packages by name. */
function runtimeImports(file, types = false) {
  const text = readFileSync(file, "utf8");
  const found = [];
  for (const m of text.matchAll(/^(import|export)\s+(type\s+)?([^;]*?)\s*from\s+"([^"]+)"/gms)) {
    const [, , typeOnly, clause, target] = m;
    if (typeOnly && !types) continue;
    const names = /^\{([^}]*)\}$/.exec(clause.trim())?.[1];
    // `import { type A, type B } from` brings nothing at run time either.
    if (
      names
        ?.split(",")
        .map((n) => n.trim())
        .filter(Boolean)
        .every((n) => n.startsWith("type ")) &&
      !types
    )
      continue;
    found.push(target.startsWith(".") ? path.join(path.dirname(file), `${target}.ts`) : target);
  }
  // Side-effect imports, and dynamic ones (a lazily loaded library is loaded all the same).
  for (const m of text.matchAll(/^import\s+"([^"]+)"|\bimport\(\s*"([^"]+)"\s*\)/gm)) {
    const target = m[1] ?? m[2];
    found.push(target.startsWith(".") ? path.join(path.dirname(file), `${target}.ts`) : target);
  }
  return found;
}

const graph = new Map(files.map((f) => [f, runtimeImports(f)]));
const forbidden = (target) =>
  /^(hono|@hono\/)/.test(target) || ["src/errors.ts", "src/app.ts", "src/index.ts"].includes(target) || /^src\/(routes|middleware)\//.test(target);

const problems = [];
for (const start of files.filter((f) => /^src\/(auth|db)\//.test(f))) {
  // Breadth-first, remembering how each module was reached, to name the whole path.
  const via = new Map([[start, null]]);
  const queue = [start];
  while (queue.length) {
    const file = queue.shift();
    for (const next of graph.get(file) ?? []) {
      if (via.has(next)) continue;
      via.set(next, file);
      if (forbidden(next)) {
        const trail = [next];
        for (let at = file; at; at = via.get(at)) trail.unshift(at);
        problems.push(trail.join(" -> "));
      } else if (graph.has(next)) queue.push(next);
    }
  }
}

// SQL is built in src/db/ only: the flows (and the audit and mail modules they use) name queries, never write them.
for (const file of files.filter((f) => /^src\/(auth\/|audit\.ts|mail\.ts)/.test(f))) {
  if (graph.get(file).includes("drizzle-orm")) problems.push(`${file} -> drizzle-orm (SQL belongs in src/db/)`);
}
for (const file of files.filter((f) => f.startsWith("src/routes/") && f !== "src/routes/deps.ts")) {
  for (const target of graph.get(file)) if (target.startsWith("src/db/")) problems.push(`${file} -> ${target} (a route asks src/auth/, never src/db/)`);
}
// src/dev-faults.ts forwards the D1 binding's own batch() (local dev's fault injection), reading nothing.
for (const file of files.filter((f) => f !== "src/db/batch.ts" && f !== "src/dev-faults.ts")) {
  if (/\.batch\(/.test(readFileSync(file, "utf8"))) problems.push(`${file}: db.batch (build it with src/db/batch.ts, read by name)`);
}
// A step-up's ask is made only from a route that declared its action (src/routes/step-up.ts): a flow
// that made its own could act without the route naming what it does.
for (const file of files.filter((f) => !["src/routes/step-up.ts", "src/auth/core/step-up.ts"].includes(f))) {
  if (/\baskStepUp\b/.test(readFileSync(file, "utf8")))
    problems.push(`${file}: askStepUp (a route declares its action: sensitive() and asked() in src/routes/step-up.ts)`);
}

// Nothing imports up the layers (docs/development.md, Layout): middleware never imports a route, and
// the modules below the domain (config, schemas, encoding, logging, mail) import nothing of it or above.
const BELOW = /^src\/(config[\w-]*|schemas[\w-]*|response-schemas|step-up-actions|encoding|log|mail)\.ts$/;
for (const file of files) {
  for (const target of runtimeImports(file, true)) {
    if (file.startsWith("src/middleware/") && target.startsWith("src/routes/")) problems.push(`${file} -> ${target} (middleware runs below the routes)`);
    if (BELOW.test(file) && /^src\/(auth|routes|middleware)\//.test(target)) problems.push(`${file} -> ${target} (${file} is below the domain)`);
  }
}
// A provider's kind is branched on only by its own object (src/auth/social/kinds/) and the secret formats of config-providers.ts.
const KIND_BRANCH = /(\bkind\s*[!=]==?\s*|\bcase\s+)"(oidc|google|github|apple|microsoft)"/;
for (const file of files.filter((f) => !f.startsWith("src/auth/social/kinds/") && f !== "src/config-providers.ts")) {
  if (KIND_BRANCH.test(readFileSync(file, "utf8"))) problems.push(`${file}: branches on a provider's kind (give its object the quirk: src/auth/social/kinds/)`);
}
// Small files: a newcomer reads one whole.
for (const file of files) {
  const lines = readFileSync(file, "utf8").split("\n").length - 1;
  if (lines > 300) problems.push(`${file}: ${lines} lines (at most 300: split it along its seams)`);
}

// The folders of src/auth/ (docs/development.md, Layout): a way in touches the rest through the core.
const WAYS_IN = ["password", "totp", "passkeys", "social", "mailbox", "oauth-server", "api-keys", "guests", "mail-sign-in"];
const SHARED = ["core", "mail"];
const folderOf = (file) => /^src\/auth\/([^/]+)\//.exec(file)?.[1];
/** What a folder of src/auth/ may import from the others (its own folder always). */
function mayImport(from, to) {
  if (SHARED.includes(from) || WAYS_IN.includes(from)) return SHARED.includes(to);
  return !WAYS_IN.includes(to); // account/, keys/ (and a new folder that is no way in): never a way in
}
for (const file of files.filter(folderOf)) {
  for (const target of runtimeImports(file, true)) {
    const [from, to] = [folderOf(file), folderOf(target)];
    if (!to || from === to || mayImport(from, to)) continue;
    problems.push(`${file} -> ${target} (${from}/ may not import ${to}/: the rule for src/auth/'s folders is at the top of scripts/check-layers.mjs)`);
  }
}

if (problems.length) {
  console.error(`the layers of src/ mix (scripts/check-layers.mjs says what is allowed):\n${[...new Set(problems)].join("\n")}`);
  process.exit(1);
}
console.log("layers: src/auth/ and src/db/ import nothing of HTTP, routes ask src/auth/, every batch is read by name, a way in imports only the core and mail");
