import { env } from "cloudflare:workers";
import { beforeEach, expect, it } from "vitest";
import { activeKeys } from "../src/auth/core/signing-keys";
import { maintainRing } from "../src/auth/keys/rotation";
import { getConfig } from "../src/config";
import { getDb } from "../src/db/client";

/**
 * The isolate's view of the key ring (src/auth/core/signing-keys.ts) keeps only finished reads, so no
 * request awaits another's KV read (Workers refuse that I/O). A read begun before this isolate changed
 * the ring (an emergency retirement) must then not be kept after it.
 */
// KEY_PROPAGATION 120 s: the view is re-read every 60 s, so only forgetView makes it read again here.
const SLOW = { SIGNING_KEYS: "rotating", KEY_PROPAGATION: "120", JWT_PRIVATE_KEY: "" } as const;
const stores = (kv: KVNamespace = env.REVOKED) => ({ config: getConfig({ ...env, ...SLOW } as Env), db: getDb(env.DB), kv });

beforeEach(async () => {
  await env.DB.prepare("DELETE FROM signing_keys").run();
  await env.REVOKED.delete("keyring");
});

it("a ring read begun before an emergency retirement is not kept after it", async () => {
  await maintainRing(stores(), {});
  const current = (await activeKeys(stores())).kid;
  await maintainRing(stores(), { scheduled: true }, new Date()); // the view is due: the next request reads
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const slowKv = {
    get: async (key: string, type: "json") => {
      const value = await env.REVOKED.get(key, type);
      await gate; // the mirror as it was, answered late
      return value;
    },
  } as unknown as KVNamespace;
  const inflight = activeKeys(stores(slowKv));
  await new Promise((r) => setTimeout(r, 20));
  expect((await maintainRing(stores(), { retire: current, by: "op" })).retired).toEqual([current]);
  release();
  await inflight;
  const after = await activeKeys(stores());
  expect(after.kid, "signs with the retired key").not.toBe(current);
  expect(
    after.jwks.keys.map((k) => k.kid),
    "verifies the retired key",
  ).not.toContain(current);
});
