// The Worker's static assets (wrangler.toml [assets]): the API reference's script, a pinned copy of
// @scalar/api-reference's single-file browser build, taken from node_modules (so from the npm registry,
// at the exact version package-lock.json records) into .assets/ (gitignored). Too big for the Worker
// bundle (4 MiB); as an asset it costs the bundle nothing, and GET /docs loads it from the API's own
// origin, offline too. wrangler refuses to start without the directory, so everything that starts or
// builds the Worker runs this first: dev-setup.mjs (npm run dev, demo, docs:check, test:e2e), the
// tests' config, npm run build and npm run deploy. `node scripts/assets.mjs` runs it by hand.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
export const ASSETS_DIR = path.join(root, ".assets");
const PACKAGE = path.join(root, "node_modules", "@scalar", "api-reference");

/** The version installed, and where its file goes: .assets/docs/scalar-api-reference-<version>.js (the path GET serves). */
export function scalarAsset() {
  const { version } = JSON.parse(readFileSync(path.join(PACKAGE, "package.json"), "utf8"));
  return {
    version,
    source: path.join(PACKAGE, "dist", "browser", "standalone.js"),
    target: path.join(ASSETS_DIR, "docs", `scalar-api-reference-${version}.js`),
  };
}

/** Copies the assets into .assets/ unless they are there already (same size and not older). */
export function buildAssets() {
  const { source, target } = scalarAsset();
  if (!existsSync(source)) throw new Error(`assets: ${source} is missing; run npm install`);
  if (existsSync(target) && statSync(target).size === statSync(source).size && statSync(target).mtimeMs >= statSync(source).mtimeMs) return target;
  mkdirSync(path.dirname(target), { recursive: true });
  // Another version's file would be uploaded too: only the one installed stays.
  for (const old of readdirSync(path.dirname(target))) rmSync(path.join(path.dirname(target), old), { force: true });
  copyFileSync(source, target);
  return target;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(`assets: ${path.relative(root, buildAssets())}`);
