// better-auth beside the API in `npm run bench` (scripts/bench.mjs calls peerRows; docs/performance.md,
// "Beside better-auth"): its worker (test/bench/better-auth/) under `wrangler dev` on its own local D1,
// its schema (schema.sql, from its own generator) applied first. Each round measures our endpoint,
// then better-auth's, as the floors are measured, and the ratio is ours / theirs within the round:
// sign-up and sign-in with its default hash (scrypt) and with PBKDF2 at our count (its documented
// password hooks), the session check (our GET /protected, its GET /get-session), a guest's start
// (its anonymous plugin) and an organization switch (its organization plugin).

import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { start, waitFor } from "./servers.mjs";

const PORT = 8798;
const DIR = "test/bench/better-auth";
const AUTH = (hash) => `/${hash}/api/auth`;
const fmt = (n, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");

// [row, our side (bench.mjs's api key), label, our label]
export const PEER = [
  ["peer-register", "register", "better-auth: POST /sign-up/email (scrypt, its default)", "POST /register"],
  ["peer-register-pbkdf2", "register", "better-auth: POST /sign-up/email (PBKDF2 %i)", "POST /register"],
  ["peer-login", "login", "better-auth: POST /sign-in/email (scrypt, its default)", "POST /login"],
  ["peer-login-pbkdf2", "login", "better-auth: POST /sign-in/email (PBKDF2 %i)", "POST /login"],
  ["peer-session", "protected", "better-auth: GET /get-session (D1 session read)", "GET /protected"],
  ["peer-guest", "guest", "better-auth: POST /sign-in/anonymous", "POST /guests"],
  ["peer-org", "org", "better-auth: POST /organization/set-active", "POST /orgs/switch"],
];

/** better-auth's worker on its own fresh local D1; its pid for CPU. */
async function startPeer(b) {
  const persist = path.join(b.state, "better-auth");
  const config = ["-c", `${DIR}/wrangler.toml`, "--persist-to", persist];
  const schema = spawnSync("wrangler", ["d1", "execute", "DB", "--local", ...config, "--file", `${DIR}/schema.sql`], {
    cwd: b.root,
    env: { ...b.env, CI: "true" },
    encoding: "utf8",
    shell: process.platform === "win32",
  });
  if (schema.status !== 0) throw new Error(`better-auth's schema failed:\n${schema.stdout}${schema.stderr}`);
  const vars = { BETTER_AUTH_SECRET: randomBytes(32).toString("base64url"), BASE_URL: `http://localhost:${PORT}`, PASSWORD_ITERATIONS: b.iterations };
  const server = start("wrangler", ["dev", ...config, "--port", String(PORT), ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`])], {
    quiet: true,
  });
  await waitFor(`http://localhost:${PORT}${AUTH("scrypt")}/ok`, "better-auth's worker");
  return b.workerPid(server.pid, PORT);
}

/**
 * Our requests the peer rows add to bench.mjs's `api`: a guest's start, and an organization switch,
 * one chain per loop (a switch revokes the token it was sent with and answers a new one), each loop
 * a user of its own, member of one organization.
 */
async function ourExtras(b, asked) {
  const extras = { guest: () => b.send(b.port, "POST", "/guests", { body: {} }) };
  if (!asked.some(([key]) => key === "peer-org")) return extras;
  const chains = await b.inParallel(
    Array.from({ length: b.CONCURRENCY }, () => ({})),
    async (chain) => {
      const username = `bench_peer_${randomBytes(4).toString("hex")}`;
      chain.token = (await b.send(b.port, "POST", "/register", { body: { username, password: b.PASSWORD } })).access_token;
      chain.org = (await b.send(b.port, "POST", "/orgs", { token: chain.token, body: { name: "Bench", slug: username.replaceAll("_", "-") } })).organization.id;
    },
  );
  extras.org = async (loop) => {
    const chain = chains[loop];
    chain.token = (await b.send(b.port, "POST", "/orgs/switch", { token: chain.token, body: { org_id: chain.org } })).access_token;
  };
  return extras;
}

/** The rows of PEER that were asked for, and their table. `b` is bench.mjs's kit with `api` (our requests). */
export async function peerRows(b) {
  const asked = PEER.filter(([key]) => b.selected(key));
  if (!asked.length) return { rows: {}, table: [] };
  const pid = await startPeer(b);
  const ours = { ...b.api, ...(await ourExtras(b, asked)) };
  let made = 0;
  const email = () => `peer${made++}_${randomBytes(4).toString("hex")}@example.com`;
  const body = (address) => ({ email: address, password: b.PASSWORD, name: "Bench" });
  const signUp = (hash) => b.send(PORT, "POST", `${AUTH(hash)}/sign-up/email`, { body: body(email()) });
  // Sign-ins spread over CONCURRENCY accounts per hash (its own rate limiter is off); one session for the check.
  const accounts = {};
  for (const hash of ["scrypt", "pbkdf2"]) {
    accounts[hash] = await b.inParallel(
      Array.from({ length: b.CONCURRENCY }, () => email()),
      (address) => b.send(PORT, "POST", `${AUTH(hash)}/sign-up/email`, { body: body(address) }),
    );
  }
  const session = await b.send(PORT, "POST", `${AUTH("scrypt")}/sign-in/email`, { body: { email: accounts.scrypt[0], password: b.PASSWORD } });
  const cookieOf = (answer) => [answer[b.HEADERS]["set-cookie"]].flat()[0].split(";")[0];
  const cookie = cookieOf(session);
  // A browser's Origin: better-auth refuses a cookie-carrying POST without one of its trusted origins.
  const as = (c) => ({ cookie: c, origin: `http://localhost:${PORT}` });
  // Each loop a member of its own organization, in a session of its own.
  const members = [];
  for (let loop = 0; asked.some(([key]) => key === "peer-org") && loop < b.CONCURRENCY; loop++) {
    const c = cookieOf(await signUp("scrypt"));
    const slug = `bench-${randomBytes(4).toString("hex")}`;
    const { id } = await b.send(PORT, "POST", `${AUTH("scrypt")}/organization/create`, { headers: as(c), body: { name: "Bench", slug } });
    members.push({ cookie: c, id });
  }
  const signIn = (hash) => (loop) => b.send(PORT, "POST", `${AUTH(hash)}/sign-in/email`, { body: { email: accounts[hash][loop], password: b.PASSWORD } });
  const theirs = {
    "peer-register": () => signUp("scrypt"),
    "peer-register-pbkdf2": () => signUp("pbkdf2"),
    "peer-login": signIn("scrypt"),
    "peer-login-pbkdf2": signIn("pbkdf2"),
    "peer-session": async () => {
      const answer = await b.send(PORT, "GET", `${AUTH("scrypt")}/get-session`, { headers: { cookie } });
      if (!answer?.session) throw new Error("better-auth's get-session answered no session");
    },
    "peer-guest": () => b.send(PORT, "POST", `${AUTH("scrypt")}/sign-in/anonymous`),
    "peer-org": (loop) =>
      b.send(PORT, "POST", `${AUTH("scrypt")}/organization/set-active`, { headers: as(members[loop].cookie), body: { organizationId: members[loop].id } }),
  };

  const rows = {};
  for (const [key, our] of asked) {
    const runs = { api: [], floor: [], same: [] }; // api: ours, floor: theirs (summarize's ratio is ours / theirs)
    for (let round = 0; round < b.ROUNDS; round++) {
      runs.api.push(await b.measure(b.apiPid, ours[our]));
      runs.floor.push(await b.measure(pid, theirs[key]));
    }
    rows[key] = b.summarize(runs);
  }
  const line = (cells) => `| ${cells.join(" | ")} |`;
  const table = [
    line(["better-auth endpoint", "its worker ms", "its req/s", "ours", "our worker ms", "our req/s", "CPU, ours / theirs", "throughput, ours / theirs"]),
    line(["---", "---:", "---:", "---", "---:", "---:", "---:", "---:"]),
    ...asked.map(([key, , name, ourName]) => {
      const { api: r, floor: f, cpuRatio, rpsRatio } = rows[key];
      return line([name.replace("%i", b.iterations), fmt(f.cpu), fmt(f.rps, 0), ourName, fmt(r.cpu), fmt(r.rps, 0), `${fmt(cpuRatio)}x`, `${fmt(rpsRatio)}x`]);
    }),
  ];
  return { rows, table };
}
