import { createRoute } from "@hono/zod-openapi";
import { getConfig } from "../config";
import { turnstileSchema } from "../response-schemas-passwords";
import { json, openApiApp } from "./openapi";

/**
 * What an app needs to render Cloudflare Turnstile's widget: the site key, published only while the
 * API checks tokens (TURNSTILE_SECRET set). docs/security.md.
 */

const turnstileRoute = createRoute({
  method: "get",
  path: "/turnstile",
  tags: ["Service"],
  summary: "The Turnstile site key for the app's widget, or null while Turnstile is off",
  description:
    "While it is on, POST /register and POST /password/forgot (and the mail sign-in start and guest creation) need the widget's token in the `cf-turnstile-response` header, rendered with the action sign_up, forgot_password, mail_sign_in or guest.",
  responses: { 200: json(turnstileSchema, "The site key, or null") },
});

export const turnstileConfig = openApiApp().openapi(turnstileRoute, (c) => {
  const { TURNSTILE_SECRET, TURNSTILE_SITE_KEY } = getConfig(c.env);
  return c.json({ site_key: TURNSTILE_SECRET && TURNSTILE_SITE_KEY ? TURNSTILE_SITE_KEY : null }, 200);
});
