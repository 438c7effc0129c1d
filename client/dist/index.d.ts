import { type FetchInit, type FetchInput, type FetchResponse } from "./backends.js";
import type { ErrorCode, Factors, LoginMfaRequest, LoginRequest, Me, Message, MfaChallengeBody, Passkey, PasswordChangeRequest, Protected, Providers, RecoveryCodes, RegisterRequest, ResetDone, Security, SessionsPage, SessionsRevoked, TotpSetup, User, WayInRevoked } from "./types.js";
import type { AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON } from "./webauthn.js";
export type { FetchInit, FetchInput, FetchResponse } from "./backends.js";
export { deviceName } from "./device.js";
export type * from "./webauthn.js";
export type { ErrorCode, Factors, Me, Passkey, Security, TotpSetup, User };
export type Session = SessionsPage["sessions"][number];
export type WayIn = Security["ways_in"][number];
export type RegisterInput = Omit<RegisterRequest, "use_cookie">;
export type LoginInput = Omit<LoginRequest, "use_cookie">;
export type PasswordChange = PasswordChangeRequest;
type MfaChallenge = MfaChallengeBody;
type OneOf<T> = {
    [K in keyof T]-?: Required<Pick<T, K>> & {
        [O in Exclude<keyof T, K>]?: undefined;
    };
}[keyof T];
/** A TOTP code from the authenticator app, or one of the recovery codes: exactly one. */
export type SecondFactor = OneOf<Pick<LoginMfaRequest, "code" | "recovery_code">>;
/**
 * A step-up (the server's table, Security["step_up"]): the password, and while TOTP is on a code or a
 * recovery code. Without the code, the API answers 401 invalid_mfa_code: ask for one and send again.
 */
