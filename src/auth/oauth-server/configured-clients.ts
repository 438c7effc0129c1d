import type { Config } from "../../config";
import { type ConfiguredClientRow, findClient, upsertSourcedClient } from "../../db/oauth-clients";
import type { OAuthClient } from "../../db/oauth-server-tables";
import type { Deps } from "../../deps";
import { log } from "../../log";
import { declaredClients } from "./client-declarations";

/**
 * Clients declared in OAUTH_CLIENTS (config-clients.ts reads the shape, client-declarations.ts applies
 * the rules of any pre-registered client, once per isolate). An entry that breaks one is off, logged
 * as config_invalid naming the entry and the field, never its hash.
 * The row in oauth_clients (source "config") exists because requests, consents and grants reference
 * it; it is written on a client's use only when missing or unlike its declaration, so the steady state
 * costs the one read usableClient makes anyway.
 */

const checked = new WeakMap<Config, Map<string, ConfiguredClientRow>>();

/** The declared clients whose entries meet the rules, by client_id (checked, and any fault logged, once per isolate). */
export function configuredClients(config: Config): Map<string, ConfiguredClientRow> {
  let clients = checked.get(config);
  if (clients) return clients;
  const declared = declaredClients(config);
  if (declared.problems.length) log("config_invalid", { problems: declared.problems, effect: "the clients named are off; everything else works" }, "error");
  clients = declared.clients;
  checked.set(config, clients);
  return clients;
}

/** Whether this client_id is declared in OAUTH_CLIENTS (an entry that is off counts: the admin API leaves it alone too). */
export const isDeclared = (config: Config, clientId: string) => config.OAUTH_CLIENTS.some((c) => c.client_id === clientId);

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Whether the stored row says what the configuration says (JSON lists compared in order, as stored). */
function matches(row: OAuthClient, want: ConfiguredClientRow): boolean {
  return (
    row.name === want.name &&
    row.uri === want.uri &&
    row.secretHash === want.secretHash &&
    row.scope === want.scope &&
    same(row.redirectUris, want.redirectUris) &&
    same(row.grantTypes, want.grantTypes) &&
    same(row.resources, want.resources)
  );
}

/**
 * A declared client's row, written first when missing or out of date; null when an admin disabled it
 * (the emergency stop) or the id belongs to a client registered another way (logged: the deployer
 * declared an id that was taken).
 */
export async function configuredClient(deps: Deps, want: ConfiguredClientRow): Promise<OAuthClient | null> {
  const row = await findClient(deps.db, want.id);
  const stale = !row || (row.source === "config" && !matches(row, want));
  // No row back from the write: a registration under this id won the race (the upsert leaves it alone).
  const current = stale ? await upsertSourcedClient(deps.db, { ...want, source: "config", expiresAt: null }, new Date()) : row;
  if (current?.source !== "config") {
    log(
      "config_invalid",
      {
        request_id: deps.requestId,
        problems: [`OAUTH_CLIENTS (${want.id.slice(0, 64)}): the client_id is taken by a client registered another way (client is off)`],
      },
      "error",
    );
    return null;
  }
  return current.disabledAt === null ? current : null;
}
