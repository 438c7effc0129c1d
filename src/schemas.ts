import { z } from "zod";

/**
 * Request schemas: the single source of validation. Unknown fields are stripped (z.object's default),
 * so nothing a client adds (roles, id, ...) is ever mass-assigned.
 */

// Control characters (C0, DEL, C1) have no place in any credential or name.
const noControlChars = (s: string) => !/\p{Cc}/u.test(s);

export const usernameSchema = z
  .string({ error: "is required" })
  .regex(/^[A-Za-z0-9_]{3,32}$/, "3-32 characters: letters, digits or underscore");

export const emailSchema = z.email("must be a valid email address").max(254, "at most 254 characters");

export const passwordSchema = z
  .string({ error: "is required" })
  .min(8, "at least 8 characters")
  .max(128, "at most 128 characters")
  .refine(noControlChars, "must not contain control characters")
  .refine((s) => /\p{L}/u.test(s), "must contain a letter")
  .refine((s) => /\p{Nd}/u.test(s), "must contain a digit");

// Cookie mode (browser SPAs): the refresh token is set as an HttpOnly cookie instead of returned in JSON.
const useCookie = z.boolean({ error: "must be true or false" }).optional();

export const registerSchema = z.object({
  username: usernameSchema,
  email: emailSchema.optional(),
  password: passwordSchema,
  use_cookie: useCookie,
});

// Login bounds lengths but applies no policy: an old password that predates a policy must still work.
export const loginSchema = z.object({
  username: z.string({ error: "is required" }).min(1, "is required").max(254, "at most 254 characters").refine(noControlChars, "must not contain control characters"),
  password: z.string({ error: "is required" }).min(1, "is required").max(128, "at most 128 characters"),
  use_cookie: useCookie,
});

// Absent (or an empty body) means: use the refresh cookie. Any string goes through to a 401
// invalid_token (an access token sent here is a wrong token, not a malformed request).
export const refreshSchema = z.object({
  refresh_token: z.string({ error: "must be a string" }).min(1, "is required").max(4096, "at most 4096 characters").optional(),
});

export const passwordChangeSchema = z.object({
  current_password: z.string({ error: "is required" }).min(1, "is required").max(128, "at most 128 characters"),
  new_password: passwordSchema,
});

export const sessionIdSchema = z.object({
  id: z.string().max(64, "is not a session id"),
});

const cursor = z.string().max(200, "is not a valid cursor").optional();
const limit = (fallback: number) =>
  z.coerce.number({ error: "must be a number" }).int("must be a whole number").min(1, "at least 1").max(100, "at most 100").default(fallback);

export const listUsersQuerySchema = z.object({ cursor, limit: limit(20) });

export const listSessionsQuerySchema = z.object({ cursor, limit: limit(20) });

export const listAuditQuerySchema = z.object({
  user_id: z.string().max(64, "is not a user id").optional(),
  cursor,
  limit: limit(50),
});
