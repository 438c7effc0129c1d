import { app } from "./app";
import { applyRecoveries, FREQUENT, housekeeping, resealSecrets, turnSigningKeys } from "./cron";
import { consumeMail } from "./mail-queue";

/**
 * The Worker: the Hono app (src/app.ts) for requests; the mail queue's consumer (src/mail-queue.ts);
 * on each cron, the key ring, held recoveries and (during an MFA key rotation) re-sealing; housekeeping once a day.
 */
export default {
  fetch: app.fetch,
  queue: (batch, env) => consumeMail(batch, env),
  scheduled(controller, env, ctx) {
    ctx.waitUntil(turnSigningKeys(env, new Date(controller.scheduledTime)));
    ctx.waitUntil(applyRecoveries(env, new Date(controller.scheduledTime)));
    ctx.waitUntil(resealSecrets(env, new Date(controller.scheduledTime)));
    // Every trigger but the frequent one (the daily one, a manual run) also does housekeeping: a
    // renamed daily trigger still keeps the tables small.
    if (controller.cron !== FREQUENT) ctx.waitUntil(housekeeping(env));
  },
} satisfies ExportedHandler<Env>;
