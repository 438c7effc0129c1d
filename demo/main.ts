import { startAuthentication, startRegistration } from "@simplewebauthn/browser";
import { type AuthClient, AuthError, createAuthClient, deviceName, type FreshCheck, type Security, type WayIn } from "../client";
import { renderAdmin } from "./admin";
import { renderApps } from "./apps";
import { createConsent } from "./consent";
import { showEnrolment } from "./enrolment";
import { createGuests } from "./guests";
import { createInvitation } from "./invitation";
import { createKeys } from "./keys";
import { createMail } from "./mail";
import { createOrgs, type Ui } from "./orgs";
import { showPasswordProblem, showPasswordWarning } from "./passwords";
import { startTurnstile, turnstileToken } from "./turnstile";

/**
 * The demo SPA: every screen goes through the typed client in cookie mode (the refresh token is an
 * HttpOnly cookie; the access token lives only in this page's memory).
 */

const api = (import.meta as { env?: Record<string, string> }).env?.VITE_API_URL ?? "http://localhost:8787";
const client: AuthClient = createAuthClient({ baseUrl: api, turnstileToken, onPasswordWarning: showPasswordWarning });

const $ = <T extends HTMLElement = HTMLElement>(selector: string) => document.querySelector<T>(selector)!;
const status = $("#status");
const errorBox = $("#error");

function showError(err: unknown) {
  const e = err instanceof AuthError ? err : new AuthError("bad_response", String(err), 0);
  const wait = e.retryAfter ? ` Try again in ${e.retryAfter} s.` : "";
  errorBox.textContent = `${e.message}.${wait}`.replace("..", ".");
  errorBox.hidden = false;
  return e;
}

function notice(text: string) {
  Object.assign($("#notice"), { textContent: text, hidden: false });
}

function clearErrors(form?: HTMLFormElement) {
  errorBox.hidden = true;
  $("#notice").hidden = true;
  for (const slot of form?.querySelectorAll<HTMLElement>("[data-field]") ?? []) slot.textContent = "";
  $("#security-password-error").textContent = "";
}

/** The Security card asks for the password once, in one field its forms share. */
const securityPassword = () => $<HTMLInputElement>("#security-password").value;

// What each change asks of this account now: GET /me/security's step_up table (the password, a code
// while TOTP is on, or, for an account without a password, a recent sign-in and no field at all).
type Action = keyof Security["step_up"];
let stepUp: Security["step_up"] | undefined;
const asks = (action: Action, proof: Security["step_up"][Action][number]) => stepUp?.[action].includes(proof) ?? proof === "password";
/** The step-up to send for `action`: the password only where it is asked, the code where one was typed. */
const check = (action: Action, code?: string, password = securityPassword()) =>
  ({ ...(asks(action, "password") ? { current_password: password } : {}), ...(code ? proofOf(code) : {}) }) as FreshCheck;
/** Shows or hides a field, and takes it out of its form (a disabled input is neither sent nor required). */
function field(id: string, on: boolean) {
  $(`#${id}`).hidden = !on;
  for (const input of $(`#${id}`).querySelectorAll("input")) input.disabled = !on;
}

/** How a way in came to the account, from the session that added it (null: no session did, GET /me/security). */
function addedHow(w: WayIn, createdAt: string) {
  if (w.by_this_session) return " by this browser";
  if (w.added_by_session) return " by another session";
  if (!w.added_at) return "";
  // No session added it: it came with the account (sign-up), or by a mailed link, or (an identity)
  // it created the account at its first sign-in.
  const withAccount = Math.abs(Date.parse(w.added_at) - Date.parse(createdAt)) < 60_000;
  if (w.kind === "identity") return withAccount ? ", which created this account" : " at a sign-in with it";
  if (withAccount) return " at sign-up";
  return w.kind === "password" ? " by a reset link" : " by a mailed link";
}

