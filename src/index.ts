import { app } from "./app";
import { housekeeping } from "./cron";

/** The Worker: the Hono app (src/app.ts) for requests, housekeeping for the daily cron. */
export default {
  fetch: app.fetch,
  scheduled(_controller, env, ctx) {
    ctx.waitUntil(housekeeping(env));
  },
} satisfies ExportedHandler<Env>;
