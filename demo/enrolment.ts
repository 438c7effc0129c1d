import type { AuthClient } from "../client";

/**
 * REQUIRE_MFA: while the session's token says it may only enrol a second factor
 * (client.enrolmentRequired()), the page shows the profile (with Log out) and the authenticator-app
 * and passkey forms only; every other call would answer 403 mfa_enrolment_required. style.css hides
 * the rest under #signed-in.enrolment-only. Once TOTP is on or a passkey added, the client refreshes
 * and the whole page comes back.
 */
export function showEnrolment(client: AuthClient): boolean {
  const on = client.state.signedIn && client.enrolmentRequired();
  document.querySelector("#signed-in")!.classList.toggle("enrolment-only", on);
  document.querySelector<HTMLElement>("#enrolment")!.hidden = !on;
  return on;
}
