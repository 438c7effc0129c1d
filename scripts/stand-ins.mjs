// Local stand-ins for the two services new passwords and bot checks call, so tests and `npm run dev`
// never reach the internet (docs/passwords.md, docs/security.md):
//   GET  /pwned/<tag>/range/<5 hex>   Pwned Passwords' range API: `SUFFIX:COUNT` lines (CRLF), with
//                                     the known breached passwords below among random suffixes, and
//                                     padding lines of count 0 when the request says Add-Padding: true.
//                                     A tag starting with "down" answers 500, "slow" answers after 5 s,
//                                     "empty" answers 200 without a range. Any other tag is a normal range.
//   GET  /pwned-log/<tag>             what the range API received under that tag: [{path, padding}]
//   POST /siteverify[/<mode>]         Turnstile's siteverify (form: secret, response, remoteip):
//                                     "pass" and Cloudflare's dummy token XXXX.DUMMY.TOKEN.XXXX succeed every
//                                     time; "once-<x>" succeeds once, then timeout-or-duplicate; "action-<a>"
//                                     succeeds for action <a>; anything else invalid-input-response.
//                                     Mode "down" answers 500; "deaf" never answers.
//   GET  /siteverify-log              what siteverify received: [{secret, response, remoteip}]
// `node scripts/stand-ins.mjs` serves them on STAND_INS_PORT (default 9400); scripts/dev.mjs starts them
// for `npm run dev`, test/vitest.config.ts for the workerd suite.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";

/** Passwords the range stand-in reports as breached (and how often): the tests' and the dev server's. */
export const BREACHED_PASSWORDS = {
  "Tr0ub4dor&3": 31_572,
  "correct horse battery staple": 412,
  "breached test password": 7,
  "pwned-but-long-enough": 1,
};

/** A password whose suffix the range stand-in lists only among the padding (count 0): not breached. */
export const PADDING_ONLY_PASSWORD = "only in the padding";

export const TURNSTILE_PASSING_TOKENS = ["pass", "XXXX.DUMMY.TOKEN.XXXX"];

const sha1 = (s) => createHash("sha1").update(s.normalize("NFC"), "utf8").digest("hex").toUpperCase();
const randomSuffix = () => randomBytes(18).toString("hex").slice(0, 35).toUpperCase();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A range as the real API answers it: the known suffixes under this prefix, real-looking others, and padding. */
function range(prefix, padding) {
  const lines = [];
  for (const [password, count] of Object.entries(BREACHED_PASSWORDS)) {
    const hash = sha1(password);
    if (hash.startsWith(prefix)) lines.push(`${hash.slice(5)}:${count}`);
  }
  for (let i = 0; i < 400; i++) lines.push(`${randomSuffix()}:${1 + (i % 97)}`);
  // The real API pads every answer to 800-1,000 lines with count-0 suffixes.
  const padded = sha1(PADDING_ONLY_PASSWORD);
  if (padding && padded.startsWith(prefix)) lines.push(`${padded.slice(5)}:0`);
  if (padding) for (let i = lines.length; i < 900; i++) lines.push(`${randomSuffix()}:0`);
  return lines.sort().join("\r\n");
}

