import { z } from "@hono/zod-openapi";
import { emailSchema, passwordSchema, useCookie, usernameSchema } from "./schemas";

/** Guests (docs/guests.md): the request bodies of POST /guests and POST /guests/upgrade. */

export const guestStartSchema = z.object({ use_cookie: useCookie }).openapi("GuestStartRequest", { example: { use_cookie: true } });

export const guestUpgradeSchema = z
  .object({
    email: emailSchema,
    password: passwordSchema,
    username: usernameSchema.optional(),
  })
  .openapi("GuestUpgradeRequest", {
    description: "The guest's first address (unverified: a link is mailed) and password, and a username if it wants one.",
    example: { email: "alice@example.com", password: "correct horse 42" },
  });
