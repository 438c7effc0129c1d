import { createRoute } from "@hono/zod-openapi";
import { authorize } from "../auth/oauth-server/authorize";
import { limitByIp } from "../middleware/rate-limit";
import { authorizeQuerySchema } from "../schemas-authorize";
import { deps } from "./deps";
import { protocolErrors, protocolHook } from "./oauth-openapi";
import { openApiApp } from "./openapi";

/** The authorization endpoint (docs/oauth-server.md): an app sends the browser here; it goes on to the app's consent page. */

const authorizeRoute = createRoute({
  method: "get",
  path: "/oauth2/authorize",
  tags: ["Authorization server"],
  summary: "Start an app's authorization (a browser navigation)",
  description:
    "The authorization code flow with PKCE (S256, required for every client). Unknown or disabled client, or a redirect_uri that is not the client's: 400 here, never redirected. Any other refusal: a 302 to the redirect_uri with error, error_description, state and iss (RFC 9207). Accepted: the request is kept for OAUTH_REQUEST_TTL and the browser goes to APP_URL#authorize=<request id>, where the app asks the user (GET /oauth2/requests/{id}).",
  middleware: [limitByIp("OAUTH_SERVER_IP_LIMITER")] as const,
  request: { query: authorizeQuerySchema },
  responses: {
    302: {
      description: "to the app's consent page, or back to the client's redirect_uri with an error",
      headers: { Location: { schema: { type: "string" as const }, description: "where the browser goes next" } },
    },
    ...protocolErrors(["rate_limited"], [400]),
  },
});

export const oauthAuthorize = openApiApp().openapi(
  authorizeRoute,
  async (c) => {
    const { location } = await authorize(deps(c), c.req.valid("query"));
    // The request id travels in the fragment; nothing of this URL need follow in a Referer.
    c.header("Referrer-Policy", "no-referrer");
    return c.redirect(location, 302);
  },
  protocolHook,
);
