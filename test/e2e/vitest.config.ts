import path from "node:path";
import { defineConfig } from "vitest/config";

// Browser journeys: Chromium (Debian's package, driven by playwright-core) through the demo app,
// against a wrangler dev and a vite started by global-setup.ts on ports of their own.
export default defineConfig({
  root: path.resolve(import.meta.dirname, "../.."),
  test: {
    include: ["test/e2e/**/*.e2e.ts"],
    environment: "node",
    globalSetup: ["test/e2e/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
