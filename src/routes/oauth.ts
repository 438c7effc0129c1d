import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { getCookie, setCookie as setCookieHeader } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import { Refusal } from "../auth/core/errors";
import { beginLink, claimLink, completeCallback, exchange, GRANT_TTL_MS, type Landing, type Started, startSignIn, unlinkIdentity } from "../auth/social/flow";
import { ProviderFailure, providerList } from "../auth/social/providers";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { log } from "../log";
import { jsonOnly } from "../middleware/json-only";
import { limitByIp } from "../middleware/rate-limit";
import { assertAllowedOrigin, setRefreshCookie } from "../middleware/refresh-cookie";
import { requireAuth } from "../middleware/require-auth";
import { startedByApp } from "../middleware/started-by-app";
import { linkedSchema, linkStartSchema, messageSchema, mfaChallengeSchema, providersSchema, signedInSchema } from "../response-schemas";
import { freshCheckSchema } from "../schemas";
import { identityIdSchema, identityLinkSchema, oauthExchangeSchema, oauthStartQuerySchema, providerParamSchema } from "../schemas-social";
import { deps, signInDeps } from "./deps";
import { BEARER, BODY_ERRORS, body, errors, json, openApiApp, setCookie } from "./openapi";
import { mfaChallengeBody, publicUser, tokenBody } from "./shapes";
import { asked, sensitive } from "./step-up";

/**
 * Social sign-in (docs/social-sign-in.md): the browser's trip to a provider and back, the app's code
 * exchange, and linking identities to a signed-in account. The flow's rules live in auth/social/flow.ts.
 */

const tags = ["Social sign-in"];
const authed = requireAuth();

/** Binds a flow to the browser that started it: HttpOnly, only for /oauth, ten minutes. */
const FLOW_COOKIE = "oauth_flow";
/**
 * After a callback that leaves a sign-in code for a flow started without a code_challenge: the same
 * value, only for the exchange, for as long as the code lives. The exchange takes the code only
 * with it, so a code carried into another browser (a link with an attacker's code) is refused.
 */
const GRANT_COOKIE = "oauth_grant";
const local = (c: Context) => ["localhost", "127.0.0.1", "[::1]"].includes(new URL(c.req.url).hostname);

// Lax comes along on the provider's redirect back (a top-level GET) and on the app's same-site
// exchange; a provider that posts back (Apple's form_post, a cross-site POST) needs None, which
// browsers accept only with Secure.
const bindingCookie = (c: Context<AppEnv>, sameSite: "Lax" | "None", path: string, maxAge: number) =>
  ({ path, httpOnly: true, secure: sameSite === "None" || !local(c), sameSite, maxAge }) as const;

function setFlowCookie(c: Context<AppEnv>, started: Started) {
  setCookieHeader(c, FLOW_COOKIE, started.browser, bindingCookie(c, started.postsBack ? "None" : "Lax", "/oauth", 600));
}

const redirectTo = (c: Context<AppEnv>, url: string) => {
  c.header("Referrer-Policy", "no-referrer"); // the fragment never leaves the browser; the rest of the URL need not either
  return c.redirect(url, 303);
};

/** Back to the app, with what happened in the URL's fragment (never sent to a server, nor in a Referer). */
function land(c: Context<AppEnv>, landing: Landing) {
  const fragment = new URLSearchParams();
  if (landing.error) fragment.set("oauth_error", landing.error);
  else if (landing.code) {
    fragment.set("oauth", landing.code.purpose === "link" ? "link" : "sign_in");
    fragment.set("oauth_code", landing.code.value);
  } else fragment.set("oauth", "signed_in");
  if (landing.signedIn) setRefreshCookie(c, landing.signedIn.issued.refreshToken, landing.signedIn.issued.sessionExpiresAt);
  return redirectTo(c, `${landing.returnTo}#${fragment}`);
}

const redirect = {
  description: "to the provider, or back to the app",
  headers: { Location: { schema: { type: "string" as const }, description: "where the browser goes next" } },
};

const providersRoute = createRoute({
  method: "get",
  path: "/oauth/providers",
  tags,
  summary: "The configured sign-in providers, for the app's buttons",
  description: "Only providers that work: one turned off by a fault in its configuration (logged as config_invalid) is left out.",
  responses: { 200: json(providersSchema, "Possibly empty") },
});

