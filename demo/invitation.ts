import { type AuthClient, AuthError } from "../client";
import { $, type Ui } from "./orgs";

/**
 * An invitation's mailed link, `APP_URL#accept-invitation=<token>`: the token is kept in this tab's
 * sessionStorage (the fragment leaves the address bar at once) until the person accepts or dismisses
 * it. Signed out, the card asks them to sign in or create an account first, any way in, with the
 * invited address; the invitation waits meanwhile (and through a verification link opened in this tab).
 */

const KEY = "edge-auth-demo:invitation";

export function createInvitation(client: AuthClient, ui: Ui) {
  const pending = () => sessionStorage.getItem(KEY);
  const forget = () => {
    sessionStorage.removeItem(KEY);
    $("#accept").hidden = true;
  };

  ui.onClick("accept-invitation", async () => {
    const token = pending();
    if (!token) return;
    try {
      const org = await client.acceptInvitation(token);
      forget();
      await ui.render();
      ui.notice(`You joined ${org.name} as ${org.role}: switch to it to act for it`);
    } catch (err) {
      // Another account, or the address not verified yet: the invitation stays for the right one.
      if (!(err instanceof AuthError && err.code === "invitation_wrong_account")) forget();
      throw err;
    }
  });
  $("#accept-dismiss").addEventListener("click", forget);

  return {
    take(token: string) {
      sessionStorage.setItem(KEY, token);
    },
    render(signedIn: boolean) {
      $("#accept").hidden = !pending();
      $("#accept-invitation").hidden = !signedIn;
      $("#accept-text").textContent = signedIn
        ? "You are invited to join an organization. Accept it with the account whose verified address the invitation was mailed to."
        : "You are invited to join an organization: sign in, or create an account with the address the invitation was mailed to, and accept it here.";
    },
  };
}
