// Generated from client/index.ts by `npm run client:build`. Do not edit.
// client/backends.ts
function originsOf(urls) {
  const { URL } = globalThis;
  return new Set(urls.map((u) => new URL(u).origin));
}
var refusedToken = (status, challenge) => status === 401 && /^\s*Bearer\b/i.test(challenge ?? "") && /\berror\s*=\s*"?invalid_token"?/i.test(challenge ?? "");
function backendFetch(allowed, tokens, doFetch, originError) {
  const platform = globalThis;
  return async function authFetch(input, init) {
    const given = typeof input === "object" && input !== null && "clone" in input ? input : void 0;
    const request = given && init ? new platform.Request(given, init) : given;
    const href = request ? request.url : typeof input === "string" ? input : input.href;
    const origin = new platform.URL(href, platform.location?.href).origin;
    if (!allowed.has(origin)) throw originError(origin);
    const send = (token2) => {
      if (request) {
        const copy = request.clone();
        const headers2 = new platform.Headers(copy.headers);
        headers2.set("authorization", `Bearer ${token2}`);
        return doFetch(new platform.Request(copy, { headers: headers2 }));
      }
      const headers = new platform.Headers(init?.headers);
      headers.set("authorization", `Bearer ${token2}`);
      return doFetch(input, { ...init, headers });
    };
    const token = await tokens.fresh();
    const res = await send(token);
    if (!refusedToken(res.status, res.headers.get("www-authenticate"))) return res;
    return await send(await tokens.renew(token));
  };
}

