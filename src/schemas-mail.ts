import { z } from "@hono/zod-openapi";
import { emailSchema, useCookie } from "./schemas";

/** Request schemas of sign-in by mail (routes/mail-sign-in.ts, docs/mail-sign-in.md). */

export const mailSignInStartSchema = z.object({ email: emailSchema }).openapi("MailSignInStart", { example: { email: "alice@example.com" } });

export const mailSignInLinkSchema = z
  .object({
    token: z
      .string({ error: "is required" })
      .min(1, "is required")
      .max(100, "is not a valid link token")
      .openapi({ description: "the token from the mailed link's fragment (#mail-sign-in=<token>)" }),
    use_cookie: useCookie,
  })
  .openapi("MailSignInLink", { example: { token: "<the token from the link>", use_cookie: true } });

export const mailSignInCodeSchema = z
  .object({
    email: emailSchema,
    code: z
      .string({ error: "is required" })
      .regex(/^\s*[0-9]{4}[\s-]?[0-9]{4}\s*$/, "8 digits")
      .openapi({ description: "the 8-digit code from the newest sign-in mail (spaces and a dash are ignored)" }),
    use_cookie: useCookie,
  })
  .openapi("MailSignInCode", { example: { email: "alice@example.com", code: "12345678" } });
