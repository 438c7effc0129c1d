// Fails when src/db/schema.ts and the committed migrations in drizzle/ disagree:
// runs drizzle-kit generate against a scratch copy and requires "nothing to migrate".
// (drizzle-kit can exit 0 after an error, so its output is checked, not only its exit code.)

import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, rmSync } from "node:fs";

// drizzle-kit wants a path relative to the project.
const scratch = "node_modules/.cache/drizzle-check";
rmSync(scratch, { recursive: true, force: true });
mkdirSync(scratch, { recursive: true });
try {
  cpSync("drizzle", scratch, { recursive: true });
  const run = spawnSync("drizzle-kit", ["generate", "--config", "drizzle/drizzle.config.ts"], {
    env: { ...process.env, DRIZZLE_OUT: `./${scratch}` },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (run.status !== 0 || !/nothing to migrate/i.test(run.stdout)) {
    process.stderr.write(run.stdout + run.stderr);
    console.error("\nsrc/db/schema.ts and drizzle/ disagree. Run `npm run db:generate` and commit drizzle/.");
    process.exit(1);
  }
  console.log("migrations: drizzle/ matches src/db/schema.ts");
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
