// `npm run client:size`: the client (client/index.ts) bundled and minified as an app would ship it,
// then gzipped. Fails above the budget of 6 KB.
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const BUDGET = 6 * 1024;
const { outputFiles } = await build({ entryPoints: ["client/index.ts"], bundle: true, minify: true, format: "esm", platform: "neutral", write: false });
const code = outputFiles[0].contents;
const gzipped = gzipSync(code, { level: 9 }).length;
console.log(`client: ${code.length} bytes minified, ${gzipped} bytes gzipped (budget ${BUDGET})`);
if (gzipped > BUDGET) {
  console.error("client: over the size budget");
  process.exit(1);
}