const startRoute = createRoute({
  method: "get",
  path: "/oauth/{provider}/start",
  tags,
  summary: "Open in the browser: goes on to the provider",
  description:
    "A top-level navigation, never fetch. Sets a short HttpOnly cookie binding the flow to this browser, then 302s to the provider with PKCE, state and (OpenID) nonce. With code_challenge, the sign-in's exchange needs its code_verifier (the app's own PKCE with this API); without, the exchange needs the cookie the callback leaves (oauth_grant, Path=/oauth/exchange, a minute). When the provider cannot be reached, back to the app with oauth_error=provider_unreachable in the fragment (or another code: invalid_response when its discovery document names another issuer). A start another site sends the browser to (Sec-Fetch-Site: cross-site, without a Referer on an app origin) is refused with 403 forbidden: a session is never opened silently.",
  middleware: [limitByIp("OAUTH_IP_LIMITER"), startedByApp] as const,
  request: { params: providerParamSchema, query: oauthStartQuerySchema },
  responses: {
    302: redirect,
    303: { ...redirect, description: "back to the app: the provider cannot be reached, or a link URL was used" },
    ...errors("validation_failed", "forbidden", "unknown_provider", "provider_unavailable", "rate_limited"),
  },
});

const callbackDescription =
  "Where the provider sends the browser back (register <ISSUER>/oauth/<id>/callback at the provider). Answers a 303 to the app page the flow started for, with, in the URL's fragment: `oauth=signed_in` (cookie mode: the refresh cookie is set; call POST /refresh), `oauth=sign_in&oauth_code=...` or `oauth=link&oauth_code=...` (send the code to POST /oauth/exchange within a minute), or `oauth_error=<code>` (invalid_state, access_denied, provider_error, invalid_response, provider_unreachable, provider_unavailable, temporarily_unavailable, account_exists, registration_closed, email_unverified, account_disabled).";

const callbackGetRoute = createRoute({
  method: "get",
  path: "/oauth/{provider}/callback",
  tags,
  summary: "The provider's redirect back",
  description: callbackDescription,
  request: { params: providerParamSchema },
  // A provider id that cannot be one (over 32 characters): refused before any flow is looked up.
  responses: { 303: { ...redirect, headers: { ...redirect.headers, ...setCookie } }, ...errors("validation_failed") },
});

const callbackPostRoute = createRoute({
  method: "post",
  path: "/oauth/{provider}/callback",
  tags,
  summary: "The provider's answer posted back (response_mode=form_post: Apple)",
  description: callbackDescription,
  request: { params: providerParamSchema },
  // A provider id that cannot be one (over 32 characters): refused before any flow is looked up.
  responses: { 303: { ...redirect, headers: { ...redirect.headers, ...setCookie } }, ...errors("validation_failed") },
});

/** A link's exchange carries the access token of the session that asked; a sign-in's carries none. */
const authIfBearer = createMiddleware<AppEnv>(async function authIfBearer(c, next) {
  if (c.req.header("authorization") === undefined) return next();
  return authed(c, next);
});

// A link's second half (add_identity): the session that began it finishes it here.
const exchangeRoute = sensitive(
  "add_identity",
  createRoute({
    method: "post",
    path: "/oauth/exchange",
    tags,
    summary: "Swap the callback's one-time code for a sign-in (or a finished link)",
    description:
      "Single use, within a minute. A sign-in must come from the browser that started it: with the code_verifier whose S256 the start was given, or (a start without code_challenge) with the oauth_grant cookie the callback set; else 400 invalid_grant, and the code stays unspent for its own browser. It answers as POST /login does: tokens (with use_cookie, the refresh token in the cookie), or while TOTP is on the challenge for POST /login/mfa (a social sign-in is one factor). A link (oauth=link) needs the Bearer token of the session that asked for it, and answers the identity.",
    security: [...BEARER, {}],
    middleware: [limitByIp("OAUTH_IP_LIMITER"), authIfBearer, jsonOnly] as const,
    request: body(oauthExchangeSchema),
    responses: {
      200: json(signedInSchema.or(mfaChallengeSchema).or(linkedSchema), "Signed in, the second step's challenge, or the linked identity", setCookie),
      ...errors(...BODY_ERRORS, "invalid_grant", "invalid_token", "identity_in_use", "account_disabled", "email_unverified", "forbidden", "rate_limited"),
    },
  }),
);

const linkRoute = sensitive(
  "add_identity",
  createRoute({
    method: "post",
    path: "/me/identities/{provider}/link",
    tags,
    security: BEARER,
    summary: "Start linking a provider to this account, after a step-up",
    description:
      "The step-up add_identity (the password, and a code while TOTP is on; an account without a password: a sign-in within STEP_UP_MAX_AGE). Answers a URL to open in the browser; the callback comes back with oauth=link and a code this session exchanges at POST /oauth/exchange. An identity linked to another account: 409 identity_in_use there.",
    middleware: [authed, jsonOnly] as const,
    request: { params: providerParamSchema, ...body(identityLinkSchema) },
    responses: {
      200: json(linkStartSchema, "Open url in the browser"),
      ...errors(
        ...BODY_ERRORS,
        "unknown_provider",
        "provider_unavailable",
        "invalid_token",
        "invalid_credentials",
        "invalid_mfa_code",
        "reauthentication_required",
        "rate_limited",
      ),
    },
  }),
);

