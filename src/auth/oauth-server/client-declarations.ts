import type { Config, ConfiguredClient } from "../../config";
import type { ConfiguredClientRow } from "../../db/oauth-clients";
import { Refusal } from "../core/errors";
import { checkedClient } from "./client-metadata";

/**
 * The rules any pre-registered client meets (client-metadata.ts, as for an admin's registration),
 * applied to the entries of OAUTH_CLIENTS whose shape config-clients.ts accepted. Pure: the Worker
 * (configured-clients.ts) and the deploy check (scripts/deploy.mjs, through config.ts checkVars) run
 * the same. A problem names the entry and the field, never a value of it.
 */

export type DeclarationConfig = Pick<Config, "OAUTH_SCOPES" | "AUDIENCE" | "OAUTH_CLIENTS">;

function rowOf(config: DeclarationConfig, c: ConfiguredClient): ConfiguredClientRow {
  return { id: c.client_id, ...checkedClient(config, c), secretHash: c.secret_sha256 ?? null };
}

/** The declared clients that meet the rules, by client_id, and what turned the others off. */
export function declaredClients(config: DeclarationConfig): { clients: Map<string, ConfiguredClientRow>; problems: string[] } {
  const clients = new Map<string, ConfiguredClientRow>();
  const problems: string[] = [];
  for (const entry of config.OAUTH_CLIENTS) {
    try {
      clients.set(entry.client_id, rowOf(config, entry));
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      const [field, problem] = Object.entries(err.fields ?? {})[0] ?? ["entry", err.message];
      const id = entry.client_id.slice(0, 64);
      problems.push(`OAUTH_CLIENTS (${id}).${field}: ${problem} (client ${id} is off)`);
    }
  }
  return { clients, problems };
}

/** For the deploy check: what the Worker would turn off. */
export const declarationProblems = (config: DeclarationConfig) => declaredClients(config).problems;
