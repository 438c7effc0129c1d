import { AuthError, type PasswordWarning, passwordProblem } from "../client";

/**
 * The password policy's feedback (docs/passwords.md): a refused new password gets a sentence under
 * its field (too common, contains your name or address or this service's name, breached); a password
 * accepted with a warning (PWNED_PASSWORDS "warn") gets a warning line that stays until the next form is sent.
 */

let warningLine: HTMLElement | undefined;

/** The client's onPasswordWarning: a warning line under the notices. */
export function showPasswordWarning(warning: PasswordWarning) {
  if (!warningLine) {
    warningLine = Object.assign(document.createElement("p"), { className: "warning", role: "status" });
    warningLine.dataset.testid = "password-warning";
    document.querySelector("#notice")?.after(warningLine);
    // Gone with the next form sent: it was about the password just set.
    document.addEventListener(
      "submit",
      () => {
        if (warningLine) warningLine.hidden = true;
      },
      true,
    );
  }
  warningLine.textContent = `Your new password was accepted, but: ${passwordProblem(warning) ?? warning}`;
  warningLine.hidden = false;
}

/** A refused new password: the policy's sentence under the form's password field. True when it was one. */
export function showPasswordProblem(form: HTMLFormElement, err: unknown): boolean {
  const problem = err instanceof AuthError ? passwordProblem(err.code) : undefined;
  if (!problem) return false;
  const slot = form.querySelector('[data-field="new_password"]') ?? form.querySelector('[data-field="password"]');
  if (slot) slot.textContent = problem;
  return true;
}