// client/device.ts
var BROWSERS = [
  [/\bEdg(e|A|iOS)?\//, "Edge"],
  [/\bOPR\/|\bOpera\b/, "Opera"],
  [/\bSamsungBrowser\//, "Samsung Internet"],
  [/\bFirefox\/|\bFxiOS\//, "Firefox"],
  [/\b(Headless)?Chrom(e|ium)\/|\bCriOS\//, "Chrome"],
  [/\bVersion\/[\d.]+.*\bSafari\//, "Safari"],
  [/^curl\//, "curl"]
];
var SYSTEMS = [
  [/\biPhone\b|\biPad\b|\biPod\b/, "iOS"],
  [/\bAndroid\b/, "Android"],
  [/\bCrOS\b/, "ChromeOS"],
  [/\bWindows\b/, "Windows"],
  [/\bMac OS X\b|\bMacintosh\b/, "macOS"],
  [/\bLinux\b/, "Linux"]
];
function deviceName(userAgent) {
  const ua = (userAgent ?? "").trim();
  if (!ua) return "Unknown device";
  const browser2 = BROWSERS.find(([pattern]) => pattern.test(ua))?.[1];
  const system = SYSTEMS.find(([pattern]) => pattern.test(ua))?.[1];
  const name = browser2 ?? (system ? "A browser" : ua.split(/[\s/;(]/)[0].slice(0, 32) || "Unknown device");
  return system ? `${name} on ${system}` : name;
}

// client/index.ts
var SOCIAL_ERRORS = {
  account_exists: "An account with this address exists. If it is yours, sign in to it and link this provider from your security settings; if it is not, reset its password by mail",
  access_denied: "Sign-in was cancelled at the provider",
  provider_unreachable: "The provider cannot be reached right now: try again in a moment",
  provider_unavailable: "Sign-in with this provider is unavailable on this service right now",
  invalid_state: "This sign-in expired or was started in another browser: sign in again"
};
var AuthError = class extends Error {
  code;
  status;
  // 0 when no answer arrived
  fields;
  retryAfter;
  // seconds, from Retry-After
  // Plain fields, no parameter properties: Node 22 runs this file as it is (type stripping only).
  constructor(code, message, status, fields, retryAfter) {
    super(message);
    this.name = "AuthError";
    this.code = code;
    this.status = status;
    this.fields = fields;
    this.retryAfter = retryAfter;
  }
};
var CHANNEL = "edge-auth-api";
var browser = globalThis;
function createAuthClient(options) {
  const base = options.baseUrl.replace(/\/$/, "");
  const cookie = options.cookie ?? browser.document !== void 0;
  const doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const leeway = options.refreshLeeway ?? 30;
  const listeners = /* @__PURE__ */ new Set();
  const channel = cookie && browser.BroadcastChannel ? new browser.BroadcastChannel(`${CHANNEL}:${base}`) : void 0;
  const pendingKey = `${CHANNEL}:sign-in:${base}`;
  let pendingHere;
  let access;
  let refreshToken;
  let refreshing;
  const state = () => access ? { signedIn: true, userId: access.sub, username: access.username } : { signedIn: false };
  const emit = () => {
    for (const listener of listeners) {
      try {
        listener(state());
      } catch (err) {
        globalThis.console.error(err);
      }
    }
  };
  function claimsOf(token) {
    try {
      const claims = JSON.parse(globalThis.atob(String(token).split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      if (typeof claims.sub === "string" && typeof claims.username === "string") return claims;
    } catch {
    }
    throw new AuthError("bad_response", "The API answered without a valid access token", 200);
  }
  function adopt(tokens, announce = true) {
    const before = access?.sub;
    if (tokens) {
      const { sub, username } = claimsOf(tokens.access_token);
      const expiresAt = tokens.expiresAt ?? Date.now() + (tokens.expires_in ?? 0) * 1e3;
      access = { token: tokens.access_token, expiresAt, sub, username };
      if (tokens.refresh_token) refreshToken = tokens.refresh_token;
    } else {
      access = void 0;
      refreshToken = void 0;
    }
    if (announce) channel?.postMessage({ token: access?.token ?? null, expiresAt: access?.expiresAt });
    if (before !== access?.sub) emit();
  }
  channel?.addEventListener("message", (e) => adopt(e.data.token ? { access_token: e.data.token, expiresAt: e.data.expiresAt } : null, false));
  const locked = (run) => {
    const locks = browser.navigator?.locks;
    return locks ? locks.request(`${CHANNEL}:refresh`, run) : run();
  };
  async function send(method, path, body, auth = false) {
    const headers = {};
    if (body !== void 0) headers["content-type"] = "application/json";
    if (auth && access) headers.authorization = `Bearer ${access.token}`;
    let res;
    try {
      const credentials = cookie ? "include" : "same-origin";
      res = await doFetch(`${base}${path}`, { method, headers, credentials, ...body === void 0 ? {} : { body: JSON.stringify(body) } });
    } catch (err) {
      throw new AuthError("network_error", err.message || "The network request failed", 0);
    }
    if (res.status === 204) return void 0;
    let json;
    try {
      json = await res.json();
    } catch {
      throw new AuthError("bad_response", `The API answered ${res.status} without JSON`, res.status);
    }
    if (res.ok) return json;
    const e = json;
    const retry = Number(res.headers.get("retry-after"));
    if (typeof e?.error !== "string") throw new AuthError("bad_response", `The API answered ${res.status}`, res.status);
    throw new AuthError(e.error, e.message ?? e.error, res.status, e.fields, Number.isFinite(retry) && retry > 0 ? retry : void 0);
  }
  function refresh(probe = false) {
    refreshing ??= (async () => {
      const seen = access?.token;
      const run = async () => {
        if (access && access.token !== seen) return;
        if (!cookie && !refreshToken) {
          adopt(null);
          throw new AuthError("invalid_token", "Signed out: sign in again", 401);
        }
        try {
          adopt(await send("POST", "/refresh", cookie ? probe ? { if_signed_in: true } : {} : { refresh_token: refreshToken }) ?? null);
        } catch (err) {
          if (err instanceof AuthError && err.code === "invalid_token") adopt(null);
          throw err;
        }
      };
      await locked(run);
    })().finally(() => refreshing = void 0);
    return refreshing;
  }
  async function authed(method, path, body) {
    if (!access || access.expiresAt - Date.now() < leeway * 1e3) await refresh();
    const token = access?.token;
    try {
      return await send(method, path, body, true);
    } catch (err) {
      if (!(err instanceof AuthError) || err.code !== "invalid_token") throw err;
      if (access?.token === token) await refresh();
      return send(method, path, body, true);
    }
  }
  const signedOut = () => new AuthError("invalid_token", "Signed out: sign in again", 401);
  async function fresh(probe = false) {
    if (!access || access.expiresAt - Date.now() < leeway * 1e3) await refresh(probe && !access);
    if (!access) throw signedOut();
    return access.token;
  }
  async function renew(stale) {
    if (access?.token === stale) await refresh();
    if (!access) throw signedOut();
    return access.token;
  }
  const toBackend = backendFetch(
    originsOf([base, ...options.backends ?? []]),
    { fresh, renew },
    (input, init) => (options.fetch ?? globalThis.fetch)(input, init),
    (origin) => new AuthError(
      "origin_not_allowed",
      `fetch(): ${origin} is not one of this client's backends: add it to createAuthClient's backends to send it the access token`,
      0
    )
  );
  async function signIn(path, input) {
    const res = await send("POST", path, { ...input, use_cookie: cookie });
    if (res.access_token) adopt(res);
    return res;
  }
  const holder = (path, token, password) => password === void 0 && access ? authed("POST", path, { token }) : send("POST", path, password === void 0 ? { token } : { token, password });
  const signedIn = (res) => ({ ...state(), user: res.user });
  const platform = () => globalThis;
  const tabStorage = () => {
    try {
      return platform().sessionStorage;
    } catch {
      return void 0;
    }
  };
  const base64url = (bytes) => platform().btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  async function newSignInSecret() {
    const { crypto, TextEncoder } = platform();
    const secret = base64url(crypto.getRandomValues(new Uint8Array(32)));
    pendingHere = secret;
    try {
      tabStorage()?.setItem(pendingKey, secret);
    } catch {
    }
    return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(secret))));
  }
  function takeSignInSecret() {
    let secret = pendingHere;
    try {
      const storage = tabStorage();
      secret = storage?.getItem(pendingKey) ?? secret;
      storage?.removeItem(pendingKey);
    } catch {
    }
    pendingHere = void 0;
    return secret;
  }
  const firstStep = (res) => "mfa_required" in res ? { signedIn: false, mfaRequired: true, challenge: res.challenge, methods: res.methods, expiresIn: res.expires_in } : signedIn(res);
  return {
    /** Current state, and a listener for signed in / signed out (returns an unsubscribe function). */
    get state() {
      return state();
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** The new user; signed in too unless the service wants the address verified first. */
    register: (input) => signIn("/register", input).then((r) => r.user),
    /** Signed in, or `{ signedIn: false, mfaRequired: true, challenge }`: then call loginMfa(). */
    async login(input) {
      return firstStep(await signIn("/login", input));
    },
    /** The login's second step. A wrong code: 401 invalid_mfa_code (try again); a dead challenge: 401 invalid_challenge (log in again). */
    loginMfa: (input) => signIn("/login/mfa", input).then(signedIn),
    /** After a page load in cookie mode: signs in silently from the cookie, or resolves signed out (no error logged). */
    async resume() {
      try {
        await refresh(true);
      } catch (err) {
        if (!(err instanceof AuthError) || err.code !== "invalid_token") throw err;
      }
      return state();
    },
    /** The user, and which second factors the account has. */
    me: () => authed("GET", "/me"),
    protected: () => authed("GET", "/protected"),
    sessions: (cursor) => authed("GET", `/sessions${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ""}`),
    revokeSession: (id) => authed("DELETE", `/sessions/${encodeURIComponent(id)}`),
    changePassword: (input) => authed("POST", "/password", input),
    /** The ways in (when and by which session each was added), this session's amr and auth_time, and the step-up table for this account. */
    security: () => authed("GET", "/me/security"),
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
    async logoutEverywhere() {
      const res = await authed("POST", "/logout/all");
      adopt(null);
      return res;
    },
    // Mailed links: the app page at APP_URL reads the token from its URL fragment and posts it here.
    /**
     * A link that proves an address (verification, an address change) takes proof that you hold the
     * account: signed in to it (the Bearer token goes along), or its `password`. Without either: 401
     * account_proof_required (ask for the password and send again).
     */
    verifyEmail: (token, password) => holder("/email/verify", token, password),
    /** A new verification link: for the signed-in account, or (signed out, say after 403 email_unverified) to an address. */
    requestEmailVerification: (email) => email === void 0 ? authed("POST", "/email/verify/request") : send("POST", "/email/verify/request", { email }),
    forgotPassword: (email) => send("POST", "/password/forgot", { email }),
    /** 401 invalid_mfa_code: this account's TOTP stays through a reset; send a code (or recovery code) too. */
    resetPassword: (token, new_password, factor = {}) => send("POST", "/password/reset", { token, new_password, ...factor }),
    changeEmail: (new_email, check) => authed("POST", "/email", { new_email, ...check }),
    confirmEmail: (token, password) => holder("/email/confirm", token, password),
    /** "This was not me": the token of the link in a notice. Every session of that account ends, this one too if it is one of them. */
    revokeWayIn: (token) => send("POST", "/ways-in/revoke", { token }),
    async deleteAccount(check) {
      const res = await authed("DELETE", "/me", check);
      adopt(null);
      return res;
    },
    // TOTP: setup (after the password; an account without one sends none and needs a recent sign-in)
    // gives a secret and its otpauth:// URI; a code from it turns TOTP on and brings the ten recovery codes, shown once.
    totpSetup: (current_password) => authed("POST", "/mfa/totp/setup", { current_password }),
    totpEnable: (code) => authed("POST", "/mfa/totp/enable", { code }),
    /** The code (or a recovery code), and the password where the account has one (security().step_up.disable_totp says). */
    totpDisable: (input) => authed("POST", "/mfa/totp/disable", input),
    // Passkeys: options for navigator.credentials.create() / .get(), and the browser's JSON back.
    // Adding a passkey takes the password, and a code (or recovery code) while TOTP is on.
    passkeyRegistrationOptions: (check) => authed("POST", "/passkeys/register/options", check).then((r) => r.options),
    passkeyRegister: (response, name) => authed("POST", "/passkeys/register/verify", { response, name }),
    passkeyLoginOptions: () => send("POST", "/passkeys/login/options").then((r) => r.options),
    passkeyLogin: (response) => signIn("/passkeys/login/verify", { response }).then(signedIn),
    listPasskeys: () => authed("GET", "/passkeys").then((r) => r.passkeys),
    deletePasskey: (id, check) => authed("DELETE", `/passkeys/${encodeURIComponent(id)}`, check),
    // Social sign-in (docs/social-sign-in.md).
    /** The configured providers, for the app's buttons. */
    providers: () => send("GET", "/oauth/providers").then((r) => r.providers),
    /**
     * Starts a sign-in with `provider` in this tab: keeps a secret for it (sessionStorage), and in a
     * browser goes to the provider; resolves the start URL (`navigate: false`: open it in this tab
     * yourself). `returnTo`: the app page to come back to, on this page's origin (default: the API's
     * APP_URL). Then call completeSignIn() on that page.
     */
    async signInWith(provider, opts = {}) {
      const query = new (platform()).URLSearchParams({
        use_cookie: String(cookie),
        ...opts.returnTo ? { return_to: opts.returnTo } : {},
        code_challenge: await newSignInSecret()
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
    async completeSignIn(url) {
      const { location, history, URLSearchParams } = platform();
      const here = url ?? location?.href ?? "";
      const fragment = new URLSearchParams(here.split("#")[1] ?? "");
      const outcome = fragment.get("oauth");
      const error = fragment.get("oauth_error");
      if (!outcome && !error) return null;
      if (!url && history) history.replaceState(null, "", here.split("#")[0]);
      const secret = takeSignInSecret();
      if (error) throw new AuthError(error, SOCIAL_ERRORS[error] ?? `Sign-in with the provider did not complete: ${error}`, 0);
      if (outcome === "signed_in") {
        await refresh();
        return { ...state(), user: (await authed("GET", "/me")).user };
      }
      const code = fragment.get("oauth_code") ?? "";
      if (outcome === "link") return authed("POST", "/oauth/exchange", { code });
      if (!secret) throw new AuthError("invalid_grant", "This sign-in was not started in this tab: sign in again from here", 0);
      return firstStep(await signIn("/oauth/exchange", { code, code_verifier: secret }));
    },
    /** Links `provider` to this account after the step-up: goes to the provider; completeSignIn() finishes it. */
    async linkIdentity(provider, check, opts = {}) {
      const { url } = await authed("POST", `/me/identities/${encodeURIComponent(provider)}/link`, { ...check, return_to: opts.returnTo });
      const location = globalThis.location;
      if (opts.navigate !== false && location) location.assign(url);
      return url;
    },
    /** 409 last_way_in when nothing else would sign in to the account. */
    unlinkIdentity: (id, check) => authed("DELETE", `/me/identities/${encodeURIComponent(id)}`, check),
    /** A Bearer request to any other route of this API, with the same refresh and retry. */
    request: (method, path, body) => authed(method, path, body),
    /**
     * Your own backend: the platform's fetch(), with `Authorization: Bearer <access token>` added, for
     * the origins in `backends` (and the API's) only; any other throws origin_not_allowed before
     * anything is sent. A token about to expire is refreshed first; a 401 with WWW-Authenticate
     * `Bearer error="invalid_token"` gets one refresh (shared by every call that met it) and one
     * retry, and that answer is returned whatever it is. Signed out: AuthError invalid_token. A body
     * must be one that can be sent twice (a string, Blob, FormData...), or a Request (it is cloned).
     */
    fetch: (input, init) => toBackend(input, init),
    /**
     * The current access token for anything fetch() does not cover (a WebSocket, another HTTP
     * library), refreshed first when it is about to expire; null when nobody is signed in. Send it
     * only to your own services, and ask again for each call rather than keeping it.
     */
    async accessToken() {
      try {
        return await fresh(true);
      } catch (err) {
        if (err instanceof AuthError && err.code === "invalid_token") return null;
        throw err;
      }
    }
  };
}
export {
  AuthError,
  createAuthClient,
  deviceName
};
