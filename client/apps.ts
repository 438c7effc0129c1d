import type { AppDisconnected, AuthorizationRedirect, AuthorizationRequest, ConnectedApps } from "./types.js";

/**
 * The consent page's calls and the account's connected apps (docs/oauth-server.md). Another app sends
 * the browser to the authorization endpoint, which sends it on to this app's page with
 * `#authorize=<request id>`; the page signs the person in, shows authorizationRequest(id), and sends
 * the browser to the `redirect_to` that approve() or deny() answers. Approval is bound to the session
 * that opened the request: open and approve it with the same signed-in client.
 */

export type { AuthorizationRequest };
export type ConnectedApp = ConnectedApps["apps"][number];

type Call = <T>(method: string, path: string, body?: unknown) => Promise<T>;

/** The request id in a page URL's fragment (`#authorize=<id>`), or null. */
export function authorizeRequestId(url: string): string | null {
  const fragment = url.split("#")[1] ?? "";
  const match = /(?:^|&)authorize=([^&]+)/.exec(fragment);
  return match ? decodeURIComponent(match[1]!) : null;
}

/** `authed`: a Bearer call with refresh and retry; `anonymous`: no Authorization header; `signedIn`: whether there is a session to send. */
export function appCalls(authed: Call, anonymous: Call, signedIn: () => boolean) {
  const request = (id: string) => `/oauth2/requests/${encodeURIComponent(id)}`;
  return {
    /**
     * What an app asks (its name and site, each scope in plain words, the resource), for the consent
     * page. The first session that opens a request holds it; another gets 404 not_found. `login_required`:
     * the app wants a newer sign-in (prompt=login, max_age): sign in again, then open and approve.
     * `consent_remembered`: the person already agreed to all of it; the page may approve at once.
     */
    authorizationRequest: (id: string) => authed<AuthorizationRequest>("GET", request(id)),
    /**
     * Yes, once, by the session holding the request: `{ redirect_to }` (the app's redirect_uri with a
     * code, state and iss); send the browser there. 401 reauthentication_required: sign in again first.
     */
    approve: (id: string) => authed<AuthorizationRedirect>("POST", `${request(id)}/approve`),
    /**
     * No: `{ redirect_to }` with error=access_denied (or login_required, signed out and the app asked
     * prompt=none). Signed out, it is sent without a session: the request id alone.
     */
    deny: (id: string) => (signedIn() ? authed : anonymous)<AuthorizationRedirect>("POST", `${request(id)}/deny`),
    /** The apps this account let in: scopes, resources, since, last used. */
    connectedApps: () => authed<ConnectedApps>("GET", "/account/apps").then((r) => r.apps),
    /** Ends every grant the app holds (its refresh tokens stop working) and forgets the consent. 404 not_found: nothing with that app. */
    disconnectApp: (clientId: string) => authed<AppDisconnected>("DELETE", `/account/apps/${encodeURIComponent(clientId)}`),
  };
}
