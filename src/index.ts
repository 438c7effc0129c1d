import { app } from "./app";
import { DAILY, housekeeping, turnSigningKeys } from "./cron";

/** The Worker: the Hono app (src/app.ts) for requests; on each cron, the key ring, and housekeeping once a day. */
export default {
  fetch: app.fetch,
  scheduled(controller, env, ctx) {
    ctx.waitUntil(turnSigningKeys(env, new Date(controller.scheduledTime)));
    // An empty cron is a manual run (wrangler dev --test-scheduled without ?cron=): do everything.
    if (controller.cron === DAILY || !controller.cron) ctx.waitUntil(housekeeping(env));
  },
} satisfies ExportedHandler<Env>;
