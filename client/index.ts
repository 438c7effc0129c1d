import { appCalls } from "./apps.js";
import { backendFetch, type FetchInit, type FetchInput, type FetchResponse, originsOf } from "./backends.js";
import type { FreshCheck, SecondFactor } from "./checks.js";
import { AuthError, read, unreachable } from "./errors.js";
import { guestCalls } from "./guests.js";
import { keyCalls } from "./keys.js";
import { mailCalls } from "./mail.js";
import { mfaCalls } from "./mfa.js";
import { orgCalls } from "./orgs.js";
import type { PasswordWarning } from "./passwords.js";
import { TURNSTILE_HEADER, type TurnstileTokens, turnstileAction } from "./turnstile.js";
import type {
  ErrorCode,
  Factors,
  LoginRequest,
  Me,
  Message,
  MfaChallengeBody,
  Passkey,
  Passkeys,
  PasswordChanged,
  PasswordChangeRequest,
  Protected,
  Providers,
  RecoveryCodes,
  Registered,
  RegisterRequest,
  ResetDone,
  Security,
  SessionsPage,
  SessionsRevoked,
  SignedInBody,
  Tokens,
  TotpSetup,
  TurnstileConfig,
  User,
  UserBody,
  WayInRevoked,
} from "./types.js";
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from "./webauthn.js";

/**
 * A small client for this API: browsers (cookie mode), Workers and Node 22; a package of its own
 * with no dependency. Its types (types.ts) are printed from the server's own zod schemas by
 * `npm run client:build`, so they cannot drift from what the API validates and answers.
 *
 * - The access token lives in memory only and goes out as `Authorization: Bearer`.
 * - In a browser the refresh token is the HttpOnly cookie (`cookie: true`, the default there);
 *   elsewhere it is kept in memory.
 * - Refresh is single-flight: any number of calls that meet 401 invalid_token cause one /refresh,
 *   then each retries once. A token about to expire is refreshed before the call.
 * - Tabs of one browser take a Web Lock around /refresh and share the result over a
 *   BroadcastChannel, so they never race one refresh token; a logout in one tab signs out the others.
 * - Every failure is an AuthError: API errors with their code, fields and Retry-After; network
 *   failures, non-JSON and 5xx answers too. Never undefined.
 * - Second factors: login() resolves `{ signedIn: true, ... }`, or `{ signedIn: false, mfaRequired:
 *   true, challenge }` when the account has TOTP on; then loginMfa({ challenge, code }) (or
 *   `recovery_code`) signs in. Passkeys: the client moves WebAuthn JSON only; the app runs the
 *   ceremony (navigator.credentials, or @simplewebauthn/browser's startRegistration and
 *   startAuthentication) between passkey*Options() and passkeyRegister() / passkeyLogin().
 * - Your own backends: fetch(url, init) is the platform's fetch with the access token as a Bearer, for
 *   the origins in `backends` only (and the API's own); a 401 with WWW-Authenticate error="invalid_token"
 *   gets one shared refresh and one retry. accessToken() hands the token over for anything else.
 * - Social sign-in: signInWith(provider) sends the browser to the provider (a top-level navigation);
 *   back on the app page, completeSignIn() reads the result from the URL's fragment, clears it, and
 *   signs in (or answers the second step's challenge, or the linked identity). Errors: AuthError
 *   with the code the API put there (account_exists, access_denied, ...). A sign-in finishes only
 *   in the tab that started it: signInWith() keeps a secret in the tab's sessionStorage and sends
 *   its SHA-256 (PKCE's S256); completeSignIn() sends the secret, and refuses a code it has none for
 *   (a link to the app carrying someone else's code).
 * - Organizations (orgs.ts): switchOrganization() takes the new access token like a refresh does;
 *   activeOrganization() reads the token's org claims, decoded and not verified (display only). API
 *   keys (keys.ts): create, list, revoke; exchangeApiKey() is a plain function for scripts (docs/client.md).
 */

