import type { Deps } from "./auth/sessions";
import { getConfig } from "./config";
import { getDb } from "./db/client";

/** What the auth flows need from a request's bindings: the db client and the parsed config. */
export const deps = (env: Env): Deps => ({ db: getDb(env.DB), config: getConfig(env) });
