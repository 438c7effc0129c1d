// Grants the admin role: npm run admin:grant -- <username> [--enable] [--remote]
// Runs against the local D1 database unless --remote is given (then the deployed one). A disabled
// account stays disabled (an admin disabled it for a reason) unless --enable is given: then it is
// enabled too, and can sign in again.
import { execFileSync } from "node:child_process";

const args = process.argv.slice(2);
const remote = args.includes("--remote");
const enable = args.includes("--enable");
const username = args.find((a) => !a.startsWith("--"));
if (!username || !/^[A-Za-z0-9_]{3,32}$/.test(username)) {
  console.error("usage: npm run admin:grant -- <username> [--enable] [--remote]");
  process.exit(2);
}

// EDGE_AUTH_PERSIST_TO: a local state directory other than wrangler's default (npm run docs:check).
const where = remote ? ["--remote"] : ["--local", ...(process.env.EDGE_AUTH_PERSIST_TO ? ["--persist-to", process.env.EDGE_AUTH_PERSIST_TO] : [])];

function d1(sql) {
  const out = execFileSync("wrangler", ["d1", "execute", "DB", ...where, "--json", "--command", sql], {
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    stdio: ["ignore", "pipe", "inherit"],
    shell: process.platform === "win32",
  });
  return JSON.parse(out)[0].results;
}

// The username matched the strict pattern above, so it is safe inside the SQL literal.
const name = username.toLowerCase();
d1(
  `UPDATE users SET roles = json_insert(roles, '$[#]', 'admin'), updated_at = ${Date.now()} ` +
    `WHERE lower(username) = '${name}' AND NOT EXISTS (SELECT 1 FROM json_each(users.roles) WHERE value = 'admin')`,
);
if (enable) d1(`UPDATE users SET disabled_at = NULL, updated_at = ${Date.now()} WHERE lower(username) = '${name}' AND disabled_at IS NOT NULL`);
const [user] = d1(`SELECT username, roles, disabled_at FROM users WHERE lower(username) = '${name}'`);
if (!user) {
  console.error(`No user named ${username}${remote ? " in the remote database" : " in the local database"}.`);
  process.exit(1);
}
console.log(`${user.username} now has roles ${user.roles}. New tokens (next login or refresh) carry the role.`);
if (user.disabled_at !== null) {
  console.log(
    `Note: ${user.username} is disabled, and stays disabled: it cannot sign in, and does not count as an active admin. Run again with --enable to enable it.`,
  );
} else if (enable) {
  console.log(`${user.username} is enabled.`);
}
