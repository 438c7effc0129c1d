import path from "node:path";
import { defineConfig } from "vitest/config";

// Tests that need Node rather than workerd: the OpenAPI 3.1 validator reads its schemas from disk
// and compiles them with Ajv (code generation, which workerd refuses).
export default defineConfig({
  root: path.resolve(import.meta.dirname, "../.."),
  test: { include: ["test/node/**/*.test.ts"], environment: "node", silent: "passed-only" },
});