/** What the app can tell the person when a provider's trip ends in an error (the fragment's oauth_error). */
const SOCIAL_ERRORS: Partial<Record<string, string>> = {
  account_exists:
    "An account with this address exists. If it is yours, sign in to it and link this provider from your security settings; if it is not, reset its password by mail",
  access_denied: "Sign-in was cancelled at the provider",
  provider_unreachable: "The provider cannot be reached right now: try again in a moment",
  provider_unavailable: "Sign-in with this provider is unavailable on this service right now",
  temporarily_unavailable: "The service was busy: sign in again",
  invalid_state: "This sign-in expired or was started in another browser: sign in again",
};

export type { AuthorizationRequest, ConnectedApp } from "./apps.js";
export { authorizeRequestId } from "./apps.js";
export type { FetchInit, FetchInput, FetchResponse } from "./backends.js";
export type { FreshCheck, SecondFactor } from "./checks.js";
export { deviceName } from "./device.js";
export { AuthError } from "./errors.js";
export type { GuestUpgrade } from "./guests.js";
export type { ApiKey, ApiKeyCreated, ApiKeyInput, TokenExchanged } from "./keys.js";
export { exchangeApiKey } from "./keys.js";
export { mailSignInToken } from "./mail.js";
export type { ActiveOrganization, Invitation, Member, MembersQuery, Organization } from "./orgs.js";
export { invitationToken } from "./orgs.js";
export type { PasswordWarning } from "./passwords.js";
export { passwordProblem } from "./passwords.js";
export type { TurnstileAction, TurnstileTokens } from "./turnstile.js";
export type { AdminOrganizationsPage } from "./types.js";
export type * from "./webauthn.js";
export type { ErrorCode, Factors, Me, Passkey, Security, TotpSetup, User };
export type Session = SessionsPage["sessions"][number];
export type WayIn = Security["ways_in"][number];
export type RegisterInput = Omit<RegisterRequest, "use_cookie">;
export type LoginInput = Omit<LoginRequest, "use_cookie">;
export type PasswordChange = PasswordChangeRequest;
type Reply = Message;
type MfaChallenge = MfaChallengeBody;
/** A configured social sign-in provider: GET /oauth/providers. */
export type Provider = Providers["providers"][number];
/** What completeSignIn() found in the page's URL after a provider sent the browser back. */
export type SocialLanding = LoginResult | { linked: { id: string; provider: string } } | null;
/** What a reset may need besides the token: a code, where TOTP was turned on after the address was confirmed. */
export type ResetFactor = SecondFactor | { code?: undefined; recovery_code?: undefined };

/** What the client asks of fetch: the platform's fits (browsers, Workers, Node 18+), with no DOM types needed. */
export type FetchLike = (
  input: string,
  init: { method: string; headers: Record<string, string>; body?: string; credentials: "include" | "same-origin" },
) => Promise<{ ok: boolean; status: number; headers: { get(name: string): string | null }; json(): Promise<unknown> }>;

export interface ClientOptions {
  /** The API's origin, e.g. https://auth.example.com */
  baseUrl: string;
  /** The refresh token as an HttpOnly cookie (browsers); default true where `document` exists. */
  cookie?: boolean;
  /** Another fetch (tests, a Worker's service binding, a fetch polyfill). */
  fetch?: FetchLike;
  /** Refresh when the access token has less than this many seconds left; default 30. */
  refreshLeeway?: number;
  /**
   * The origins of your own services that fetch() sends the access token to, e.g.
   * ["https://api.example.com"]; the API's own origin is always one. fetch() to any other origin
   * throws AuthError origin_not_allowed and sends nothing. A page's relative URLs are its own origin:
   * list it (location.origin) to call same-origin routes.
   */
  backends?: string[];
  /**
   * Cloudflare Turnstile (TURNSTILE_SITE_KEY): the widget's token for an action, sent as the
   * cf-turnstile-response header on sign-up, forgot-password (and the other routes behind it).
   */
  turnstileToken?: TurnstileTokens;
  /** A new password was accepted but appears in known breaches (PWNED_PASSWORDS "warn"): tell the person (passwordProblem). */
  onPasswordWarning?: (warning: PasswordWarning) => void;
}

