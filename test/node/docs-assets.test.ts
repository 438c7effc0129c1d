import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
// @ts-expect-error: a plain ES module (scripts/ are JavaScript)
import { ASSETS_DIR, buildAssets, scalarAsset } from "../../scripts/assets.mjs";
import { SCALAR_PATH, SCALAR_SRI, SCALAR_VERSION } from "../../src/routes/docs";

/**
 * GET /docs's script comes from the npm registry at the version the lockfile records, and reaches the
 * Worker as a static asset: the pieces that have to agree, so an upgrade that misses one fails here
 * rather than as a blank page (the browser refuses a file whose hash is not the page's SRI).
 */
describe("the API reference's pinned script", () => {
  const lock = JSON.parse(readFileSync("package-lock.json", "utf8"));
  const pkg = JSON.parse(readFileSync("package.json", "utf8"));

  it("is @scalar/api-reference at an exact version, the one package-lock.json records and the Worker names", () => {
    expect(pkg.devDependencies["@scalar/api-reference"]).toBe(SCALAR_VERSION); // exact: no ^ or ~
    const locked = lock.packages["node_modules/@scalar/api-reference"];
    expect(locked.version).toBe(SCALAR_VERSION);
    expect(locked.integrity).toMatch(/^sha512-/); // npm ci refuses a tarball with another hash
    expect(scalarAsset().version).toBe(SCALAR_VERSION); // what npm installed
  });

  it("is copied into the assets directory under the path the Worker serves, with the hash the page's SRI names", () => {
    const target = buildAssets();
    expect(target).toBe(`${ASSETS_DIR}${SCALAR_PATH}`);
    const file = readFileSync(target);
    expect(`sha384-${createHash("sha384").update(file).digest("base64")}`).toBe(SCALAR_SRI);
    expect(file.equals(readFileSync(scalarAsset().source))).toBe(true);
  });

  it("is served through the Worker: wrangler.toml's assets are that directory, behind the app (run_worker_first)", () => {
    const { assets } = unstable_readConfig({ config: "wrangler.toml" });
    expect(assets).toMatchObject({ directory: ".assets", binding: "ASSETS", run_worker_first: true });
    // Everything that starts or builds the Worker copies the assets first, so a fresh clone needs nothing by hand.
    expect(pkg.scripts.build).toMatch(/^node scripts\/assets\.mjs && wrangler deploy --dry-run/);
    for (const file of ["scripts/dev-setup.mjs", "scripts/deploy.mjs", "test/vitest.config.ts"])
      expect(readFileSync(file, "utf8"), file).toMatch(/buildAssets\(\)/);
    expect(readFileSync(".gitignore", "utf8")).toMatch(/^\.assets\/$/m);
  });
});
