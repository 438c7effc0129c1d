import { z } from "zod";

/**
 * Clients declared in configuration (OAUTH_CLIENTS, a var; docs/oauth-server.md): a deployment's own
 * apps, registered with the code instead of through the admin API. Read apart from the rest of the
 * config, like social sign-in's providers: a fault turns off the client it concerns, never the API.
 * Here only the shape; the rules a client must meet whoever registers it (redirect URIs, known scopes,
 * resources) are the domain's (auth/oauth-server/configured-clients.ts applies them). A confidential
 * client carries the SHA-256 of its secret, never the secret (`npm run -s keygen client-secret`).
 * A problem names the var, the entry and the field, never a value.
 */

const GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"] as const;

// The admin API's bounds (schemas-clients.ts); redirect_uris may be empty for a client_credentials-only client.
const plain = (s: string) => !/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(s);
const uriList = (max: number) =>
  z.array(z.string("must be a string").max(2000, "at most 2000 characters"), "must be a list of URIs").max(max, `at most ${max}`);

const ConfiguredClientSchema = z
  .object({
    // Printable ASCII without spaces (a client_id travels in URLs and Basic auth).
    client_id: z.string("must be a string").regex(/^[\x21-\x7e]{1,255}$/, "must be 1-255 printable ASCII characters, no spaces"),
    name: z
      .string("must be a string")
      .trim()
      .min(1, "must not be empty")
      .max(100, "at most 100 characters")
      .refine(plain, "no control or invisible characters"),
    uri: z.string("must be a string").max(2000, "at most 2000 characters").optional(),
    redirect_uris: uriList(10),
    type: z.enum(["public", "confidential"], 'must be "public" or "confidential"'),
    secret_sha256: z
      .string("must be a string")
      .regex(/^[A-Za-z0-9_-]{43}$/, "must be a SHA-256 in base64url (npm run -s keygen client-secret)")
      .optional(),
    grant_types: z
      .array(z.enum(GRANT_TYPES, `each must be one of ${GRANT_TYPES.join(", ")}`))
      .min(1, "at least one")
      .max(3, "at most 3")
      .optional(),
    scope: z.string("must be a string").max(1000, "at most 1000 characters").optional(),
    resources: uriList(10).optional(),
  })
  // Unknown keys are refused: a misspelt field, or a `secret` put where only its hash belongs.
  .strict()
  .superRefine((c, ctx) => {
    if (c.type === "confidential" && !c.secret_sha256)
      ctx.addIssue({ code: "custom", path: ["secret_sha256"], message: "is required for a confidential client" });
    if (c.type === "public" && c.secret_sha256) ctx.addIssue({ code: "custom", path: ["secret_sha256"], message: "a public client has no secret" });
  });
export type ConfiguredClient = z.infer<typeof ConfiguredClientSchema>;

/** Zod's own messages name types and keys; a value (a hash) never goes in a problem. */
const issuesOf = (error: z.ZodError) => error.issues.map((i) => `${i.path.join(".") || "entry"} ${i.message}`).join("; ");

/** OAUTH_CLIENTS as the deploy check reads it (config.ts checkVars): any bad entry fails it all. */
export const clientListStrict = z
  .string()
  .default("[]")
  .transform((s, ctx) => {
    try {
      return JSON.parse(s === "" ? "[]" : s) as unknown;
    } catch {
      ctx.addIssue({ code: "custom", message: "is not JSON" });
      return z.NEVER;
    }
  })
  .pipe(
    z
      .array(ConfiguredClientSchema, "must be a JSON list of clients")
      .refine((list) => new Set(list.map((c) => c.client_id)).size === list.length, "two clients share a client_id"),
  );

/** The entries whose shape is right, and the problems that turned the others off (for the log). */
export function clientsConfig(env: { OAUTH_CLIENTS?: unknown }): { OAUTH_CLIENTS: ConfiguredClient[]; problems: string[] } {
  const text = typeof env.OAUTH_CLIENTS === "string" && env.OAUTH_CLIENTS !== "" ? env.OAUTH_CLIENTS : "[]";
  let entries: unknown;
  try {
    entries = JSON.parse(text);
  } catch {
    return { OAUTH_CLIENTS: [], problems: ["OAUTH_CLIENTS: is not JSON (every configured client is off)"] };
  }
  if (!Array.isArray(entries)) return { OAUTH_CLIENTS: [], problems: ["OAUTH_CLIENTS: is not a JSON list (every configured client is off)"] };
  const idOf = (entry: unknown) => {
    const id = entry && typeof entry === "object" ? (entry as { client_id?: unknown }).client_id : undefined;
    return typeof id === "string" ? id.slice(0, 64) : undefined;
  };
  const ids = entries.map(idOf);
  const usable: ConfiguredClient[] = [];
  const problems: string[] = [];
  for (const [index, entry] of entries.entries()) {
    const id = idOf(entry);
    const name = `OAUTH_CLIENTS[${index}]${id ? ` (${id})` : ""}`;
    const parsed = ConfiguredClientSchema.safeParse(entry);
    // Two entries with one id: both off, as neither can be told to be the one meant.
    const problem = !parsed.success ? issuesOf(parsed.error) : ids.filter((other) => other === id).length > 1 ? `another client has the client_id ${id}` : null;
    if (problem === null && parsed.success) usable.push(parsed.data);
    else problems.push(`${name}: ${problem} (${id ? `client ${id} is off` : "this entry is ignored"})`);
  }
  return { OAUTH_CLIENTS: usable, problems };
}
