// What `from "zod"` means in the Worker (wrangler.toml [alias], and test/vitest.config.ts for the suite):
// zod itself, but a `z` namespace of only the functions this code uses. zod's own `z` holds every export,
// its 64 error-message locales (about 360 KiB), z.compile and z.fromJSONSchema among them, and
// @hono/zod-openapi hands `z` to extendZodWithOpenApi, so the bundler must keep all of it. English
// messages stay: zod's schemas load that locale themselves. A `z.x` missing here is undefined where a
// schema is built: the suite (which aliases the same way) fails; nothing at startup does, since each
// area's schemas are built at its first request (src/app.ts AREAS).
import {
  array,
  boolean,
  coerce,
  discriminatedUnion,
  email,
  iso,
  literal,
  NEVER,
  number,
  object,
  preprocess,
  record,
  string,
  union,
  unknown,
  url,
  ZodError,
  ZodType,
  enum as zodEnum,
  null as zodNull,
} from "zod/v4";

export * from "zod/v4";

export const z = {
  array,
  boolean,
  coerce,
  discriminatedUnion,
  email,
  enum: zodEnum,
  iso,
  literal,
  NEVER,
  null: zodNull,
  number,
  object,
  preprocess,
  record,
  string,
  union,
  unknown,
  url,
  ZodError,
  ZodType,
};
