import type { AccessClaims } from "./auth/core/tokens";

/** Hono's environment for this app: Workers bindings plus per-request variables. */
export type AppEnv = {
  Bindings: Env;
  Variables: { requestId: string; auth: AccessClaims };
};
