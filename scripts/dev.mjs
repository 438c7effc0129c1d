// `npm run dev`: local setup (scripts/dev-setup.mjs), then `wrangler dev` on 8787, or the port given
// with `npm run dev -- --port N` (ISSUER follows it). A port already in use is refused, plainly,
// before any setup runs (a second dev server next to the first one helps nobody).
import { spawn, spawnSync } from "node:child_process";
import { portFree } from "./servers.mjs";
import { devVarsText, standInArgs, startStandIns } from "./stand-ins.mjs";

const args = process.argv.slice(2);
const i = args.findIndex((a) => a === "--port" || a.startsWith("--port="));
const port = Number(i < 0 ? 8787 : args[i].includes("=") ? args[i].split("=")[1] : args[i + 1]);

if (!(await portFree(port))) {
  console.error(`dev: port ${port} is in use (another \`npm run dev\`?). Stop it, or pick another port: npm run dev -- --port ${port + 1}`);
  process.exit(1);
}

const setup = spawnSync(process.execPath, ["scripts/dev-setup.mjs"], { stdio: "inherit" });
if (setup.status !== 0) process.exit(setup.status ?? 1);

const portArgs = i < 0 ? ["--port", String(port)] : [];
// New passwords are checked against Pwned Passwords and sign-ups may ask for Turnstile: in dev both
// go to the local stand-ins (scripts/stand-ins.mjs), so nothing waits on the internet, unless
// .dev.vars names its own PWNED_PASSWORDS_URL or TURNSTILE_VERIFY_URL (docs/passwords.md).
const devVars = devVarsText();
const standIns = standInArgs(await startStandIns({ unref: true }), devVars);
// wrangler dev reads from .dev.vars only the secrets [secrets] required lists; the optional ones of a
// key rotation (docs/crypto.md) are passed here when .dev.vars has them.
const optional = [...devVars.matchAll(/^((?:PASSWORD_PEPPER|MFA_ENCRYPTION_KEY)_PREVIOUS)\s*=\s*['"]?([^'"\n]+)['"]?\s*$/gm)];
const optionalArgs = optional.flatMap((m) => ["--var", `${m[1]}:${m[2]}`]);
const wrangler = spawn("wrangler", ["dev", ...portArgs, "--var", `ISSUER:http://localhost:${port}`, ...standIns, ...optionalArgs, ...args], {
  stdio: "inherit",
  shell: process.platform === "win32",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
wrangler.on("exit", (code) => process.exit(code ?? 0));