export type FreshCheck = {
    current_password?: string;
} & (SecondFactor | {
    code?: undefined;
    recovery_code?: undefined;
});
/** A configured social sign-in provider: GET /oauth/providers. */
export type Provider = Providers["providers"][number];
/** What completeSignIn() found in the page's URL after a provider sent the browser back. */
export type SocialLanding = LoginResult | {
    linked: {
        id: string;
        provider: string;
    };
} | null;
/** What a reset may need besides the token: a code, where TOTP was turned on after the address was confirmed. */
export type ResetFactor = SecondFactor | {
    code?: undefined;
    recovery_code?: undefined;
};
/** What the client asks of fetch: the platform's fits (browsers, Workers, Node 18+), with no DOM types needed. */
export type FetchLike = (input: string, init: {
    method: string;
    headers: Record<string, string>;
    body?: string;
    credentials: "include" | "same-origin";
}) => Promise<{
    ok: boolean;
    status: number;
    headers: {
        get(name: string): string | null;
    };
    json(): Promise<unknown>;
}>;
/** What went wrong: `code` is the API's error code, or network_error / bad_response / origin_not_allowed (fetch() to an origin not in `backends`). */
export declare class AuthError extends Error {
    readonly code: ErrorCode | "network_error" | "bad_response" | "origin_not_allowed";
    readonly status: number;
    readonly fields?: Record<string, string>;
    readonly retryAfter?: number;
    constructor(code: AuthError["code"], message: string, status: number, fields?: Record<string, string>, retryAfter?: number);
}
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
}
export type AuthState = {
    signedIn: true;
    userId: string;
    username: string;
} | {
    signedIn: false;
};
/** Signed in (login, loginMfa, passkeyLogin): the new state, and the user. */
export type SignedIn = Extract<AuthState, {
    signedIn: true;
}> & {
    user: User;
};
/** login() when the account has TOTP on: nothing signed in yet; send the challenge to loginMfa() with a code. */
export type MfaRequired = {
    signedIn: false;
    mfaRequired: true;
    challenge: string;
    methods: MfaChallenge["methods"];
    expiresIn: number;
};
export type LoginResult = SignedIn | MfaRequired;
export declare function createAuthClient(options: ClientOptions): {
    /** Current state, and a listener for signed in / signed out (returns an unsubscribe function). */
    readonly state: AuthState;
    onChange(listener: (state: AuthState) => void): () => boolean;
    /** The new user; signed in too unless the service wants the address verified first. */
    register: (input: RegisterInput) => Promise<User>;
    /** Signed in, or `{ signedIn: false, mfaRequired: true, challenge }`: then call loginMfa(). */
    login(input: LoginInput): Promise<LoginResult>;
    /** The login's second step. A wrong code: 401 invalid_mfa_code (try again); a dead challenge: 401 invalid_challenge (log in again). */
    loginMfa: (input: {
        challenge: string;
    } & SecondFactor) => Promise<SignedIn>;
    /** After a page load in cookie mode: signs in silently from the cookie, or resolves signed out (no error logged). */
    resume(): Promise<AuthState>;
    /** The user, and which second factors the account has. */
    me: () => Promise<Me>;
    protected: () => Promise<Protected>;
    sessions: (cursor?: string) => Promise<SessionsPage>;
    revokeSession: (id: string) => Promise<Message>;
    changePassword: (input: PasswordChange & Partial<SecondFactor>) => Promise<SessionsRevoked>;
    /** The ways in (when and by which session each was added), this session's amr and auth_time, and the step-up table for this account. */
    security: () => Promise<Security>;
    /**
     * Ends this session. Cookie mode: by the cookie, which works with an expired access token too,
     * under the tabs' lock so no refresh lands after it. Token mode: refreshed first if need be.
     */
    logout(): Promise<void>;
    logoutEverywhere(): Promise<SessionsRevoked>;
    /**
     * A link that proves an address (verification, an address change) takes proof that you hold the
     * account: signed in to it (the Bearer token goes along), or its `password`. Without either: 401
     * account_proof_required (ask for the password and send again).
     */
    verifyEmail: (token: string, password?: string) => Promise<Message>;
    /** A new verification link: for the signed-in account, or (signed out, say after 403 email_unverified) to an address. */
    requestEmailVerification: (email?: string) => Promise<Message>;
    forgotPassword: (email: string) => Promise<Message>;
    /** 401 invalid_mfa_code: this account's TOTP stays through a reset; send a code (or recovery code) too. */
    resetPassword: (token: string, new_password: string, factor?: ResetFactor) => Promise<ResetDone>;
    changeEmail: (new_email: string, check: FreshCheck) => Promise<Message>;
    confirmEmail: (token: string, password?: string) => Promise<Message>;
    /** "This was not me": the token of the link in a notice. Every session of that account ends, this one too if it is one of them. */
    revokeWayIn: (token: string) => Promise<WayInRevoked>;
    deleteAccount(check: FreshCheck): Promise<Message>;
    totpSetup: (current_password?: string) => Promise<TotpSetup>;
    totpEnable: (code: string) => Promise<RecoveryCodes>;
    /** The code (or a recovery code), and the password where the account has one (security().step_up.disable_totp says). */
    totpDisable: (input: {
        current_password?: string;
    } & SecondFactor) => Promise<Message>;
    passkeyRegistrationOptions: (check: FreshCheck) => Promise<PublicKeyCredentialCreationOptionsJSON>;
    passkeyRegister: (response: RegistrationResponseJSON, name?: string) => Promise<Passkey>;
    passkeyLoginOptions: () => Promise<PublicKeyCredentialRequestOptionsJSON>;
    passkeyLogin: (response: AuthenticationResponseJSON) => Promise<SignedIn>;
    listPasskeys: () => Promise<{
        id: string;
        name: string;
        created_at: string;
        last_used_at: string | null;
        backed_up: boolean;
    }[]>;
    deletePasskey: (id: string, check: FreshCheck) => Promise<Message>;
    /** The configured providers, for the app's buttons. */
    providers: () => Promise<{
        id: string;
        name: string;
        kind: "oidc" | "google" | "microsoft" | "apple" | "github";
    }[]>;
    /**
     * Starts a sign-in with `provider` in this tab: keeps a secret for it (sessionStorage), and in a
     * browser goes to the provider; resolves the start URL (`navigate: false`: open it in this tab
     * yourself). `returnTo`: the app page to come back to, on this page's origin (default: the API's
     * APP_URL). Then call completeSignIn() on that page.
     */
    signInWith(provider: string, opts?: {
        returnTo?: string;
        navigate?: boolean;
    }): Promise<string>;
    /**
     * On the page a provider sent the browser back to: reads the fragment (or `url`), removes it from
     * the address bar, and finishes: signed in, the second step's challenge (then loginMfa()), or a
     * linked identity. Null when the page was not opened by a provider. The API's refusal throws, and
     * so does a sign-in code this tab did not start (AuthError invalid_grant, status 0, nothing sent).
     */
    completeSignIn(url?: string): Promise<SocialLanding>;
    /** Links `provider` to this account after the step-up: goes to the provider; completeSignIn() finishes it. */
    linkIdentity(provider: string, check: FreshCheck, opts?: {
        returnTo?: string;
        navigate?: boolean;
    }): Promise<string>;
    /** 409 last_way_in when nothing else would sign in to the account. */
    unlinkIdentity: (id: string, check: FreshCheck) => Promise<Message>;
    /** A Bearer request to any other route of this API, with the same refresh and retry. */
    request: <T = unknown>(method: string, path: string, body?: unknown) => Promise<T>;
    /**
     * Your own backend: the platform's fetch(), with `Authorization: Bearer <access token>` added, for
     * the origins in `backends` (and the API's) only; any other throws origin_not_allowed before
     * anything is sent. A token about to expire is refreshed first; a 401 with WWW-Authenticate
     * `Bearer error="invalid_token"` gets one refresh (shared by every call that met it) and one
     * retry, and that answer is returned whatever it is. Signed out: AuthError invalid_token. A body
     * must be one that can be sent twice (a string, Blob, FormData...), or a Request (it is cloned).
     */
    fetch: (input: FetchInput, init?: FetchInit) => Promise<FetchResponse>;
    /**
     * The current access token for anything fetch() does not cover (a WebSocket, another HTTP
     * library), refreshed first when it is about to expire; null when nobody is signed in. Send it
     * only to your own services, and ask again for each call rather than keeping it.
     */
    accessToken(): Promise<string | null>;
};
export type AuthClient = ReturnType<typeof createAuthClient>;