/** Runs a form's action with its fields; field errors go under their inputs, the rest above. */
function onSubmit(id: string, action: (fields: Record<string, string>) => Promise<unknown>) {
  const form = $<HTMLFormElement>(`#${id}`);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const fields = Object.fromEntries([...new FormData(form)].map(([k, v]) => [k, String(v)]).filter(([, v]) => v !== ""));
    try {
      await action(fields);
      form.reset();
      // The Security card's shared password goes once it has served (it stays while a change fails).
      if (form.closest("#security")) $<HTMLInputElement>("#security-password").value = "";
    } catch (err) {
      const e = showError(err);
      showPasswordProblem(form, e);
      for (const [field, message] of Object.entries(e.fields ?? {})) {
        // A field the form shares with its card (the Security card's password) has its slot there.
        const slot = form.querySelector(`[data-field="${field}"]`) ?? form.closest("section")?.querySelector(`:scope > [data-field="${field}"]`);
        if (slot) slot.textContent = message;
      }
    }
  });
}

/** Runs a button's action; its failure shows above. */
function onClick(id: string, action: () => Promise<unknown>) {
  $(`#${id}`).addEventListener("click", () => {
    clearErrors();
    action().catch(showError);
  });
}

/** Fills a <dl>: each value gets data-testid="<prefix>-<key>"; the term is its label, or the key. */
function describe(list: HTMLElement, prefix: string, entries: Record<string, string>, labels: Record<string, string> = {}) {
  list.innerHTML = "";
  for (const [k, v] of Object.entries(entries)) {
    const dd = Object.assign(document.createElement("dd"), { textContent: v });
    dd.dataset.testid = `${prefix}-${k}`;
    list.append(Object.assign(document.createElement("dt"), { textContent: labels[k] ?? k }), dd);
  }
}

// A login's second step: the challenge from the password step, shown instead of the login form.
let challenge: string | undefined;
function showMfa(next: string | undefined, recovery = false) {
  challenge = next;
  $("#mfa").hidden = !next;
  $("#login").hidden = !!next;
  // A disabled input is left out of the form's fields, and not required.
  $("#mfa-code").hidden = recovery;
  $("#mfa-recovery").hidden = !recovery;
  $<HTMLInputElement>("#mfa [name=code]").disabled = recovery;
  $<HTMLInputElement>("#mfa [name=recovery_code]").disabled = !recovery;
  $("#mfa-switch").textContent = recovery ? "Use a code from the app" : "Use a recovery code";
  if (next) $<HTMLInputElement>(recovery ? "#mfa [name=recovery_code]" : "#mfa [name=code]").focus();
}

/** Secrets on screen (a pending TOTP key, the recovery codes) go away when the user signs out. */
function hideSecrets() {
  for (const id of ["totp-enable", "recovery-codes"]) $(`#${id}`).hidden = true;
  for (const id of ["totp-secret", "totp-uri", "recovery-list"]) $(`#${id}`).textContent = "";
  $("#totp-uri").removeAttribute("href");
  $<HTMLInputElement>("#security-password").value = "";
}

// Another app's authorization request (#authorize=<id>): the consent page, in place of the profile.
const consent = createConsent(client, showError);
// Organizations, members and invitations, an invitation's link, API keys: pages of their own, on these helpers.
const ui: Ui = {
  onSubmit,
  onClick,
  showError,
  notice,
  check,
  render: () => render(),
};
const orgs = createOrgs(client, ui);
const invitation = createInvitation(client, ui);
const apiKeys = createKeys(client, ui);
const guests = createGuests(client, ui);
const mail = createMail(client, ui, (next) => showMfa(next));

