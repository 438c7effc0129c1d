import type { AuthClient } from "../client";
import { $, type Ui } from "./orgs";

/**
 * Guests (docs/guests.md): "Try as guest" signs in as a new anonymous account (the API's GUESTS must be
 * "on"); while the token says guest, a badge shows the account id and an upgrade form gives the same
 * account an address and a password. After the upgrade the id shown is the same one. A guest is not
 * offered what the API refuses it (organizations, API keys, a password change, two-step sign-in).
 */

/** The signed-in page's parts a guest may not use (src/middleware/members-only.ts refuses them). */
const MEMBERS_ONLY = ["#orgs", "#members", "#keys", "#password", "#set-password", "#totp-setup", "#totp-disable"];

export function createGuests(client: AuthClient, ui: Ui) {
  ui.onClick("guest-start", async () => {
    await client.startGuest();
    ui.notice("You are trying this as a guest: upgrade to keep this account");
  });
  ui.onSubmit("guest-upgrade", async (f) => {
    const user = await client.upgradeGuest({ email: f.email!, password: f.password!, ...(f.username ? { username: f.username } : {}) });
    // The same account id: the token changed (no guest claim), the state's user did not, so draw again here.
    await ui.render();
    ui.notice(`You are a member now, with the same account (${user.id}). A link to confirm ${user.email} is on its way.`);
  });

  return {
    /** After the signed-in page is drawn: the badge and the upgrade form for a guest, and what a guest may not use hidden. */
    render(userId: string) {
      const guest = client.isGuest();
      $("#guest").hidden = !guest;
      $("#guest-id").textContent = guest ? userId : "";
      // The two sections nothing else hides come back for a member (the rest are drawn from the account).
      for (const selector of ["#orgs", "#keys"]) $(selector).hidden = guest;
      if (!guest) return;
      for (const selector of MEMBERS_ONLY) $(selector).hidden = true;
      $("#security-intro").textContent =
        "You are a guest: your session is all this account has. Add a passkey, link a provider, or upgrade with an address and a password to keep it.";
    },
  };
}
