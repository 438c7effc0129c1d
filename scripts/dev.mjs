// `npm run dev`: local setup (scripts/dev-setup.mjs), then `wrangler dev` on 8787, or the port given
// with `npm run dev -- --port N` (ISSUER follows it). A port already in use is refused, plainly:
// wrangler would otherwise serve on the next port while ISSUER still names this one.
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";

const args = process.argv.slice(2);
const i = args.findIndex((a) => a === "--port" || a.startsWith("--port="));
const port = Number(i < 0 ? 8787 : args[i].includes("=") ? args[i].split("=")[1] : args[i + 1]);

const free = await new Promise((resolve) => {
  const probe = createServer().once("error", () => resolve(false));
  probe.listen(port, "localhost", () => probe.close(() => resolve(true)));
});
if (!free) {
  console.error(`dev: port ${port} is in use (another \`npm run dev\`?). Stop it, or pick another port: npm run dev -- --port ${port + 1}`);
  process.exit(1);
}

const setup = spawnSync(process.execPath, ["scripts/dev-setup.mjs"], { stdio: "inherit" });
if (setup.status !== 0) process.exit(setup.status ?? 1);

const portArgs = i < 0 ? ["--port", String(port)] : [];
const wrangler = spawn("wrangler", ["dev", ...portArgs, "--var", `ISSUER:http://localhost:${port}`, ...args], {
  stdio: "inherit",
  shell: process.platform === "win32",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
wrangler.on("exit", (code) => process.exit(code ?? 0));