async function render() {
  const { signedIn } = client.state;
  status.textContent = signedIn ? `Signed in as ${(client.state.signedIn && client.state.username) || "you"}` : "Signed out";
  // An app's request waiting for this person's answer takes the place of the profile.
  invitation.render(signedIn);
  mail.render(signedIn);
  const consenting = await consent.render(signedIn);
  if (client.state.signedIn !== signedIn) return; // signed in or out meanwhile: that change's render draws
  $("#signed-out").hidden = signedIn;
  $("#signed-in").hidden = !signedIn || consenting;
  if (consenting) return;
  if (signedIn) showMfa(undefined);
  else {
    apiKeys.hideSecret();
    return hideSecrets();
  }
  if (showEnrolment(client)) return renderEnrolment();
  try {
    const [{ user, factors }, { sessions }, passkeys, security, apps] = await Promise.all([
      client.me(),
      client.sessions(),
      client.listPasskeys(),
      client.security(),
      client.connectedApps(),
      client.isGuest() ? null : orgs.render().then(apiKeys.render), // drawn meanwhile (a guest has none): the page changes all at once, as before they were
    ]);
    mail.render(true, user.username);
    describe($("#profile"), "profile", {
      username: user.username ?? "-",
      email: user.email ? `${user.email} (${user.email_verified ? "verified" : "not verified"})` : "-",
      roles: user.roles.join(", "),
      id: user.id,
      since: new Date(user.created_at).toLocaleString(),
    });
    describe(
      $("#factors"),
      "factor",
      { totp: factors.totp ? "on" : "off", "recovery-codes": String(factors.recovery_codes_left), passkeys: String(factors.passkeys) },
      { totp: "authenticator app", "recovery-codes": "recovery codes left" },
    );
    $("#totp-setup").hidden = factors.totp || !$("#totp-enable").hidden;
    $("#totp-disable").hidden = !factors.totp;
    // Each form asks for what its action needs of this account (the server's table, security.step_up).
    stepUp = security.step_up;
    const codes: [string, Action][] = [
      ["passkey-code", "add_passkey"],
      ["password-code", "change_password"],
      ["delete-code", "delete_account"],
      ["passkey-remove-code", "remove_passkey"],
    ];
    for (const [id, action] of codes) field(id, asks(action, "second_factor"));
    const cardActions: Action[] = ["setup_totp", "disable_totp", "add_passkey", "remove_passkey", "add_identity", "remove_identity"];
    field(
      "security-password-label",
      cardActions.some((a) => asks(a, "password")),
    );
    field("delete-password", asks("delete_account", "password"));
    field("key-create-password", asks("create_api_key", "password"));
    field("key-create-code", asks("create_api_key", "second_factor"));
    field("org-owner-password", asks("manage_organization", "password"));
    field("org-owner-code", asks("manage_organization", "second_factor"));
    const hasPassword = security.ways_in.some((w) => w.kind === "password");
    $("#security-intro").textContent = hasPassword
      ? "Every change here asks for your password again (and a code while the authenticator app is on)."
      : `This account has no password: a change here takes a sign-in in the last few minutes instead (sign in again when asked)${factors.totp ? ", and a code from the authenticator app" : ""}.`;
    // No password (a social sign-up): nothing to change; a reset link mailed to the address sets one.
    $("#password").hidden = !hasPassword;
    $("#set-password").hidden = hasPassword;
    $("#set-password-text").textContent = user.email
      ? `This account has no password: you sign in with your provider. To have one too, follow a link mailed to ${user.email}.`
      : "This account has no password and no address to mail a link to: you sign in with your provider.";
    $("#set-password-mail").hidden = !user.email;
    const ways = $("#ways-in");
    ways.innerHTML = "";
    for (const w of security.ways_in) {
      const item = document.createElement("li");
      item.dataset.testid = "way-in";
      const what = {
        password: "Password",
        email: `Email ${w.address} (${w.verified ? "verified" : "not verified"})`,
        totp: "Authenticator app",
        passkey: `Passkey "${w.name}"`,
        identity: `Sign-in with ${providerNames.get(w.provider ?? "") ?? w.provider}${w.address ? ` (${w.address})` : ""}`,
      }[w.kind];
      const when = w.added_at ? `, added ${new Date(w.added_at).toLocaleString()}` : "";
      item.textContent = `${what}${when}${addedHow(w, user.created_at)}`;
      if (w.kind === "identity" && w.id) {
        // Unlinking is a step-up too: the Security password above (and a code while TOTP is on).
        const id = w.id;
        const unlink = Object.assign(document.createElement("button"), { textContent: "Unlink" });
        item.append(" ");
        unlink.addEventListener("click", () => client.unlinkIdentity(id, check("remove_identity")).then(render, showError));
        item.append(unlink);
      }
      ways.append(item);
    }
    const keys = $("#passkeys");
    keys.innerHTML = passkeys.length ? "" : "<li>None yet</li>";
    for (const p of passkeys) {
      const item = document.createElement("li");
      item.dataset.testid = "passkey";
      item.textContent = `${p.name}, added ${new Date(p.created_at).toLocaleString()}${p.last_used_at ? `, last used ${new Date(p.last_used_at).toLocaleTimeString()}` : ""} `;
      const remove = Object.assign(document.createElement("button"), { textContent: "Remove" });
      // Removing a way in is a step-up: the password (and a code while TOTP is on), in a form below.
      remove.addEventListener("click", () => {
        $<HTMLInputElement>("#passkey-remove [name=id]").value = p.id;
        $("#passkey-remove-name").textContent = p.name;
        $("#passkey-remove").hidden = false;
      });
      item.append(remove);
      keys.append(item);
    }
    const list = $("#sessions");
    list.innerHTML = "";
    for (const s of sessions) {
      const item = document.createElement("li");
      item.dataset.testid = "session";
      item.textContent = `${s.current ? `This browser (${deviceName(s.user_agent)})` : deviceName(s.user_agent)}, last used ${new Date(s.last_used_at).toLocaleTimeString()} `;
      item.title = s.user_agent ?? ""; // the raw string, for the curious
      if (!s.current) {
        const revoke = Object.assign(document.createElement("button"), { textContent: "Revoke" });
        revoke.addEventListener("click", () => client.revokeSession(s.id, check("end_sessions")).then(render, showError));
        item.append(revoke);
      }
      list.append(item);
    }
    renderApps(client, $("#apps"), apps, render, showError);
    guests.render(user.id);
    await renderAdmin(client, $("#admin"), user.roles);
  } catch (err) {
    showError(err);
  }
}

