import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, expect } from "vitest";
import { isKnownKvKey } from "../src/auth/core/kv-keys";

// Setup files run before each test file; applyD1Migrations skips what is already applied.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);

// Every key the file's tests left in KV is one the Worker declares (src/auth/core/kv-keys.ts), and so one
// docs/storage.md describes (test/node/storage-doc.test.ts): a key written any other way fails here.
afterAll(async () => {
  const unknown: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.REVOKED.list(cursor ? { cursor } : {});
    unknown.push(...page.keys.map((k) => k.name).filter((name) => !isKnownKvKey(name)));
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  expect(unknown, "KV keys missing from src/auth/core/kv-keys.ts and docs/storage.md").toEqual([]);
});
