import type { AuthClient, LoginResult } from "../client";
import { $, type Ui } from "./orgs";

/**
 * Sign-in by mail (docs/mail-sign-in.md): a form that asks for the mail, a form for its code (on any
 * device), and the page its link opens, `APP_URL#mail-sign-in=<token>`. That page never signs in by
 * itself: mail scanners open links and run their scripts too, so it waits for the person's click on
 * "Continue signing in" and only then posts the token. The token is kept in this tab's sessionStorage
 * (the fragment leaves the address bar at once) until it is used or dismissed. Also: choosing a
 * username later (PATCH /me), for an account that signed up without one.
 */

const KEY = "edge-auth-demo:mail-sign-in";

export function createMail(client: AuthClient, ui: Ui, secondStep: (challenge: string) => void) {
  const pending = () => sessionStorage.getItem(KEY);
  const forget = () => {
    sessionStorage.removeItem(KEY);
    $("#mail-link").hidden = true;
  };
  /** Signed in (the client's onChange redraws), or the second step while TOTP is on. */
  const done = (res: LoginResult) => {
    if (!res.signedIn && "mfaRequired" in res) secondStep(res.challenge);
  };
  let asked = "";

  ui.onSubmit("mail-start", async (f) => {
    asked = f.email!;
    await client.mailSignIn.start(asked);
    $<HTMLInputElement>("#mail-code [name=email]").value = asked;
    ui.notice(`If ${asked} can sign in or sign up here, a link and a code are on their way (under npm run dev: printed by wrangler)`);
  });
  ui.onSubmit("mail-code", async (f) => done(await client.mailSignIn.withCode(f.email!, f.code!)));
  ui.onClick("mail-continue", async () => {
    const token = pending();
    if (!token) return;
    forget(); // single use, whatever the answer
    done(await client.mailSignIn.withLink(token));
  });
  $("#mail-dismiss").addEventListener("click", forget);
  ui.onSubmit("username-set", async (f) => {
    const user = await client.setUsername(f.username!);
    ui.notice(`Your username is ${user.username}`);
    await ui.render();
  });

  return {
    take(token: string) {
      sessionStorage.setItem(KEY, token);
    },
    render(signedIn: boolean, username?: string | null) {
      $("#mail-link").hidden = !pending();
      $("#mail-link-text").textContent = signedIn
        ? "You opened a sign-in link while signed in here: continuing signs in as the account it was mailed for."
        : "You opened a sign-in link. Continue to sign in on this device (the link works once).";
      if (username !== undefined) $("#username-set").hidden = username !== null;
    },
  };
}
