/**
 * Cloudflare Turnstile (docs/security.md): where the API runs with TURNSTILE_SECRET, the requests an
 * anonymous caller can spend resources with carry the widget's token in the `cf-turnstile-response`
 * header. The client asks `turnstileToken(action)` (ClientOptions) before each of them.
 */

export type TurnstileAction = "sign_up" | "mail_sign_in" | "forgot_password" | "guest";
export const TURNSTILE_HEADER = "cf-turnstile-response";

/** The POST routes behind Turnstile, and the action the widget must be rendered with for each. */
const ROUTES: Record<string, TurnstileAction> = {
  "/register": "sign_up",
  "/password/forgot": "forgot_password",
  "/login/email": "mail_sign_in",
  "/guests": "guest",
};

export const turnstileAction = (method: string, path: string): TurnstileAction | undefined => (method === "POST" ? ROUTES[path] : undefined);

/** Gives the token for an action: the widget's current one; null or undefined sends none (the API then answers turnstile_required). */
export type TurnstileTokens = (action: TurnstileAction) => string | null | undefined | Promise<string | null | undefined>;
