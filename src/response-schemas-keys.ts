import { z } from "@hono/zod-openapi";

/** API keys' answers (routes/api-keys.ts, docs/api-keys.md): never a key's hash; the key itself only in the creation's answer. */

const time = z.iso.datetime();

export const apiKeySchema = z
  .object({
    id: z.string().openapi({ description: "public: the `key_id` and `client_id` of the tokens the key is exchanged for" }),
    name: z.string(),
    start: z.string().openapi({ description: "the key's first 12 characters, to recognise it" }),
    scopes: z.array(z.string()),
    owner: z.object({ type: z.enum(["user", "organization"]), id: z.string() }),
    created_by: z.string().openapi({ description: "the user who created it" }),
    created_at: time,
    expires_at: time.nullable(),
    last_used_at: time.nullable().openapi({ description: "the last exchange, to the minute (written at most once a minute)" }),
    revoked_at: time.nullable(),
  })
  .openapi("ApiKey");

export const createdKeySchema = z
  .object({
    key: apiKeySchema,
    secret: z.string().openapi({ description: "the key: `eak_` + 46 base62 characters. In this answer only: it is stored as its SHA-256, never shown again" }),
  })
  .openapi("CreatedApiKey");

export const keysSchema = z.object({ keys: z.array(apiKeySchema) }).openapi("ApiKeys");
