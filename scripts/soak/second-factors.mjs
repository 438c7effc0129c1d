// What a client needs for second factors: the API's own TOTP code generator and the software
// authenticator the tests use, bundled once with esbuild as scripts/bench.mjs does (Node's type
// stripping cannot load test/authenticator.ts).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { root } from "./server.mjs";

const dir = mkdtempSync(join(tmpdir(), "soak-2f-"));
const outfile = join(dir, "clients.mjs");
await build({ entryPoints: [join(root, "test", "bench", "clients.ts")], bundle: true, format: "esm", platform: "node", outfile, logLevel: "silent" });
const mod = await import(pathToFileURL(outfile).href);
rmSync(dir, { recursive: true, force: true });
export const { SoftAuthenticator, fromBase32, totpCode } = mod;

const STEP_MS = 30_000;
/**
 * The code of the next TOTP step this account has not used: a step is good once (the API refuses a
 * step at or before the last one it accepted), and the API takes the next one early (±1 step). Waits
 * when the account has used that one too.
 */
export async function nextCode(account) {
  for (;;) {
    const now = Math.floor(Date.now() / STEP_MS);
    const step = Math.max(now, (account.lastStep ?? now - 1) + 1);
    if (step <= now + 1) {
      account.lastStep = step;
      return totpCode(account.key, new Date(step * STEP_MS + 1000));
    }
    await new Promise((r) => setTimeout(r, (now + 1) * STEP_MS - Date.now() + 200));
  }
}
