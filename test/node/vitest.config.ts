import path from "node:path";
import { defineConfig } from "vitest/config";

// Tests that need Node rather than workerd: the OpenAPI 3.1 validator reads its schemas from disk
// and compiles them with Ajv (code generation, which workerd refuses); the scripts, run as a developer
// runs them (wrangler dev, the demo, npm pack, the operator's commands).
//
// Files run side by side: most of their time is spent waiting (on a wrangler dev to start, a JWKS
// cache to expire, npm), not computing. Vitest's default on a 2-core machine is one file at a time.
// What lets them share the machine: each server has ports of its own (issuer 8794, oauth-server
// 8795, demo-ports 8797/5182/8798/5183; none shared with test/e2e or npm run dev), each database its
// own directory (--persist-to a temporary one), and what they do share, .dev.vars and the local D1 in
// .wrangler/state that scripts/dev-setup.mjs writes on its first run, is written by the global setup
// before any file starts, so the files' own runs of it (issuer, oauth-server, demo-ports, dev-setup)
// only read.
export default defineConfig({
  root: path.resolve(import.meta.dirname, "../.."),
  test: {
    include: ["test/node/**/*.test.ts"],
    environment: "node",
    silent: "passed-only",
    globalSetup: ["test/node/global-setup.ts"],
    maxWorkers: 3,
  },
});
