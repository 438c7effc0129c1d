import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

/**
 * Code that the documentation shows in full is a file the tests run: the page must show that file
 * as it is (test/client-backends.test.ts runs docs/examples/team-backend.ts as the client's backend).
 */
describe("examples in the docs", () => {
  it("docs/backends.md shows docs/examples/team-backend.ts exactly", () => {
    const page = readFileSync("docs/backends.md", "utf8");
    const shown = /<!-- example:team-backend -->\n```ts\n([\s\S]*?)```\n<!-- \/example:team-backend -->/.exec(page)?.[1];
    expect(shown).toBe(readFileSync("docs/examples/team-backend.ts", "utf8"));
    expect(readFileSync("test/client-backends.test.ts", "utf8")).toMatch(/^import teamBackend from "\.\.\/docs\/examples\/team-backend";$/m);
  });
});
