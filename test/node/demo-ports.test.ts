import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * `npm run demo -- --port <api> --app-port <app>`: both servers on the ports asked for, and the API
 * following the app: ISSUER on the API's port, the app's origin allowed (CORS_ORIGINS), mailed links
 * to the app's page (APP_URL), and the app calling the API's port. Ports of their own (8797, 5182),
 * under `flock /tmp/edge-auth-ports.lock` like the rest of `npm test`.
 */
const API = "http://localhost:8797";
const APP = "http://localhost:5182";
const ORIGIN = { origin: APP };

let demo: ChildProcess;
let output = "";
const state = mkdtempSync(path.join(tmpdir(), "demo-ports-"));

beforeAll(async () => {
  demo = spawn(process.execPath, ["scripts/demo.mjs", "--port", "8797", "--app-port=5182", "--persist-to", state], {
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", PATH: `${path.resolve("node_modules/.bin")}${path.delimiter}${process.env.PATH}` },
    detached: true, // its own process group: the servers it starts end with it
  });
  for (const stream of [demo.stdout!, demo.stderr!]) stream.on("data", (chunk) => (output += chunk));
  const end = Date.now() + 110_000;
  while (!output.includes("demo: open") && Date.now() < end && demo.exitCode === null) await new Promise((r) => setTimeout(r, 250));
  expect(output, output).toContain(`demo: open ${APP}  (API: ${API}, reference: ${API}/docs)`);
}, 120_000);

afterAll(async () => {
  if (demo?.pid && demo.exitCode === null) {
    const exited = new Promise((r) => demo.once("exit", r));
    process.kill(-demo.pid, "SIGTERM");
    await exited;
  }
  rmSync(state, { recursive: true, force: true });
});

describe("npm run demo with other ports", () => {
  it("serves the app on --app-port, calling the API on --port", async () => {
    const page = await fetch(`${APP}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("edge-auth-api demo");
    // Vite puts VITE_API_URL into the module it serves.
    expect(await (await fetch(`${APP}/main.ts`)).text()).toContain(API);
  });

  it("runs the API on --port with ISSUER there and the app's origin allowed, cookies included", async () => {
    const discovery = (await (await fetch(`${API}/.well-known/openid-configuration`)).json()) as { issuer: string };
    expect(discovery.issuer).toBe(API);
    const preflight = await fetch(`${API}/refresh`, {
      method: "OPTIONS",
      headers: { ...ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
    });
    expect(preflight.headers.get("access-control-allow-origin")).toBe(APP);
    expect(preflight.headers.get("access-control-allow-credentials")).toBe("true");
    // The default app's origin is not the demo's any more.
    const old = await fetch(`${API}/health`, { headers: { origin: "http://localhost:5173" } });
    expect(old.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("mails links to the app's page on --app-port (APP_URL)", async () => {
    const username = `ports_${Date.now().toString(36)}`;
    const res = await fetch(`${API}/register`, {
      method: "POST",
      headers: { ...ORIGIN, "content-type": "application/json" },
      body: JSON.stringify({ username, email: `${username}@example.com`, password: "correct horse 42" }),
    });
    expect(res.status).toBe(201);
    // wrangler's local mail prints the path of each body; the verification link is in the text one.
    const end = Date.now() + 10_000;
    let mail = "";
    while (!mail.includes("#verify-email=") && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 200));
      const text = [...output.matchAll(/^Text: (.+)$/gm)].map((m) => m[1]!.trim()).at(-1);
      mail = text ? readFileSync(text, "utf8") : "";
    }
    expect(mail).toMatch(new RegExp(`${APP}/#verify-email=[A-Za-z0-9_-]+`));
  });

  it("refuses a port in use, naming the flag that picks another", async () => {
    const busy = createServer().listen(5183, "localhost");
    await new Promise((r) => busy.once("listening", r));
    try {
      const run = spawn(process.execPath, ["scripts/demo.mjs", "--port", "8798", "--app-port", "5183"]);
      let err = "";
      run.stderr.on("data", (c) => (err += c));
      const code = await new Promise((r) => run.once("exit", r));
      expect(code).toBe(1);
      expect(err).toMatch(/port 5183 is in use .* npm run demo -- --app-port 5184/);
    } finally {
      busy.close();
    }
    const bad = spawn(process.execPath, ["scripts/demo.mjs", "--port", "http"]);
    let err = "";
    bad.stderr.on("data", (c) => (err += c));
    expect(await new Promise((r) => bad.once("exit", r))).toBe(1);
    expect(err).toMatch(/--port wants a port number/);
  });
});
