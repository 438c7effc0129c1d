import { handle } from "./app";

/**
 * The Worker: the Hono app (src/app.ts) for requests; the mail queue's consumer (src/mail-queue.ts);
 * on each cron, the key ring, held recoveries and (during an MFA key rotation) re-sealing; housekeeping once a day.
 * The consumer and the cron's code are loaded when first run: an isolate that only answers requests never evaluates them.
 */
export default {
  fetch: handle,
  queue: async (batch, env) => (await import("./mail-queue")).consumeMail(batch, env),
  async scheduled(controller, env, ctx) {
    const { applyRecoveries, FREQUENT, housekeeping, resealSecrets, turnSigningKeys } = await import("./cron");
    ctx.waitUntil(turnSigningKeys(env, new Date(controller.scheduledTime)));
    ctx.waitUntil(applyRecoveries(env, new Date(controller.scheduledTime)));
    ctx.waitUntil(resealSecrets(env, new Date(controller.scheduledTime)));
    // Every trigger but the frequent one (the daily one, a manual run) also does housekeeping: a
    // renamed daily trigger still keeps the tables small.
    if (controller.cron !== FREQUENT) ctx.waitUntil(housekeeping(env));
  },
} satisfies ExportedHandler<Env>;