/** REQUIRE_MFA: an enrolment-only session (demo/enrolment.ts) draws the profile and the second-factor forms, nothing else. */
async function renderEnrolment() {
  try {
    const [{ user, factors }, security] = await Promise.all([client.me(), client.security()]);
    describe($("#profile"), "profile", { username: user.username ?? "-", email: user.email ?? "-", roles: user.roles.join(", "), id: user.id });
    stepUp = security.step_up;
    $("#totp-setup").hidden = factors.totp || !$("#totp-enable").hidden;
    field("security-password-label", asks("setup_totp", "password") || asks("add_passkey", "password"));
    field("passkey-code", false);
  } catch (err) {
    showError(err);
  }
}

onSubmit("register", (f) => client.register({ username: f.username, email: f.email, password: f.password! }));
onSubmit("login", async (f) => {
  const res = await client.login({ username: f.username!, password: f.password! });
  if (!res.signedIn) showMfa(res.challenge);
});
onSubmit("mfa", async (f) => {
  try {
    await client.loginMfa(f.recovery_code ? { challenge: challenge!, recovery_code: f.recovery_code } : { challenge: challenge!, code: f.code! });
  } catch (err) {
    // Used, expired, or too many wrong codes: back to the password.
    if (err instanceof AuthError && err.code === "invalid_challenge") showMfa(undefined);
    throw err;
  }
});
$("#mfa-switch").addEventListener("click", () => showMfa(challenge, $("#mfa-recovery").hidden === true));
$("#mfa-cancel").addEventListener("click", () => {
  clearErrors();
  showMfa(undefined);
});
onClick("passkey-login", async () => {
  const options = await client.passkeyLoginOptions();
  await client.passkeyLogin(await startAuthentication({ optionsJSON: options }));
});

