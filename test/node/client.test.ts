import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

describe("the client on Node 22", () => {
  it("loads as the package's ./client export with no build step, and reports a refused connection as network_error", () => {
    // Node 22 strips the types of client/index.ts itself: no bundler, no loader.
    const script = `
      const { createAuthClient, AuthError } = await import("edge-auth-api/client");
      const client = createAuthClient({ baseUrl: "http://127.0.0.1:9" });
      const err = await client.login({ username: "alice", password: "correct horse 42" }).catch((e) => e);
      console.log(JSON.stringify({ isAuthError: err instanceof AuthError, code: err.code, status: err.status, state: client.state }));
    `;
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    expect(run.stderr).not.toMatch(/Error/);
    expect(JSON.parse(run.stdout.trim().split("\n").at(-1)!)).toEqual({ isAuthError: true, code: "network_error", status: 0, state: { signedIn: false } });
  });
});