/** `username` is null for an account without one (signed up by mail, a provider, a passkey or as a guest). */
export type AuthState = { signedIn: true; userId: string; username: string | null } | { signedIn: false };
/** Signed in (login, loginMfa, passkeyLogin): the new state, and the user. */
export type SignedIn = Extract<AuthState, { signedIn: true }> & { user: User };
/** login() when the account has TOTP on: nothing signed in yet; send the challenge to loginMfa() with a code. */
export type MfaRequired = { signedIn: false; mfaRequired: true; challenge: string; methods: MfaChallenge["methods"]; expiresIn: number };
export type LoginResult = SignedIn | MfaRequired;

const CHANNEL = "edge-auth-api";

// Browser APIs, looked up at run time: the same code runs in Workers and Node, which lack some.
interface TabMessage {
  token: string | null;
  expiresAt?: number; // ms, by this machine's clock
}
interface Channel {
  postMessage(message: TabMessage): void;
  addEventListener(type: "message", listener: (e: { data: TabMessage }) => void): void;
}
interface Platform {
  atob(data: string): string;
  btoa(data: string): string;
  crypto: { getRandomValues(array: Uint8Array): Uint8Array; subtle: { digest(algorithm: "SHA-256", data: Uint8Array): Promise<ArrayBuffer> } };
  TextEncoder: new () => { encode(input: string): Uint8Array };
  sessionStorage?: { getItem(key: string): string | null; setItem(key: string, value: string): void; removeItem(key: string): void };
  URLSearchParams: new (init?: string | Record<string, string>) => { get(name: string): string | null; toString(): string };
  location?: { href: string; hash: string; assign(url: string): void };
  history?: { replaceState(data: unknown, unused: string, url: string): void };
  console: { error(...data: unknown[]): void };
}
interface Browser {
  document?: unknown;
  BroadcastChannel?: new (name: string) => Channel;
  navigator?: { locks?: { request<T>(name: string, callback: () => Promise<T>): Promise<T> } };
}
const browser = globalThis as Browser;

