import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";

/** scripts/check-layers.mjs on a small src/ of its own: the folders of src/auth/ and who may import whom. */

const script = path.resolve("scripts/check-layers.mjs");
let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the check in a tree made of these files (path under src/auth/ -> the folders it imports). */
function check(tree: Record<string, string[]>) {
  dir = mkdtempSync(path.join(tmpdir(), "layers-"));
  for (const [file, imports] of Object.entries(tree)) {
    const at = path.join(dir, "src/auth", file);
    mkdirSync(path.dirname(at), { recursive: true });
    const lines = imports.map((to, i) => (i % 2 ? `import type { T${i} } from "../${to}/x";` : `import { v${i} } from "../${to}/x";`));
    writeFileSync(at, `${lines.join("\n")}\nexport const v = 1;\n`);
  }
  for (const folder of ["core", "mail", "password", "totp", "social", "account", "keys"]) {
    mkdirSync(path.join(dir, "src/auth", folder), { recursive: true });
    writeFileSync(path.join(dir, "src/auth", folder, "x.ts"), "export const v0 = 1;\n");
  }
  const run = spawnSync("node", [script], { cwd: dir, encoding: "utf8" });
  return { status: run.status, problems: run.stderr.split("\n").filter((l) => l.includes(" -> ")) };
}

describe("check-layers: the folders of src/auth/", () => {
  it("lets a way in import the core and mail, and account/ and keys/ the core", () => {
    const run = check({
      "password/a.ts": ["core", "mail", "password"],
      "core/a.ts": ["mail"],
      "mail/a.ts": ["core"],
      "account/a.ts": ["core", "mail", "keys"],
      "keys/a.ts": ["core"],
    });
    expect(run.problems).toEqual([]);
    expect(run.status).toBe(0);
  });

  it("refuses the core or mail importing a way in, account/ or keys/; a way in importing another, account/ or keys/; account/ or keys/ importing a way in", () => {
    const run = check({
      "core/a.ts": ["password", "account"],
      "mail/a.ts": ["keys"],
      "totp/a.ts": ["password", "account"], // the second a type-only import: it counts here too
      "social/a.ts": ["keys"],
      "account/a.ts": ["social"],
      "keys/a.ts": ["totp"],
    });
    expect(run.status).toBe(1);
    expect(run.problems.map((p) => p.split(" (")[0]).sort()).toEqual([
      "src/auth/account/a.ts -> src/auth/social/x.ts",
      "src/auth/core/a.ts -> src/auth/account/x.ts",
      "src/auth/core/a.ts -> src/auth/password/x.ts",
      "src/auth/keys/a.ts -> src/auth/totp/x.ts",
      "src/auth/mail/a.ts -> src/auth/keys/x.ts",
      "src/auth/social/a.ts -> src/auth/keys/x.ts",
      "src/auth/totp/a.ts -> src/auth/account/x.ts",
      "src/auth/totp/a.ts -> src/auth/password/x.ts",
    ]);
  });
});

/** Runs the check in a tree of these files (path under src/ -> its text). */
function checkFiles(tree: Record<string, string>) {
  dir = mkdtempSync(path.join(tmpdir(), "layers-"));
  for (const [file, text] of Object.entries(tree)) {
    mkdirSync(path.dirname(path.join(dir, "src", file)), { recursive: true });
    writeFileSync(path.join(dir, "src", file), text);
  }
  const run = spawnSync("node", [script], { cwd: dir, encoding: "utf8" });
  return { status: run.status, problems: run.stderr.split("\n").filter((l) => l.startsWith("src/")) };
}

describe("check-layers: the rest of src/", () => {
  const x = "export const v = 1;\n";
  it("passes a tree that keeps every rule", () => {
    const run = checkFiles({
      "routes/deps.ts": x,
      "routes/step-up.ts": 'export { askStepUp } from "../auth/core/step-up";\n',
      "auth/core/step-up.ts": "export const askStepUp = 1;\n",
      "auth/social/kinds/github.ts": 'export const is = (kind: string) => kind === "github";\n',
      "middleware/a.ts": 'import { v } from "../config";\nexport const w = v;\n',
      "config.ts": x,
      "big.ts": "\n".repeat(300),
    });
    expect(run.problems).toEqual([]);
    expect(run.status).toBe(0);
  });

  it("refuses an import up the layers, a made-up step-up ask, a branch on a provider's kind, and a file over 300 lines", () => {
    const run = checkFiles({
      "routes/deps.ts": x,
      "auth/core/ways-in.ts": x,
      "middleware/require-auth.ts": 'import { v } from "../routes/deps";\nexport const w = v;\n',
      "config.ts": 'import type { T } from "./auth/core/ways-in";\nexport type U = T;\n',
      "response-schemas.ts": 'import { v } from "./auth/core/ways-in";\nexport const w = v;\n',
      "auth/social/flow.ts": 'export const ask = () => askStepUp;\nexport const apple = (kind: string) => kind === "apple";\n',
      "big.ts": "\n".repeat(301),
    });
    expect(run.status).toBe(1);
    expect(run.problems.map((p) => p.split(" (")[0]!.split(":")[0]).sort()).toEqual([
      "src/auth/social/flow.ts",
      "src/auth/social/flow.ts",
      "src/big.ts",
      "src/config.ts -> src/auth/core/ways-in.ts",
      "src/middleware/require-auth.ts -> src/routes/deps.ts",
      "src/response-schemas.ts -> src/auth/core/ways-in.ts",
    ]);
  });
});