export async function startStandIns({ port = 0, host = "127.0.0.1", unref = false } = {}) {
  const pwnedLog = new Map();
  const siteverifyLog = [];
  const spent = new Set();
  const server = createServer(async (req, res) => {
    res.on("error", () => {}); // a fetch given up on (slow, deaf) closes the socket under a late write
    const url = new URL(req.url, "http://x");
    const send = (status, body, type = "application/json") => {
      const text = typeof body === "string" ? body : JSON.stringify(body);
      res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(text) });
      res.end(text);
    };
    const parts = url.pathname.split("/").filter(Boolean);
    if (req.method === "GET" && parts[0] === "pwned" && parts[2] === "range" && parts.length === 4) {
      const [, tag, , prefix] = parts;
      const padding = req.headers["add-padding"] === "true";
      pwnedLog.set(tag, [...(pwnedLog.get(tag) ?? []), { path: url.pathname, padding }]);
      if (!/^[0-9A-Fa-f]{5}$/.test(prefix)) return send(400, "The hash prefix was not in a valid format", "text/plain");
      if (tag.startsWith("down")) return send(500, "down", "text/plain");
      if (tag.startsWith("slow")) await sleep(5_000);
      if (tag.startsWith("empty")) return send(200, "<html>captive portal</html>", "text/html");
      return send(200, range(prefix.toUpperCase(), padding), "text/plain");
    }
    if (req.method === "GET" && parts[0] === "pwned-log" && parts.length === 2) return send(200, pwnedLog.get(parts[1]) ?? []);
    if (req.method === "GET" && url.pathname === "/siteverify-log") return send(200, siteverifyLog);
    if (req.method === "POST" && parts[0] === "siteverify") {
      const mode = parts[1];
      if (mode === "deaf") return; // never answers
      let raw = "";
      for await (const chunk of req) raw += chunk;
      if (mode === "down") return send(500, { success: false, "error-codes": ["internal-error"] });
      const form = new URLSearchParams(raw);
      const token = form.get("response") ?? "";
      siteverifyLog.push({ secret: form.get("secret"), response: token, remoteip: form.get("remoteip") });
      const verdict = (codes, action) =>
        send(200, {
          success: codes.length === 0,
          "error-codes": codes,
          ...(codes.length === 0 ? { challenge_ts: new Date().toISOString(), hostname: "localhost", ...(action ? { action } : {}) } : {}),
        });
      if (!form.get("secret")) return verdict(["missing-input-secret"]);
      if (!token) return verdict(["missing-input-response"]);
      if (TURNSTILE_PASSING_TOKENS.includes(token)) return verdict([]);
      if (token.startsWith("action-")) return verdict([], token.slice("action-".length));
      if (token.startsWith("once-")) {
        if (spent.has(token)) return verdict(["timeout-or-duplicate"]);
        spent.add(token);
        return verdict([]);
      }
      return verdict(["invalid-input-response"]);
    }
    send(404, { error: "not_found" });
  });
  await new Promise((resolve) => server.listen(port, host, resolve));
  if (unref) server.unref();
  const origin = `http://${host}:${server.address().port}`;
  return { ...urls(origin), close: () => new Promise((resolve) => server.close(resolve)), server };
}

/** URLs of stand-ins listening at `origin`. */
const urls = (origin) => ({
  origin,
  /** The range API under a tag: PWNED_PASSWORDS_URL (the hash prefix is appended). */
  pwned: (tag = "default") => `${origin}/pwned/${tag}/range/`,
  siteverify: (mode) => `${origin}/siteverify${mode ? `/${mode}` : ""}`,
});

/**
 * The stand-ins in a process of their own, ended with this one: the workerd suite's, whose own
 * process is busy transforming modules (a range query there could wait past its timeout).
 */
export async function startStandInsProcess() {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
    env: { ...process.env, STAND_INS_PORT: "0" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  process.on("exit", () => child.kill());
  const origin = await new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`stand-ins exited with ${code}`)));
    child.stdout.on("data", (chunk) => {
      const m = /PWNED_PASSWORDS_URL=(http:\/\/[^/]+)/.exec(String(chunk));
      if (m) resolve(m[1]);
    });
  });
  child.unref();
  child.stdout.unref?.();
  return { ...urls(origin), close: () => child.kill() };
}

/**
 * `wrangler dev` arguments pointing the API at the stand-ins: for `npm run dev`, `npm run demo` and the
 * e2e run, so nothing waits on the internet. A name `devVars` (the text of .dev.vars) sets is left to it.
 */
export function standInArgs(standIns, devVars = "") {
  const named = (name) => new RegExp(`^\\s*${name}\\s*=`, "m").test(devVars);
  return [
    ...(named("PWNED_PASSWORDS_URL") ? [] : ["--var", `PWNED_PASSWORDS_URL:${standIns.pwned("dev")}`]),
    ...(named("TURNSTILE_VERIFY_URL") ? [] : ["--var", `TURNSTILE_VERIFY_URL:${standIns.siteverify()}`]),
  ];
}

/** .dev.vars' text, or "" without one. */
export const devVarsText = () => (existsSync(".dev.vars") ? readFileSync(".dev.vars", "utf8") : "");

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const standIns = await startStandIns({ port: Number(process.env.STAND_INS_PORT ?? 9400) });
  console.log(`stand-ins: PWNED_PASSWORDS_URL=${standIns.pwned("dev")}`);
  console.log(`stand-ins: TURNSTILE_VERIFY_URL=${standIns.siteverify()} (tokens "pass" and XXXX.DUMMY.TOKEN.XXXX pass)`);
  const stop = () => standIns.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