onSubmit("totp-setup", async () => {
  const { secret, otpauth_uri } = await client.totpSetup(asks("setup_totp", "password") ? securityPassword() : undefined);
  $("#totp-secret").textContent = secret;
  Object.assign($<HTMLAnchorElement>("#totp-uri"), { href: otpauth_uri, textContent: otpauth_uri });
  $("#totp-enable").hidden = false;
  $("#totp-setup").hidden = true;
});
onSubmit("totp-enable", async (f) => {
  const { recovery_codes } = await client.totpEnable(f.code!);
  hideSecrets();
  for (const code of recovery_codes) {
    const item = Object.assign(document.createElement("li"), { textContent: code });
    item.dataset.testid = "recovery-code";
    $("#recovery-list").append(item);
  }
  $("#recovery-codes").hidden = false;
  await render();
});
$("#recovery-done").addEventListener("click", hideSecrets);
/** A 6-digit code from the app, or else a recovery code. */
const proofOf = (code: string) => (/^\d{6}$/.test(code) ? { code } : { recovery_code: code });
onSubmit("totp-disable", async (f) => {
  const { current_password } = check("disable_totp");
  await client.totpDisable({ current_password, ...proofOf(f.code!) });
  hideSecrets();
  await render();
  notice("Two-step sign-in is off");
});
onSubmit("passkey-add", async (f) => {
  const options = await client.passkeyRegistrationOptions(check("add_passkey", f.code));
  await client.passkeyRegister(await startRegistration({ optionsJSON: options }), f.name);
  await render();
  notice("Passkey added");
});
onSubmit("passkey-remove", async (f) => {
  await client.deletePasskey(f.id!, check("remove_passkey", f.code));
  $("#passkey-remove").hidden = true;
  await render();
  notice("Passkey removed");
});
onSubmit("password", async (f) => {
  const { message } = await client.changePassword({
    current_password: f.current_password!,
    new_password: f.new_password!,
    ...(f.code ? proofOf(f.code) : {}),
  });
  await render();
  notice(message);
});
onSubmit("forgot", async (f) => {
  await client.forgotPassword(f.email!);
  notice("If that address has an account, a reset link is on its way (under npm run dev: printed by wrangler)");
});
onSubmit("delete", async (f) => {
  await client.deleteAccount(check("delete_account", f.code, f.current_password));
  notice("Your account is deleted");
});

// A mailed link opens this page with its token in the URL fragment (never sent to any server).
// A link that proves an address takes the account's session or password too.
type AddressLink = { action: "verify-email" | "confirm-email"; token: string };
let proving: AddressLink | undefined;
async function proveAddress(link: AddressLink, password?: string) {
  if (link.action === "verify-email") await client.verifyEmail(link.token, password);
  else await client.confirmEmail(link.token, password);
  notice(link.action === "verify-email" ? "Your email address is verified" : "Your email address is changed");
  if (client.state.signedIn) await render(); // the profile shows the address as it is now
}
onSubmit("prove", async (f) => {
  if (proving) await proveAddress(proving, f.password);
  proving = undefined;
  $("#prove").hidden = true;
});
let resetToken = "";
onSubmit("reset", async (f) => {
  try {
    const done = await client.resetPassword(resetToken, f.new_password!, f.code ? proofOf(f.code) : {});
    $("#reset").hidden = true;
    $("#reset-code").hidden = true;
    const removed = done.passkeys_removed ? ` ${done.passkeys_removed} passkey(s) were removed.` : "";
    // Held (TOTP set up before the address was confirmed): the server's message says until when.
    notice(done.takes_effect_at ? done.message : `Your password is reset and every session is signed out: sign in with the new one.${removed}`);
  } catch (err) {
    // TOTP was turned on after this address was confirmed: the reset takes a code too.
    if (err instanceof AuthError && err.code === "invalid_mfa_code") $("#reset-code").hidden = false;
    throw err;
  }
});
// Social sign-in: a button per configured provider; back from the provider, the client reads the
// fragment (a sign-in, the second step's challenge, or a finished link).
const providerNames = new Map<string, string>();
const here = () => location.origin + location.pathname;
async function showProviders() {
  const providers = await client.providers();
  for (const [box, verb] of [
    ["#social", "Sign in with"],
    ["#link-providers", "Link"],
  ] as const) {
    $(box).innerHTML = "";
    for (const p of providers) {
      providerNames.set(p.id, p.name);
      const button = Object.assign(document.createElement("button"), { type: "button", textContent: `${verb} ${p.name}` });
      button.dataset.testid = `${box === "#social" ? "sign-in-with" : "link"}-${p.id}`;
      button.addEventListener("click", () =>
        box === "#social"
          ? client.signInWith(p.id, { returnTo: here() }).catch(showError)
          : client.linkIdentity(p.id, check("add_identity"), { returnTo: here() }).catch(showError),
      );
      $(box).append(button);
    }
  }
}
async function completeSocial() {
  try {
    const done = await client.completeSignIn();
    if (done && "linked" in done) notice(`Sign-in with ${providerNames.get(done.linked.provider) ?? done.linked.provider} is linked to your account`);
    else if (done && "mfaRequired" in done) showMfa(done.challenge);
  } catch (err) {
    showError(err);
  }
}

