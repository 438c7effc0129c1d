// `npm run docs:check`: runs what the docs promise a newcomer, against a fresh API on a port of its own
// (8792), and fails on the first step that fails:
// 1. the README's walkthrough (between the walkthrough markers), top to bottom in bash, twice;
// 2. the local social sign-in of docs/social-sign-in.md ("Trying it locally"): `npm run idp`'s lines
//    in .dev.vars, `wrangler dev`, a sign-in through the local IdP's own login page (over HTTP, as a
//    browser would), the exchange, and a signed-in call. The API runs with those lines from the start,
//    so the walkthrough also proves that password sign-in works with social sign-in configured.
// Needs bash, curl and jq. The developer's .dev.vars is read, never changed: the API gets a copy with
// npm run idp's lines in it (`--env-file`, which wrangler reads by the same rules as .dev.vars: only
// names wrangler.toml declares).
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { signInAtLocalIdp } from "./idp-login.mjs";
import { prepareState, root, start, stop, waitFor } from "./servers.mjs";
import { standInArgs, startStandIns } from "./stand-ins.mjs";

const readme = readFileSync(path.join(root, "README.md"), "utf8");
const section = /<!-- walkthrough:start -->([\s\S]*?)<!-- walkthrough:end -->/.exec(readme)?.[1];
const script = [...(section ?? "").matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).join("\n");
if (!script.trim()) {
  console.error("docs:check: no walkthrough found in README.md");
  process.exit(1);
}

const API = "http://localhost:8792";
const state = mkdtempSync(path.join(tmpdir(), "docs-check-"));
const env = { ...process.env, PATH: path.join(root, "node_modules", ".bin") + path.delimiter + process.env.PATH, CI: "true", WRANGLER_SEND_METRICS: "false" };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `npm run idp` on ports of its own (any free ones), for this API: the two lines it says to put in .dev.vars. */
async function localIdp() {
  const log = path.join(state, "idp.log");
  start("node", ["scripts/identity-providers.mjs"], { log, extraEnv: { IDP_PORT: "0", API_ORIGIN: API } });
  for (const end = Date.now() + 30_000; Date.now() < end; await sleep(200)) {
    const out = existsSync(log) ? readFileSync(log, "utf8") : "";
    const lines = out.split("\n").filter((l) => /^OAUTH_(PROVIDERS|CLIENT_SECRETS)='/.test(l));
    if (lines.length === 2) return lines;
  }
  throw new Error(`npm run idp printed no OAUTH_PROVIDERS and OAUTH_CLIENT_SECRETS lines:\n${readFileSync(log, "utf8")}`);
}

/** .dev.vars as the docs say to edit it: npm run idp's lines replace any line of the same name. */
function devVarsWith(lines) {
  const file = path.join(root, ".dev.vars");
  const names = lines.map((l) => l.split("=")[0]);
  const kept = (existsSync(file) ? readFileSync(file, "utf8") : "").split("\n").filter((l) => !names.some((n) => l.startsWith(`${n}=`)));
  const copy = path.join(state, "dev.vars");
  writeFileSync(copy, `${kept.join("\n").trimEnd()}\n${lines.join("\n")}\n`);
  return copy;
}

/** A social sign-in as the typed client and a browser make it, in bearer mode; answers the user the API then knows. */
async function socialSignIn() {
  const fail = (step, res, body) => {
    throw new Error(`the local social sign-in failed at ${step}: ${res.status} ${body ?? ""}`);
  };
  const listed = await fetch(`${API}/oauth/providers`);
  const { providers = [] } = await listed.json();
  if (!providers.some((p) => p.id === "local"))
    fail("GET /oauth/providers (no local provider: were npm run idp's lines loaded?)", listed, JSON.stringify(providers));
  // The client's signInWith(): a secret kept by the tab, its S256 in the start URL.
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const started = await fetch(`${API}/oauth/local/start?use_cookie=false&code_challenge=${challenge}`, { redirect: "manual" });
  const flow = /oauth_flow=([^;]+)/.exec(started.headers.get("set-cookie") ?? "")?.[1];
  if (started.status !== 302 || !flow) fail("GET /oauth/local/start", started, await started.text());
  const name = `docs_${Date.now().toString(36)}`;
  const back = await signInAtLocalIdp(new URL(started.headers.get("location")), name);
  const landed = await fetch(`${API}/oauth/local/callback?${back}`, { headers: { cookie: `oauth_flow=${flow}` }, redirect: "manual" });
  const fragment = new URLSearchParams(new URL(landed.headers.get("location") ?? "", API).hash.slice(1));
  if (!fragment.get("oauth_code")) fail("the callback", landed, fragment.toString());
  // The client's completeSignIn(): the code from the fragment, with the tab's secret.
  const exchanged = await fetch(`${API}/oauth/exchange`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ code: fragment.get("oauth_code"), code_verifier: verifier }),
  });
  const tokens = await exchanged.json();
  if (!exchanged.ok || !tokens.access_token) fail("POST /oauth/exchange", exchanged, JSON.stringify(tokens));
  const me = await fetch(`${API}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  const body = await me.json();
  if (!me.ok || body.user?.username !== name) fail("GET /me", me, JSON.stringify(body));
  return body.user;
}

let status = 1;
try {
  prepareState(state);
  const devVars = devVarsWith(await localIdp());
  // Pwned Passwords and Turnstile's siteverify: the local stand-ins, as for `npm run dev`.
  const standIns = standInArgs(await startStandIns({ unref: true }));
  start("wrangler", ["dev", "--port", "8792", "--persist-to", state, "--env-file", devVars, "--var", `ISSUER:${API}`, ...standIns], { quiet: true });
  await waitFor(`${API}/health`, "the API");
  // Twice against the same API: the README promises it can be run again as it is.
  for (const round of [1, 2]) {
    const run = spawnSync("bash", ["-euo", "pipefail", "-c", script], {
      cwd: root,
      stdio: "inherit",
      env: { ...env, API, EDGE_AUTH_PERSIST_TO: state, npm_config_prefix: undefined },
    });
    status = run.status ?? 1;
    if (status !== 0) {
      console.log(`docs:check: the walkthrough failed in run ${round} (exit ${status})`);
      break;
    }
    console.log(`docs:check: the README's walkthrough ran top to bottom (run ${round} of 2)`);
  }
  if (status === 0) {
    const user = await socialSignIn();
    console.log(`docs:check: the local social sign-in of docs/social-sign-in.md signed in ${user.username} through the local IdP`);
  }
} catch (err) {
  console.error(`docs:check: ${err.message}`);
  status = 1;
} finally {
  stop();
  rmSync(state, { recursive: true, force: true });
}
process.exit(status);
