// The client as it ships: client/index.ts bundled to client/dist/index.js (ESM, for browsers,
// Workers and Node 22 alike; Node does not strip types under node_modules, so installs need JS).
//   node scripts/client.mjs build   writes client/dist/index.js and prints the size
//   node scripts/client.mjs check   fails if client/dist/index.js is stale, or over the size budget
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const OUT = "client/dist/index.js";
const BUDGET = 6 * 1024; // minified and gzipped, as an app would ship it
const bundle = async (minify) =>
  (
    await build({
      entryPoints: ["client/index.ts"],
      bundle: true,
      minify,
      format: "esm",
      platform: "neutral",
      target: "es2022",
      write: false,
      legalComments: "none",
    })
  ).outputFiles[0].text;

const [code, minified] = await Promise.all([bundle(false), bundle(true)]);
const gzipped = gzipSync(minified, { level: 9 }).length;
console.log(`client: ${minified.length} bytes minified, ${gzipped} bytes gzipped (budget ${BUDGET})`);
if (gzipped > BUDGET) {
  console.error("client: over the size budget");
  process.exit(1);
}
const banner = "// Generated from client/index.ts by `npm run client:build`. Do not edit.\n";
if (process.argv[2] === "build") {
  mkdirSync("client/dist", { recursive: true });
  writeFileSync(OUT, banner + code);
  console.log(`client: wrote ${OUT}`);
} else {
  let current = "";
  try {
    current = readFileSync(OUT, "utf8");
  } catch {
    // missing: stale
  }
  if (current !== banner + code) {
    console.error(`client: ${OUT} is stale. Run \`npm run client:build\` and commit it.`);
    process.exit(1);
  }
  console.log(`client: ${OUT} matches client/index.ts`);
}
