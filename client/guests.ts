import type { GuestUpgradeRequest, SignedInBody, User } from "./types.js";

/**
 * Guests (docs/guests.md): an app may let a person try it before signing up. startGuest() signs in as
 * a new anonymous account (its own id; the access token carries `guest: true`); upgradeGuest() gives
 * that same account an address and a password, keeping its id and everything the app stored under it,
 * and takes the new access token at once (without `guest`). A passkey added or a provider linked
 * makes a guest a member too: its next refresh drops the claim. isGuest() reads the current token,
 * decoded and not verified (display only: a backend verifies the token before it trusts a claim).
 * Where the API runs with Turnstile, startGuest() needs the widget's token for the action "guest".
 */

export type GuestUpgrade = GuestUpgradeRequest;

type Call = <T>(method: string, path: string, body?: unknown) => Promise<T>;

export interface GuestSession {
  /** POST with use_cookie as the client signs in; takes the tokens. */
  signIn<T extends object>(path: string, input: object): Promise<T>;
  /** The current access token's payload (unverified). */
  claims(): Record<string, unknown> | undefined;
  /** Takes a new access token for this session. */
  adopt(tokens: { access_token: string; expires_in: number }): void;
}

export function guestCalls(authed: Call, session: GuestSession) {
  return {
    /** Signs in as a new guest (the API's GUESTS must be "on": else 404 not_found). Per client address: 429 rate_limited. */
    startGuest: () => session.signIn<SignedInBody>("/guests", {}).then((r) => r.user),
    /**
     * The signed-in guest becomes a member with this address (unverified: a link is mailed) and
     * password, and a username if given: the same account id. 409 email_taken / username_taken (the
     * guest stays a guest, signed in), already_member; the password policy's 400 codes.
     */
    async upgradeGuest(input: GuestUpgrade): Promise<User> {
      const res = await authed<SignedInBody>("POST", "/guests/upgrade", input);
      session.adopt({ access_token: res.access_token, expires_in: res.expires_in });
      return res.user;
    },
    /** Whether the current access token is a guest's (decoded, not verified). */
    isGuest: () => session.claims()?.guest === true,
  };
}
