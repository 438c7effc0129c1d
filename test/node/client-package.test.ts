import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The client as an app gets it: `npm pack` of client/ (the package of its own), installed into a tiny
 * consumer project with nothing else, typechecked under the strictest common settings with both
 * module resolutions an app uses, and run on Node.
 */

const root = path.resolve(import.meta.dirname, "../..");
const tsc = path.join(root, "node_modules", ".bin", "tsc");
const app = mkdtempSync(path.join(tmpdir(), "client-consumer-"));

const strict = {
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  noImplicitOverride: true,
  noPropertyAccessFromIndexSignature: true,
  skipLibCheck: false,
  noEmit: true,
  types: [],
  lib: ["es2022"],
};

// Every export an app reaches for, used the way an app would, under the strictest settings.
const consumer = `
import { AuthError, createAuthClient, type AuthClient, type FreshCheck, type LoginResult, type Passkey, type Security, type User, type WayIn } from "edge-auth-client";

const client: AuthClient = createAuthClient({ baseUrl: "https://auth.example.com", cookie: false });
export async function signIn(username: string, password: string): Promise<User | string> {
  const res: LoginResult = await client.login({ username, password });
  if (!res.signedIn) return (await client.loginMfa({ challenge: res.challenge, code: "123456" })).user;
  return res.user;
}
export async function security(): Promise<string[]> {
  const view: Security = await client.security();
  const ways: WayIn[] = view.ways_in;
  const needs: ("password" | "second_factor" | "new_totp_code" | "mailbox" | "recent_sign_in")[] | undefined = view.step_up.add_passkey;
  return [...ways.map((w) => w.kind), ...(needs ?? [])];
}
export async function remove(passkey: Passkey, check: FreshCheck) {
  await client.deletePasskey(passkey.id, check);
}
export async function backend(): Promise<number> {
  const withToken = createAuthClient({ baseUrl: "https://auth.example.com", backends: ["https://api.example.com"] });
  const token: string | null = await withToken.accessToken();
  const res = await withToken.fetch("https://api.example.com/notes", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  return token ? res.status : 0;
}
export function explain(err: unknown): string {
  return err instanceof AuthError ? \`\${err.code} \${err.status} \${err.retryAfter ?? ""}\` : String(err);
}
`;

beforeAll(() => {
  execFileSync("npm", ["pack", "--pack-destination", app, "--silent"], { cwd: path.join(root, "client"), stdio: "pipe", shell: process.platform === "win32" });
  const tarball = readdirSync(app).find((f) => f.endsWith(".tgz"))!;
  writeFileSync(
    path.join(app, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module", dependencies: { "edge-auth-client": `file:./${tarball}` } }),
  );
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts"], {
    cwd: app,
    stdio: "pipe",
    shell: process.platform === "win32",
  });
  mkdirSync(path.join(app, "src"));
  writeFileSync(path.join(app, "src", "app.ts"), consumer);
}, 120_000);
afterAll(() => rmSync(app, { recursive: true, force: true }));

describe("the client as a package of its own", () => {
  it("installs from its tarball with no dependency, and ships only its build", () => {
    const installed = readdirSync(path.join(app, "node_modules")).filter((f) => !f.startsWith("."));
    expect(installed).toEqual(["edge-auth-client"]);
    expect(readdirSync(path.join(app, "node_modules", "edge-auth-client")).sort()).toEqual(["dist", "package.json"]);
  });

  for (const [name, resolution] of [
    ["bundler", { module: "esnext", moduleResolution: "bundler" }],
    ["node16", { module: "node16", moduleResolution: "node16" }],
  ] as const) {
    it(`typechecks in a strict consumer (moduleResolution ${name}: strict, exactOptionalPropertyTypes, noUncheckedIndexedAccess, no skipLibCheck)`, () => {
      writeFileSync(
        path.join(app, `tsconfig.${name}.json`),
        JSON.stringify({ compilerOptions: { ...strict, ...resolution, target: "es2022" }, include: ["src"] }),
      );
      const run = spawnSync(tsc, ["-p", `tsconfig.${name}.json`], { cwd: app, encoding: "utf8" });
      expect(run.stdout + run.stderr).toBe("");
      expect(run.status).toBe(0);
    });
  }

  it("gives client.fetch() the platform's own types where the app has them (DOM: Request in, Response out)", () => {
    mkdirSync(path.join(app, "dom"), { recursive: true });
    writeFileSync(
      path.join(app, "dom", "app.ts"),
      `import { createAuthClient } from "edge-auth-client";
const client = createAuthClient({ baseUrl: "https://auth.example.com", backends: ["https://api.example.com"] });
export async function call(): Promise<Response> {
  const init: RequestInit = { method: "PUT", body: new Blob(["x"]), signal: AbortSignal.timeout(5000) };
  await client.fetch(new Request("https://api.example.com/a"));
  await client.fetch(new URL("https://api.example.com/b"), init);
  return client.fetch("https://api.example.com/c");
}
`,
    );
    writeFileSync(
      path.join(app, "tsconfig.dom.json"),
      JSON.stringify({
        compilerOptions: { ...strict, module: "esnext", moduleResolution: "bundler", target: "es2022", lib: ["es2022", "dom"] },
        include: ["dom"],
      }),
    );
    const run = spawnSync(tsc, ["-p", "tsconfig.dom.json"], { cwd: app, encoding: "utf8" });
    expect(run.stdout + run.stderr).toBe("");
    expect(run.status).toBe(0);
  });

  it("runs on Node: a refused connection is an AuthError network_error, never undefined", () => {
    const script = `
      const { createAuthClient, AuthError } = await import("edge-auth-client");
      const client = createAuthClient({ baseUrl: "http://127.0.0.1:9" });
      const err = await client.login({ username: "alice", password: "correct horse 42" }).catch((e) => e);
      console.log(JSON.stringify({ isAuthError: err instanceof AuthError, code: err.code, status: err.status, state: client.state }));
    `;
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: app, encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(JSON.parse(run.stdout.trim())).toEqual({ isAuthError: true, code: "network_error", status: 0, state: { signedIn: false } });
  });
});
