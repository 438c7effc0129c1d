import type { MailSignInCodeRequest, MailSignInLinkRequest, Message, MfaChallengeBody, SignedInBody } from "./types.js";

/**
 * Sign-in (and sign-up) by mail (docs/mail-sign-in.md): one message carries a link to your app's
 * page (APP_URL#mail-sign-in=<token>) and an 8-digit code. start() asks for it (the same answer for
 * every address); on the link's page, read the token with mailSignInToken() and call withLink() only
 * when the person clicks (never on load: mail scanners open links and run scripts too); on any
 * device, withCode() takes the address and the code. Both resolve like login(): signed in, or the
 * second step (TOTP on) for loginMfa().
 */

type Send = <T>(method: string, path: string, body?: unknown) => Promise<T>;
type SignIn = <T extends object>(path: string, input: object) => Promise<T>;

export function mailCalls<R>(send: Send, signIn: SignIn, firstStep: (res: SignedInBody | MfaChallengeBody) => R) {
  return {
    mailSignIn: {
      /** Mails a link and a code to `email` if it can sign in or sign up here; the same answer either way. */
      start: (email: string) => send<Message>("POST", "/login/email", { email }),
      /** The link's token (from mailSignInToken()): single use. A used, replaced or expired one: AuthError invalid_link. */
      withLink: async (token: string) =>
        firstStep(await signIn<SignedInBody | MfaChallengeBody>("/login/email/link", { token } satisfies MailSignInLinkRequest)),
      /** The address and the code of its newest mail. Wrong, expired or replaced: AuthError invalid_mail_code (a few tries per mail). */
      withCode: async (email: string, code: string) =>
        firstStep(await signIn<SignedInBody | MfaChallengeBody>("/login/email/code", { email, code } satisfies MailSignInCodeRequest)),
    },
  };
}

/** The token of a mail sign-in link in `url` (its fragment `#mail-sign-in=<token>`), or null. */
export function mailSignInToken(url: string): string | null {
  return /[#&]mail-sign-in=([A-Za-z0-9_-]{43})(?:&|$)/.exec(url)?.[1] ?? null;
}
