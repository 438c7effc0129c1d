import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";

describe("the client on Node 22", () => {
  it("loads as the ./client export of an installed package, and reports a refused connection as network_error", () => {
    // An app's node_modules/edge-auth-api, as npm would install it: Node strips no types there, so
    // the export must be the built JavaScript.
    const app = mkdtempSync(path.join(tmpdir(), "client-consumer-"));
    try {
      const pkg = path.join(app, "node_modules", "edge-auth-api");
      mkdirSync(path.join(pkg, "client"), { recursive: true });
      cpSync("package.json", path.join(pkg, "package.json"));
      cpSync("client/dist", path.join(pkg, "client", "dist"), { recursive: true });
      const script = `
        const { createAuthClient, AuthError } = await import("edge-auth-api/client");
        const client = createAuthClient({ baseUrl: "http://127.0.0.1:9" });
        const err = await client.login({ username: "alice", password: "correct horse 42" }).catch((e) => e);
        console.log(JSON.stringify({ isAuthError: err instanceof AuthError, code: err.code, status: err.status, state: client.state }));
      `;
      const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: app, encoding: "utf8" });
      expect(run.stderr).toBe("");
      expect(JSON.parse(run.stdout.trim())).toEqual({ isAuthError: true, code: "network_error", status: 0, state: { signedIn: false } });
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });
});