export function createAuthClient(options: ClientOptions) {
  const base = options.baseUrl.replace(/\/$/, "");
  const cookie = options.cookie ?? browser.document !== undefined;
  // Looked up at call time: a page may swap fetch (a test, a polyfill) after the client is made.
  const doFetch: FetchLike = options.fetch ?? ((input, init) => (globalThis as unknown as { fetch: FetchLike }).fetch(input, init));
  const leeway = options.refreshLeeway ?? 30;
  const listeners = new Set<(state: AuthState) => void>();
  // Only between tabs of a browser (cookie mode): elsewhere one process may hold many users' clients.
  const channel = cookie && browser.BroadcastChannel ? new browser.BroadcastChannel(`${CHANNEL}:${base}`) : undefined;
  // A social sign-in's secret, from signInWith() to completeSignIn(): in the tab's sessionStorage
  // (it survives the trip to the provider; other tabs never see it), else in this client.
  const pendingKey = `${CHANNEL}:sign-in:${base}`;
  let pendingHere: string | undefined;

  // expiresAt is this machine's clock plus the answer's expires_in: a skewed clock cannot make
  // every call refresh (the token's own exp is by the server's clock).
  let access: { token: string; expiresAt: number; sub: string; username: string | null } | undefined;
  let refreshToken: string | undefined; // token mode only
  let refreshing: Promise<void> | undefined;

  const state = (): AuthState => (access ? { signedIn: true, userId: access.sub, username: access.username } : { signedIn: false });
  const emit = () => {
    for (const listener of listeners) {
      try {
        listener(state());
      } catch (err) {
        // A listener's own failure is not the API's: it must not fail the call that signed in or out.
        (globalThis as unknown as Platform).console.error(err);
      }
    }
  };

  /** A token's payload, not verified (the client reads its own token; backends verify). */
  function payload(token: unknown): Record<string, unknown> | undefined {
    try {
      return JSON.parse((globalThis as unknown as Platform).atob(String(token).split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")));
    } catch {
      return undefined;
    }
  }
  function claimsOf(token: unknown): { sub: string; username: string | null } {
    const claims = payload(token);
    const username = claims?.username ?? null;
    if (typeof claims?.sub === "string" && (username === null || typeof username === "string")) return { sub: claims.sub, username };
    throw new AuthError("bad_response", "The API answered without a valid access token", 200);
  }

  /** Takes tokens from an answer (or another tab), or forgets them (null). */
  function adopt(tokens: { access_token: string; expires_in?: number; expiresAt?: number; refresh_token?: string } | null, announce = true) {
    const before = access?.sub;
    if (tokens) {
      const { sub, username } = claimsOf(tokens.access_token);
      const expiresAt = tokens.expiresAt ?? Date.now() + (tokens.expires_in ?? 0) * 1000;
      access = { token: tokens.access_token, expiresAt, sub, username };
      if (tokens.refresh_token) refreshToken = tokens.refresh_token;
    } else {
      access = undefined;
      refreshToken = undefined;
    }
    if (announce) channel?.postMessage({ token: access?.token ?? null, expiresAt: access?.expiresAt });
    if (before !== access?.sub) emit(); // signed in, signed out, or another user
  }

  // Another tab refreshed or signed out: take its word.
  channel?.addEventListener("message", (e) => adopt(e.data.token ? { access_token: e.data.token, expiresAt: e.data.expiresAt } : null, false));

  /** Under a browser-wide Web Lock where there is one: tabs take turns at /refresh and /logout. */
  const locked = <T>(run: () => Promise<T>): Promise<T> => {
    const locks = browser.navigator?.locks;
    return locks ? locks.request(`${CHANNEL}:refresh`, run) : run();
  };

  async function send<T>(method: string, path: string, body?: unknown, auth = false): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (auth && access) headers.authorization = `Bearer ${access.token}`;
    const action = options.turnstileToken && turnstileAction(method, path);
    const bot = action && (await options.turnstileToken?.(action));
    if (bot) headers[TURNSTILE_HEADER] = bot;
    let res: Awaited<ReturnType<FetchLike>>;
    try {
      const credentials = cookie ? ("include" as const) : ("same-origin" as const);
      res = await doFetch(`${base}${path}`, { method, headers, credentials, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (err) {
      throw unreachable(err);
    }
    if (res.status === 204) return undefined as T; // /refresh with if_signed_in, and no cookie: nobody signed in
    return read<T>(res);
  }

  /**
   * One /refresh at a time per page, and per browser under a Web Lock. `probe` (a page load): with no
   * cookie the API answers 204, not a 401 the browser would log as an error.
   */
  function refresh(probe = false): Promise<void> {
    refreshing ??= (async () => {
      const seen = access?.token;
      const run = async () => {
        // Another tab may have refreshed while this one waited for the lock: use its token.
        if (access && access.token !== seen) return;
        // Token mode without a refresh token (never signed in, or signed out): nothing to send.
        if (!cookie && !refreshToken) {
          adopt(null);
          throw new AuthError("invalid_token", "Signed out: sign in again", 401);
        }
        try {
          adopt((await send<Tokens | undefined>("POST", "/refresh", cookie ? (probe ? { if_signed_in: true } : {}) : { refresh_token: refreshToken })) ?? null);
        } catch (err) {
          if (err instanceof AuthError && err.code === "invalid_token") adopt(null);
          throw err;
        }
      };
      await locked(run);
    })().finally(() => (refreshing = undefined));
    return refreshing;
  }

  /** A Bearer call: refreshed first when the token is about to expire, and retried once after a 401. */
  async function authed<T>(method: string, path: string, body?: unknown): Promise<T> {
    if (!access || access.expiresAt - Date.now() < leeway * 1000) await refresh();
    const token = access?.token;
    try {
      return await send<T>(method, path, body, true);
    } catch (err) {
      if (!(err instanceof AuthError) || err.code !== "invalid_token") throw err;
      // Refresh once for every call that met the same expired token, then retry.
      if (access?.token === token) await refresh();
      return send<T>(method, path, body, true);
    }
  }

  const signedOut = () => new AuthError("invalid_token", "Signed out: sign in again", 401);
  /** The access token, refreshed first when missing or about to expire (`probe`: a 204, not a 401, when no cookie). */
  async function fresh(probe = false): Promise<string> {
    if (!access || access.expiresAt - Date.now() < leeway * 1000) await refresh(probe && !access);
    if (!access) throw signedOut();
    return access.token;
  }
  /** After a backend refused `stale`: one refresh for every call that met it, then the new token. */
  async function renew(stale: string): Promise<string> {
    if (access?.token === stale) await refresh();
    if (!access) throw signedOut();
    return access.token;
  }
  const toBackend = backendFetch(
    originsOf([base, ...(options.backends ?? [])]),
    { fresh, renew },
    (input, init) => (options.fetch ?? (globalThis as unknown as { fetch: (i: unknown, o?: unknown) => Promise<never> }).fetch)(input as string, init as never),
    (origin) =>
      new AuthError(
        "origin_not_allowed",
        `fetch(): ${origin} is not one of this client's backends: add it to createAuthClient's backends to send it the access token`,
        0,
      ),
  );

  /** Posts with use_cookie, and takes the tokens when the answer has them. */
  async function signIn<T extends object>(path: string, input: object): Promise<T> {
    const res = await send<T>("POST", path, { ...input, use_cookie: cookie });
    // No tokens after registering while the service requires a verified address first, nor with
    // a login's second step to come.
    if ((res as Partial<Tokens>).access_token) adopt(res as Tokens);
    return res;
  }
  /** A link that proves an address: with the password when given, else as the signed-in account when there is one. */
  const holder = <T>(path: string, token: string, password?: string) =>
    password === undefined && access ? authed<T>("POST", path, { token }) : send<T>("POST", path, password === undefined ? { token } : { token, password });
  /** An answer to a new password: passes its warning, if any, to onPasswordWarning. */
  const warned = <T extends { password_warning?: PasswordWarning }>(res: T): T => {
    if (res.password_warning) options.onPasswordWarning?.(res.password_warning);
    return res;
  };
  const signedIn = (res: SignedInBody) => ({ ...state(), user: res.user }) as SignedIn;
  const platform = () => globalThis as unknown as Platform;
  const tabStorage = () => {
    try {
      return platform().sessionStorage; // a sandboxed frame throws on access
    } catch {
      return undefined;
    }
  };
  const base64url = (bytes: Uint8Array) =>
    platform()
      .btoa(String.fromCharCode(...bytes))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
  /** A new secret for this tab's sign-in, kept until it comes back; answers its S256. */
  async function newSignInSecret(): Promise<string> {
    const { crypto, TextEncoder } = platform();
    const secret = base64url(crypto.getRandomValues(new Uint8Array(32)));
    pendingHere = secret;
    try {
      tabStorage()?.setItem(pendingKey, secret);
    } catch {
      // storage full or refused: this client keeps it (enough when the page is not reloaded on the way)
    }
    return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(secret))));
  }
  /** This tab's pending sign-in secret, if any, forgotten as it is read: a trip came back, the sign-in is over. */
  function takeSignInSecret(): string | undefined {
    let secret = pendingHere;
    try {
      const storage = tabStorage();
      secret = storage?.getItem(pendingKey) ?? secret;
      storage?.removeItem(pendingKey);
    } catch {
      // as above
    }
    pendingHere = undefined;
    return secret;
  }
  /** A first step's answer (a password, a provider): signed in, or the second step to come. */
  const firstStep = (res: SignedInBody | MfaChallenge): LoginResult =>
    "mfa_required" in res ? { signedIn: false, mfaRequired: true, challenge: res.challenge, methods: res.methods, expiresIn: res.expires_in } : signedIn(res);
  // REQUIRE_MFA's enrolment-only sessions (mfa.ts).
  const enrolment = mfaCalls({ token: () => access?.token, refresh: () => refresh(), payload });

  return {
    /** Current state, and a listener for signed in / signed out (returns an unsubscribe function). */
    get state() {
      return state();
    },
    onChange(listener: (state: AuthState) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** The new user; signed in too unless the service wants the address verified first. */
    register: (input: RegisterInput) => signIn<Registered>("/register", input).then((r) => warned(r).user),
    /** Signed in, or `{ signedIn: false, mfaRequired: true, challenge }`: then call loginMfa(). */
    async login(input: LoginInput): Promise<LoginResult> {
      return firstStep(await signIn<SignedInBody | MfaChallenge>("/login", input));
    },
    /** The login's second step. A wrong code: 401 invalid_mfa_code (try again); a dead challenge: 401 invalid_challenge (log in again). */
    loginMfa: (input: { challenge: string } & SecondFactor) => signIn<SignedInBody>("/login/mfa", input).then(signedIn),
    /** After a page load in cookie mode: signs in silently from the cookie, or resolves signed out (no error logged). */
    async resume(): Promise<AuthState> {
      try {
        await refresh(true);
      } catch (err) {
        if (!(err instanceof AuthError) || err.code !== "invalid_token") throw err;
      }
      return state();
    },
    /** The user, and which second factors the account has. */
    me: () => authed<Me>("GET", "/me"),
    protected: () => authed<Protected>("GET", "/protected"),
    sessions: (cursor?: string) => authed<SessionsPage>("GET", `/sessions${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ""}`),
    /** Another session than this one takes the step-up (the password; a code while TOTP is on); this one needs none. */
    revokeSession: (id: string, check: FreshCheck = {}) => authed<Reply>("DELETE", `/sessions/${encodeURIComponent(id)}`, check),
    changePassword: (input: PasswordChange & Partial<SecondFactor>) => authed<PasswordChanged>("POST", "/password", input).then(warned),
    /** The ways in (when and by which session each was added), this session's amr and auth_time, and the step-up table for this account. */
    security: () => authed<Security>("GET", "/me/security"),
    /**
     * Ends this session. Cookie mode: by the cookie, which works with an expired access token too,
     * under the tabs' lock so no refresh lands after it. Token mode: refreshed first if need be.
     */
    async logout() {
      try {
        await (cookie ? locked(() => send("POST", "/logout")) : authed("POST", "/logout"));
      } finally {
        adopt(null);
      }
    },
    /** Takes the step-up: the password (an account without one: a recent sign-in), and a code while TOTP is on. */
    async logoutEverywhere(check: FreshCheck = {}) {
      const res = await authed<SessionsRevoked>("POST", "/logout/all", check);
      adopt(null);
      return res;
    },
    // Mailed links: the app page at APP_URL reads the token from its URL fragment and posts it here.
    /**
     * A link that proves an address (verification, an address change) takes proof that you hold the
     * account: signed in to it (the Bearer token goes along), or its `password`. Without either: 401
     * account_proof_required (ask for the password and send again).
     */
    verifyEmail: (token: string, password?: string) => holder<Reply>("/email/verify", token, password),
    /** A new verification link: for the signed-in account, or (signed out, say after 403 email_unverified) to an address. */
    requestEmailVerification: (email?: string) =>
      email === undefined ? authed<Reply>("POST", "/email/verify/request") : send<Reply>("POST", "/email/verify/request", { email }),
    /** The Turnstile site key to render the widget with, or null while the API asks for none. */
    turnstileSiteKey: () => send<TurnstileConfig>("GET", "/turnstile").then((r) => r.site_key),
    forgotPassword: (email: string) => send<Reply>("POST", "/password/forgot", { email }),
    /** 401 invalid_mfa_code: this account's TOTP stays through a reset; send a code (or recovery code) too. */
    resetPassword: (token: string, new_password: string, factor: ResetFactor = {}) =>
      send<ResetDone>("POST", "/password/reset", { token, new_password, ...factor }).then(warned),
    changeEmail: (new_email: string, check: FreshCheck) => authed<Reply>("POST", "/email", { new_email, ...check }),
    confirmEmail: (token: string, password?: string) => holder<Reply>("/email/confirm", token, password),
    /** "This was not me": the token of the link in a notice. Every session of that account ends, this one too if it is one of them. */
    revokeWayIn: (token: string) => send<WayInRevoked>("POST", "/ways-in/revoke", { token }),
    async deleteAccount(check: FreshCheck) {
      const res = await authed<Reply>("DELETE", "/me", check);
      adopt(null);
      return res;
    },
    // TOTP: setup (after the password; an account without one sends none and needs a recent sign-in)
    // gives a secret and its otpauth:// URI; a code from it turns TOTP on and brings the ten recovery codes, shown once.
    totpSetup: (current_password?: string) => authed<TotpSetup>("POST", "/mfa/totp/setup", { current_password }),
    /** Under REQUIRE_MFA, an enrolment-only session is refreshed afterwards: its token is then full. */
    totpEnable: (code: string) => authed<RecoveryCodes>("POST", "/mfa/totp/enable", { code }).then(enrolment.afterEnrolment),
    /** The code (or a recovery code), and the password where the account has one (security().step_up.disable_totp says). */
    totpDisable: (input: { current_password?: string } & SecondFactor) => authed<Reply>("POST", "/mfa/totp/disable", input),
    // Passkeys: options for navigator.credentials.create() / .get(), and the browser's JSON back.
    // Adding a passkey takes the password, and a code (or recovery code) while TOTP is on.
    passkeyRegistrationOptions: (check: FreshCheck) =>
      authed<{ options: PublicKeyCredentialCreationOptionsJSON }>("POST", "/passkeys/register/options", check).then((r) => r.options),
    passkeyRegister: (response: RegistrationResponseJSON, name?: string) =>
      authed<Passkey>("POST", "/passkeys/register/verify", { response, name }).then(enrolment.afterEnrolment),
    /** REQUIRE_MFA: this session may only enrol a second factor (every other call answers 403 mfa_enrolment_required). */
    enrolmentRequired: () => enrolment.enrolmentRequired(),
    passkeyLoginOptions: () => send<{ options: PublicKeyCredentialRequestOptionsJSON }>("POST", "/passkeys/login/options").then((r) => r.options),
    passkeyLogin: (response: AuthenticationResponseJSON) => signIn<SignedInBody>("/passkeys/login/verify", { response }).then(signedIn),
    listPasskeys: () => authed<Passkeys>("GET", "/passkeys").then((r) => r.passkeys),
    deletePasskey: (id: string, check: FreshCheck) => authed<Reply>("DELETE", `/passkeys/${encodeURIComponent(id)}`, check),
    // Social sign-in (docs/social-sign-in.md).
    /** The configured providers, for the app's buttons. */
    providers: () => send<Providers>("GET", "/oauth/providers").then((r) => r.providers),
    /**
     * Starts a sign-in with `provider` in this tab: keeps a secret for it (sessionStorage), and in a
     * browser goes to the provider; resolves the start URL (`navigate: false`: open it in this tab
     * yourself). `returnTo`: the app page to come back to, on this page's origin (default: the API's
     * APP_URL). Then call completeSignIn() on that page.
     */
    async signInWith(provider: string, opts: { returnTo?: string; navigate?: boolean } = {}): Promise<string> {
      const query = new (platform().URLSearchParams)({
        use_cookie: String(cookie),
        ...(opts.returnTo ? { return_to: opts.returnTo } : {}),
        code_challenge: await newSignInSecret(),
      });
      const url = `${base}/oauth/${encodeURIComponent(provider)}/start?${query}`;
      const location = platform().location;
      if (opts.navigate !== false && location) location.assign(url);
      return url;
    },
    /**
     * On the page a provider sent the browser back to: reads the fragment (or `url`), removes it from
     * the address bar, and finishes: signed in, the second step's challenge (then loginMfa()), or a
     * linked identity. Null when the page was not opened by a provider. The API's refusal throws, and
     * so does a sign-in code this tab did not start (AuthError invalid_grant, status 0, nothing sent).
     */
    async completeSignIn(url?: string): Promise<SocialLanding> {
      const { location, history, URLSearchParams } = platform();
      const here = url ?? location?.href ?? "";
      const fragment = new URLSearchParams(here.split("#")[1] ?? "");
      const outcome = fragment.get("oauth");
      const error = fragment.get("oauth_error");
      if (!outcome && !error) return null;
      if (!url && history) history.replaceState(null, "", here.split("#")[0]!); // the code is single use; keep it out of history
      const secret = takeSignInSecret();
      if (error) throw new AuthError(error as ErrorCode, SOCIAL_ERRORS[error] ?? `Sign-in with the provider did not complete: ${error}`, 0);
      if (outcome === "signed_in") {
        await refresh();
        return { ...state(), user: (await authed<Me>("GET", "/me")).user } as SignedIn;
      }
      const code = fragment.get("oauth_code") ?? "";
      if (outcome === "link") return authed<{ linked: { id: string; provider: string } }>("POST", "/oauth/exchange", { code });
      // A code this tab did not start: a link to the app with someone else's code would sign the
      // person in to that someone's account.
      if (!secret) throw new AuthError("invalid_grant", "This sign-in was not started in this tab: sign in again from here", 0);
      return firstStep(await signIn<SignedInBody | MfaChallenge>("/oauth/exchange", { code, code_verifier: secret }));
    },
    /** Links `provider` to this account after the step-up: goes to the provider; completeSignIn() finishes it. */
    async linkIdentity(provider: string, check: FreshCheck, opts: { returnTo?: string; navigate?: boolean } = {}) {
      const { url } = await authed<{ url: string }>("POST", `/me/identities/${encodeURIComponent(provider)}/link`, { ...check, return_to: opts.returnTo });
      const location = (globalThis as unknown as Platform).location;
      if (opts.navigate !== false && location) location.assign(url);
      return url;
    },
    /** 409 last_way_in when nothing else would sign in to the account. */
    unlinkIdentity: (id: string, check: FreshCheck) => authed<Reply>("DELETE", `/me/identities/${encodeURIComponent(id)}`, check),
    // Consent for other apps, and the apps connected to the account (apps.ts).
    ...appCalls(
      authed,
      (method, path, body) => send(method, path, body),
      () => access !== undefined,
    ),
    // Organizations, members, invitations and the active organization (orgs.ts); API keys (keys.ts).
    ...orgCalls(authed, { token: () => access?.token, adopt, refresh: () => refresh(), payload }),
    ...keyCalls(authed),
    ...guestCalls(authed, { signIn, claims: () => payload(access?.token), adopt }),
    // Sign-in and sign-up by mail (mail.ts): mailSignIn.start(), .withLink(), .withCode().
    ...mailCalls((method, path, body) => send(method, path, body), signIn, firstStep),
    /** Sets or changes the username (an account that signed up without one may add it): 409 username_taken. */
    setUsername: (username: string) => authed<UserBody>("PATCH", "/me", { username }).then((r) => r.user),
    /** A Bearer request to any other route of this API, with the same refresh and retry. */
    request: <T = unknown>(method: string, path: string, body?: unknown) => authed<T>(method, path, body),
    /**
     * Your own backend: the platform's fetch(), with `Authorization: Bearer <access token>` added, for
     * the origins in `backends` (and the API's) only; any other throws origin_not_allowed before
     * anything is sent. A token about to expire is refreshed first; a 401 with WWW-Authenticate
     * `Bearer error="invalid_token"` gets one refresh (shared by every call that met it) and one
     * retry, and that answer is returned whatever it is. Signed out: AuthError invalid_token. A body
     * must be one that can be sent twice (a string, Blob, FormData...), or a Request (it is cloned).
     */
    fetch: (input: FetchInput, init?: FetchInit): Promise<FetchResponse> => toBackend(input, init),
    /**
     * The current access token for anything fetch() does not cover (a WebSocket, another HTTP
     * library), refreshed first when it is about to expire; null when nobody is signed in. Send it
     * only to your own services, and ask again for each call rather than keeping it.
     */
    async accessToken(): Promise<string | null> {
      try {
        return await fresh(true);
      } catch (err) {
        if (err instanceof AuthError && err.code === "invalid_token") return null;
        throw err;
      }
    },
  };
}

export type AuthClient = ReturnType<typeof createAuthClient>;
