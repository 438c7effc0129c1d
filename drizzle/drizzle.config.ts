import { defineConfig } from "drizzle-kit";

// Generates SQL migrations for D1 into drizzle/; wrangler applies them (migrations_dir = "drizzle").
// DRIZZLE_OUT lets scripts/check-migrations.mjs generate into a scratch copy.
export default defineConfig({
  dialect: "sqlite",
  schema: ["./src/db/schema.ts", "./src/db/oauth-server-tables.ts", "./src/db/organization-tables.ts", "./src/db/access-tables.ts"],
  out: process.env.DRIZZLE_OUT ?? "./drizzle",
});