async function followLink() {
  if (/[#&]oauth(_error)?=/.test(location.hash)) return; // completeSocial's
  const hash = location.hash.slice(1);
  const [action, token] = hash.split("=");
  if (!token) return;
  history.replaceState(null, "", location.pathname);
  if (action === "authorize") {
    // #authorize=<id>, and &prompt=none when the app asked to hear back at once, signed in or not.
    const fragment = new URLSearchParams(hash);
    consent.take(fragment.get("authorize")!, fragment.get("prompt") === "none");
    // Opened on a page already loaded: show it now (at start-up, the first render does).
    if (started) await resumed.then(render, showError);
    return;
  }
  if (action === "verify-email" || action === "confirm-email") {
    // Signed in on this page, the session proves the account; otherwise its password does (the form).
    await resumed.catch(() => undefined);
    try {
      await proveAddress({ action, token });
    } catch (err) {
      if (!(err instanceof AuthError && err.code === "account_proof_required")) return void showError(err);
      proving = { action, token };
      $("#prove").hidden = false;
    }
  }
  // "This was not me", from a notice: the way in is removed and every session ends (this one too).
  if (action === "revoke-way-in") {
    await client.revokeWayIn(token).then(async (r) => {
      await client.resume();
      notice(r.message);
    }, showError);
  }
  // An invitation's link: kept for this tab until the person, signed in, accepts or dismisses it.
  if (action === "accept-invitation") {
    invitation.take(token);
    invitation.render(client.state.signedIn);
  }
  // A mail sign-in's link: kept for this tab; only the person's click on "Continue" uses it (never on load).
  if (action === "mail-sign-in") {
    mail.take(token);
    mail.render(client.state.signedIn);
  }
  if (action === "reset-password") {
    resetToken = token;
    $("#reset").hidden = false;
  }
}
window.addEventListener("hashchange", () => void followLink());

$("#reload").addEventListener("click", () => void render());
onClick("set-password-mail", async () => {
  const { user } = await client.me();
  await client.forgotPassword(user.email!);
  notice(`A link to set a password is on its way to ${user.email} (under npm run dev: printed by wrangler)`);
});
$("#logout").addEventListener("click", () => client.logout().catch(showError));
// Ending other sessions takes the step-up end_sessions: the Security card's password field.
$("#logout-all").addEventListener("click", () => client.logoutEverywhere(check("end_sessions")).catch(showError));

client.onChange(() => {
  clearErrors();
  void render();
});
// A reload signs in silently from the refresh cookie when there is one.
const resumed = client.resume();
let started = false;
void followLink().finally(() => (started = true));
void showProviders().catch(showError);
void startTurnstile(client).catch(showError);
resumed.then(completeSocial).then(render, (err) => {
  showError(err);
  void render();
});
