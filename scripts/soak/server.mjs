// The soak's own API: a wrangler dev on a free port with fresh local state, every way in switched on
// (guests, open client registration, the local identity provider, passkeys for a page origin, the
// stand-ins for breached passwords and Turnstile) and its log kept, where wrangler prints the mail it
// would send. Stopped (its whole process group) however the soak ends.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startLocalIdp } from "../identity-providers.mjs";
import { standInArgs, startStandIns } from "../stand-ins.mjs";

export const root = fileURLToPath(new URL("../..", import.meta.url));
// Wrangler needs Node >= 22.12: the `node` devDependency's binary goes first on PATH, however we were started.
const env = { ...process.env, PATH: join(root, "node_modules", ".bin") + delimiter + process.env.PATH, WRANGLER_SEND_METRICS: "false" };
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** The page origin and relying-party id the soak's API accepts passkeys from. */
export const WEBAUTHN = { origin: "http://localhost:5173", rpId: "localhost" };
export const APP_URL = "http://localhost:5173/";

let server; // { dir, state, log, child, idp, port }

function run(cmd, args, extra = {}) {
  const r = spawnSync(cmd, args, { cwd: root, env: { ...env, ...extra }, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed:\n${(r.stdout + r.stderr).slice(-2000)}`);
  return r.stdout;
}
export const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer().once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
export const health = (url) =>
  fetch(`${url}/health`, { signal: AbortSignal.timeout(3000) }).then(
    (r) => r.status,
    () => 0,
  );

/** Starts the API; `vars` are extra `--var`s (name -> value). Answers its base URL and the IdP. */
export async function startServer(vars = {}) {
  const dir = mkdtempSync(join(tmpdir(), "soak-"));
  const state = join(dir, "state");
  server = { dir, state, log: join(dir, "wrangler.log") };
  if (!existsSync(join(root, ".dev.vars"))) run("node", ["scripts/dev-setup.mjs"]); // dev secrets
  run("npx", ["wrangler", "d1", "migrations", "apply", "DB", "--local", "--persist-to", state], { CI: "true" });
  const port = await freePort();
  const base = `http://localhost:${port}`;
  server.redirectUris = [`${base}/oauth/local/callback`];
  // The IdP takes a free port and the one after it (its stand-ins): another process may hold that one.
  for (let attempt = 1; !server.idp; attempt++) {
    server.idpPort = await freePort();
    server.idp = await startLocalIdp({ port: server.idpPort, redirectUris: server.redirectUris, unref: true }).catch((e) => {
      if (e.code !== "EADDRINUSE" || attempt === 5) throw e;
    });
  }
  const providers = [{ id: "local", kind: "oidc", name: "Local IdP", issuer: server.idp.oidc, client_id: server.idp.clientId }];
  const all = {
    ISSUER: base,
    APP_URL,
    CORS_ORIGINS: WEBAUTHN.origin,
    WEBAUTHN_ORIGINS: WEBAUTHN.origin,
    WEBAUTHN_RP_ID: WEBAUTHN.rpId,
    GUESTS: "on",
    OAUTH_REGISTRATION: "open",
    OAUTH_PROVIDERS: JSON.stringify(providers),
    OAUTH_CLIENT_SECRETS: JSON.stringify({ local: server.idp.clientSecret }),
    LOG_REQUESTS: "off",
    ...vars,
  };
  const args = ["wrangler", "dev", "--port", String(port), "--persist-to", state, ...Object.entries(all).flatMap(([k, v]) => ["--var", `${k}:${v}`])];
  args.push(...standInArgs(await startStandIns({ unref: true })));
  const out = openSync(server.log, "a");
  // Its own process group, so one kill reaches npx, wrangler and both workerd processes.
  server.child = spawn("npx", args, { cwd: root, env, detached: true, stdio: ["ignore", out, out] });
  for (const end = Date.now() + 60_000; Date.now() < end && server.child.exitCode === null; await sleep(500)) {
    if ((await health(base)) === 200) return { base, idp: server.idp, log: server.log };
  }
  throw new Error(`wrangler dev gave no 200 on /health within 60 s; its log ends:\n${readFileSync(server.log, "utf8").slice(-1500)}`);
}

/** Rows of one SQL query against the soak's local D1 (read-only use: counts at the end, the admin grant). */
export function d1(sql) {
  const out = run("npx", ["wrangler", "d1", "execute", "DB", "--local", "--persist-to", server.state, "--json", "--command", sql], { CI: "true" });
  return JSON.parse(out)[0].results;
}

/** The identity provider goes away (its port refuses connections) until `idpUp()`. */
export async function idpDown() {
  await server.idp.close();
}
export async function idpUp() {
  server.idp = await startLocalIdp({ port: server.idpPort, redirectUris: server.redirectUris, unref: true });
}

const killGroup = (pid, sig) => {
  try {
    return process.kill(-pid, sig);
  } catch {
    return false; // ESRCH: the group is gone
  }
};
export async function stopServer() {
  const s = server;
  server = undefined;
  if (s?.child) {
    killGroup(s.child.pid, "SIGTERM");
    for (let i = 0; i < 50 && killGroup(s.child.pid, 0); i++) await sleep(100);
    killGroup(s.child.pid, "SIGKILL");
  }
  await s?.idp?.close().catch(() => {});
  if (s) rmSync(s.dir, { recursive: true, force: true });
}
process.on("exit", () => {
  // Last resort, synchronous: whatever path got here, no server outlives us.
  if (server?.child) killGroup(server.child.pid, "SIGKILL");
  if (server) rmSync(server.dir, { recursive: true, force: true });
});
