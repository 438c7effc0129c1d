// `npm run demo`: the API (as `npm run dev`: local D1/KV, dev keys) and the demo app, together; Ctrl-C
// stops both. Ports: the API on 8787 and the app on 5173, or `npm run demo -- --port 8788 --app-port 5174`.
// The API follows them: ISSUER is the API's URL, CORS_ORIGINS the app's origin and APP_URL its page
// (over whatever .dev.vars says), and the app calls the API's port. `--persist-to <dir>`: the local
// D1 and KV in that directory instead of .wrangler/state (migrated first), to keep the demo's data apart.
import { spawnSync } from "node:child_process";
import { buildDist } from "./client.mjs";
import { portFree, root, start, waitFor } from "./servers.mjs";
import { devVarsText, standInArgs, startStandIns } from "./stand-ins.mjs";

const args = process.argv.slice(2);
/** The value of `--name N` or `--name=N`. */
function option(name, fallback) {
  const i = args.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return fallback;
  return args[i].includes("=") ? args[i].slice(name.length + 1) : args[i + 1];
}
function port(name, fallback) {
  const value = option(name, String(fallback));
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    console.error(`demo: ${name} wants a port number (1-65535), not "${value}"`);
    process.exit(1);
  }
  return n;
}
const apiPort = port("--port", 8787);
const appPort = port("--app-port", 5173);
const persistTo = option("--persist-to");
if (apiPort === appPort) {
  console.error(`demo: the API and the app cannot share port ${apiPort}`);
  process.exit(1);
}

for (const [p, what, flag] of [
  [apiPort, "the API (`npm run dev`?)", "--port"],
  [appPort, "the demo app", "--app-port"],
]) {
  if (!(await portFree(p))) {
    console.error(`demo: port ${p} is in use by something else, maybe ${what}. Stop it, or pick another port: npm run demo -- ${flag} ${p + 1}`);
    process.exit(1);
  }
}

const api = `http://localhost:${apiPort}`;
const app = `http://localhost:${appPort}`;
const setup = spawnSync(process.execPath, ["scripts/dev-setup.mjs"], { cwd: root, stdio: "inherit" });
if (setup.status !== 0) process.exit(setup.status ?? 1);
// The app imports "../client", which resolves to the client package's build (client/dist/, not committed).
await buildDist();
const persist = persistTo ? ["--persist-to", persistTo] : [];
if (persistTo) {
  const migrate = spawnSync("wrangler", ["d1", "migrations", "apply", "DB", "--local", ...persist], {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    shell: process.platform === "win32",
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" },
  });
  if (migrate.status !== 0) process.exit(migrate.status ?? 1);
}
// Pwned Passwords and Turnstile's siteverify: the local stand-ins, as for `npm run dev`.
const standIns = standInArgs(await startStandIns({ unref: true }), devVarsText());
start("wrangler", [
  "dev",
  "--port",
  String(apiPort),
  ...persist,
  ...["--var", `ISSUER:${api}`, "--var", `CORS_ORIGINS:${app}`, "--var", `APP_URL:${app}/`],
  ...standIns,
]);
start("vite", ["--config", "demo/vite.config.ts", "--port", String(appPort)], { extraEnv: { VITE_API_URL: api } });
await waitFor(`${api}/health`, "the API");
await waitFor(`${app}/`, "the demo app");
console.log(`\n  demo: open ${app}  (API: ${api}, reference: ${api}/docs)\n`);
await new Promise(() => {}); // until Ctrl-C
