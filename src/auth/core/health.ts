import { type Db, pingDb } from "../../db/client";
import { pingKv } from "./revocations";

/** GET /health: D1 and KV both answer (a failure is thrown as it came). */
export async function checkStores(stores: { db: Db; kv: KVNamespace }): Promise<void> {
  await Promise.all([pingDb(stores.db), pingKv(stores.kv)]);
}