const unlinkRoute = sensitive(
  "remove_identity",
  createRoute({
    method: "delete",
    path: "/me/identities/{id}",
    tags,
    security: BEARER,
    summary: "Unlink a provider from this account, after a step-up",
    description: "The step-up remove_identity. Refused with 409 last_way_in when nothing else would sign in (no password, passkey or other identity).",
    middleware: [authed, jsonOnly] as const,
    request: { params: identityIdSchema, ...body(freshCheckSchema) },
    responses: {
      200: json(messageSchema, "Unlinked"),
      ...errors(
        ...BODY_ERRORS,
        "not_found",
        "last_way_in",
        "invalid_token",
        "invalid_credentials",
        "invalid_mfa_code",
        "reauthentication_required",
        "rate_limited",
      ),
    },
  }),
);

export const oauth = openApiApp()
  .openapi(providersRoute, (c) => c.json({ providers: providerList(getConfig(c.env)) }, 200))
  .openapi(startRoute, async (c) => {
    const { provider } = c.req.valid("param");
    const { use_cookie, return_to, link, code_challenge } = c.req.valid("query");
    try {
      const started = link
        ? await claimLink(deps(c), provider, link)
        : await startSignIn(deps(c), provider, { useCookie: use_cookie === "true", returnTo: return_to, codeChallenge: code_challenge });
      setFlowCookie(c, started);
      return c.redirect(started.url.href, 302);
    } catch (err) {
      // The browser is on its way: where it can be sent back, a code the app can show beats a JSON page.
      const app = getConfig(c.env).APP_URL;
      const code = err instanceof ProviderFailure ? err.code : err instanceof Refusal && err.code === "invalid_grant" ? err.code : undefined;
      if (code && app) return redirectTo(c, `${app}#oauth_error=${code}`);
      throw err;
    }
  })
  .openapi(callbackGetRoute, async (c) => {
    const params = new URL(c.req.url).searchParams;
    return land(c, await callback(c, c.req.valid("param").provider, params));
  })
  .openapi(callbackPostRoute, async (c) => {
    let params = new URLSearchParams();
    if (c.req.header("content-type")?.startsWith("application/x-www-form-urlencoded")) params = new URLSearchParams(await c.req.text());
    return land(c, await callback(c, c.req.valid("param").provider, params, true));
  })
  .openapi(exchangeRoute, async (c) => {
    const { code, code_verifier, use_cookie = false } = c.req.valid("json");
    if (use_cookie) assertAllowedOrigin(c);
    const browser = getCookie(c, GRANT_COOKIE);
    const result = await exchange(signInDeps(c, use_cookie), { code, codeVerifier: code_verifier, browser }, c.get("auth") && asked(c, exchangeRoute));
    if (browser) setCookieHeader(c, GRANT_COOKIE, "", bindingCookie(c, "Lax", "/oauth/exchange", 0)); // spent
    if ("linked" in result) return c.json({ linked: result.linked }, 200);
    if ("challenge" in result) return c.json(mfaChallengeBody(result.challenge), 200);
    return c.json({ user: publicUser(result.user), ...tokenBody(c, result.issued, use_cookie) }, 200);
  })
  .openapi(linkRoute, async (c) => {
    const { return_to, ...check } = c.req.valid("json");
    const url = await beginLink(deps(c), asked(c, linkRoute), c.req.valid("param").provider, { ...check, returnTo: return_to });
    return c.json({ url }, 200);
  })
  .openapi(unlinkRoute, async (c) => {
    await unlinkIdentity(deps(c), asked(c, unlinkRoute), c.req.valid("param").id, c.req.valid("json"));
    return c.json({ message: "Unlinked" }, 200);
  });

/**
 * The callback proper: the flow cookie is cleared whatever happens (single use). A sign-in code
 * for a flow without a code_challenge leaves its value behind as the exchange's cookie.
 */
async function callback(c: Context<AppEnv>, provider: string, params: URLSearchParams, posted = false) {
  const browser = getCookie(c, FLOW_COOKIE);
  setCookieHeader(c, FLOW_COOKIE, "", bindingCookie(c, "Lax", "/oauth", 0));
  const landing = await completeCallback(deps(c), provider, params, browser, posted);
  // D1 refused a query after the state was spent: the answer is a landing, not onError's 503, so log it here.
  if (landing.error === "temporarily_unavailable") log("d1_overloaded", { request_id: c.get("requestId"), during: "social_callback" }, "error");
  if (landing.code?.byCookie && browser)
    setCookieHeader(c, GRANT_COOKIE, browser, bindingCookie(c, posted ? "None" : "Lax", "/oauth/exchange", GRANT_TTL_MS / 1000));
  return landing;
}
