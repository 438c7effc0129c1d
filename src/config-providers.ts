import { z } from "zod";

/**
 * Social sign-in's configuration (docs/social-sign-in.md): the providers (OAUTH_PROVIDERS, a var)
 * and their client secrets (OAUTH_CLIENT_SECRETS, a secret). Read apart from the rest of the
 * config: a fault here turns off the providers it concerns (or social sign-in, when a whole var
 * cannot be read), never the API; each fault is one problem naming the var, the provider and
 * what is wrong, never a secret's value. The deploy check stays strict (providerListStrict).
 */

/** http is for a local identity provider only (the test IdP); production cannot reach private addresses anyway. */
const providerUrl = z.url().refine((u) => {
  const url = new URL(u);
  return url.protocol === "https:" || (url.protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname));
}, "must be https (http only for localhost)");

// One social sign-in provider (auth/social/providers.ts; its kind's quirks in auth/social/kinds/). `id` names it in the routes (/oauth/<id>/...) and
// in OAUTH_CLIENT_SECRETS; `name` is the button label.
const providerCommon = {
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, "lower-case letters, digits, - and _ (at most 32)"),
  name: z.string().min(1).max(64).optional(),
  client_id: z.string().min(1),
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/)).optional(),
};
export const ProviderSchema = z.discriminatedUnion("kind", [
  z.object({ ...providerCommon, kind: z.literal("oidc"), issuer: providerUrl }).strict(),
  z.object({ ...providerCommon, kind: z.literal("google") }).strict(),
  // tenant: "common" (work, school and personal accounts), "organizations", "consumers", or a tenant id.
  z
    .object({
      ...providerCommon,
      kind: z.literal("microsoft"),
      tenant: z
        .string()
        .regex(/^[A-Za-z0-9.-]+$/)
        .default("common"),
    })
    .strict(),
  // Apple's client secret is a JWT signed with the team's key: its .p8 (PKCS#8 PEM) is the secret.
  z.object({ ...providerCommon, kind: z.literal("apple"), team_id: z.string().min(1), key_id: z.string().min(1) }).strict(),
  // server/api: GitHub Enterprise Server (https://HOST and https://HOST/api/v3), or a local stand-in.
  z
    .object({
      ...providerCommon,
      kind: z.literal("github"),
      server: providerUrl.default("https://github.com"),
      api: providerUrl.default("https://api.github.com"),
    })
    .strict(),
]);
export type ProviderConfig = z.infer<typeof ProviderSchema>;

/** Every kind, as configured (GET /oauth/providers shows it); each kind's behaviour is its object in auth/social/kinds/. */
export const PROVIDER_KINDS = ProviderSchema.options.map((o) => o.shape.kind.value);

/** A kind whose secret has a form of its own: Apple's is the key that signs its client secret (the .p8 file). */
const SECRET_FORMATS: Partial<Record<ProviderConfig["kind"], { ok: (secret: string) => boolean; problem: string }>> = {
  apple: { ok: (secret) => secret.includes("-----BEGIN PRIVATE KEY-----"), problem: "is not a PKCS#8 PEM key (Apple's .p8 file)" },
};

const jsonOf = <T extends z.ZodType>(schema: T, fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((s, ctx) => {
      try {
        return JSON.parse(s === "" ? fallback : s) as unknown;
      } catch {
        ctx.addIssue({ code: "custom", message: "is not JSON" });
        return z.NEVER;
      }
    })
    .pipe(schema);

/** OAUTH_PROVIDERS as the deploy check reads it (config.ts checkVars): one bad entry fails it all. */
export const providerListStrict = jsonOf(
  z.array(ProviderSchema).refine((list) => new Set(list.map((p) => p.id)).size === list.length, "two providers share an id"),
  "[]",
);

/** The providers that work, their secrets, and which ids are configured but off (provider_unavailable). */
export interface SocialConfig {
  OAUTH_PROVIDERS: ProviderConfig[];
  OAUTH_CLIENT_SECRETS: Record<string, string>;
  /** Listed but off; `all`: a var could not be read, so every provider is off. */
  OAUTH_UNAVAILABLE: { all: boolean; ids: string[] };
}

const secretsSchema = z.record(z.string(), z.string());
const OFF = "social sign-in is off";

function readJson(text: unknown, fallback: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(typeof text === "string" && text !== "" ? text : fallback) };
  } catch {
    return { ok: false };
  }
}

/** The usable providers and the problems that turned the others off (for the log). */
export function socialConfig(env: { OAUTH_PROVIDERS?: unknown; OAUTH_CLIENT_SECRETS?: unknown }): SocialConfig & { problems: string[] } {
  const problems: string[] = [];
  const off = (all: boolean, ids: string[] = []) => ({ OAUTH_PROVIDERS: [], OAUTH_CLIENT_SECRETS: {}, OAUTH_UNAVAILABLE: { all, ids }, problems });
  const list = readJson(env.OAUTH_PROVIDERS, "[]");
  if (!list.ok || !Array.isArray(list.value)) {
    problems.push(`OAUTH_PROVIDERS: ${list.ok ? "is not a JSON list" : "is not JSON"} (${OFF})`);
    return off(true);
  }
  const entries = list.value as unknown[];
  const idOf = (entry: unknown) =>
    entry && typeof entry === "object" && typeof (entry as { id?: unknown }).id === "string" ? (entry as { id: string }).id : undefined;
  const listed = entries.map(idOf).filter((id): id is string => id !== undefined);
  const secretsJson = readJson(env.OAUTH_CLIENT_SECRETS, "{}");
  const secrets = secretsJson.ok ? secretsSchema.safeParse(secretsJson.value) : undefined;
  if (!secrets?.success) {
    if (entries.length) problems.push(`OAUTH_CLIENT_SECRETS: ${secrets ? "is not a JSON object from provider id to secret" : "is not JSON"} (${OFF})`);
    return off(entries.length > 0, listed);
  }
  const usable: ProviderConfig[] = [];
  const unavailable = new Set<string>();
  for (const [index, entry] of entries.entries()) {
    const id = idOf(entry);
    const checked = checkEntry(entry, `OAUTH_PROVIDERS[${index}]${id ? ` (${id})` : ""}`, listed, secrets.data);
    if (typeof checked !== "string") usable.push(checked);
    else {
      problems.push(`${checked} (${id ? `provider ${id} is off` : "this entry is ignored"})`);
      if (id) unavailable.add(id);
    }
  }
  const secretsOfUsable = Object.fromEntries(usable.map((p) => [p.id, secrets.data[p.id] as string]));
  return { OAUTH_PROVIDERS: usable, OAUTH_CLIENT_SECRETS: secretsOfUsable, OAUTH_UNAVAILABLE: { all: false, ids: [...unavailable] }, problems };
}

/** One entry: the provider, or what is wrong with it (names the var and field, never a value of a secret). */
function checkEntry(entry: unknown, name: string, listed: string[], secrets: Record<string, string>): ProviderConfig | string {
  const parsed = ProviderSchema.safeParse(entry);
  if (!parsed.success) return `${name}: ${parsed.error.issues.map((i) => `${i.path.join(".") || "entry"} ${i.message}`).join("; ")}`;
  const p = parsed.data;
  if (listed.filter((other) => other === p.id).length > 1) return `${name}: another provider has the id ${p.id}`;
  const secret = secrets[p.id];
  if (!secret) return `OAUTH_CLIENT_SECRETS.${p.id}: is missing`;
  const format = SECRET_FORMATS[p.kind];
  if (format && !format.ok(secret)) return `OAUTH_CLIENT_SECRETS.${p.id}: ${format.problem}`;
  return p;
}
