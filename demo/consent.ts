import { type AuthClient, AuthError, type AuthorizationRequest } from "../client";

/**
 * The consent page: another app sent the browser to the API's /oauth2/authorize, which sent it here
 * with `#authorize=<request id>`. The person signs in (any way in), sees who is asking and for what,
 * and approves or denies; the browser then goes to the `redirect_to` the API answers (the app's
 * redirect_uri with a code or an error). The request id is kept in this tab's sessionStorage, so a
 * sign-in that leaves the page (a social provider) comes back to it.
 */

const KEY = "edge-auth-demo:authorize";
const $ = <T extends HTMLElement = HTMLElement>(selector: string) => document.querySelector<T>(selector)!;

const pending = () => sessionStorage.getItem(KEY);
/** The app asked prompt=none: nobody signed in here means login_required at once, never a sign-in form. */
const silentAsked = () => sessionStorage.getItem(`${KEY}:none`) === "1";
let leaving = false;
/** The browser leaves for the app: the request is over here. */
function go(url: string) {
  leaving = true;
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(`${KEY}:none`);
  location.assign(url);
}

export function createConsent(client: AuthClient, showError: (err: unknown) => unknown) {
  let shown: AuthorizationRequest | undefined;

  /** Sign in again (prompt=login, max_age): this session ends, and the sign-in forms come back with the request still pending. */
  async function reauthenticate() {
    $("#consent-signin-text").textContent = `${shown?.client.name ?? "The app"} asks you to sign in again before it connects.`;
    await client.logout();
  }

  $("#consent-approve").addEventListener("click", async () => {
    const id = pending();
    if (!id) return;
    try {
      go((await client.approve(id)).redirect_to);
    } catch (err) {
      if (err instanceof AuthError && err.code === "reauthentication_required") return reauthenticate();
      showError(err);
    }
  });
  // Signed in or not: signed out, the request id alone denies (the app hears login_required if it asked prompt=none).
  for (const button of ["#consent-deny", "#consent-cancel"]) {
    $(button).addEventListener("click", async () => {
      const id = pending();
      if (id) await client.deny(id).then((r) => go(r.redirect_to), showError);
    });
  }

  function describe(req: AuthorizationRequest) {
    $("#consent-client").textContent = req.client.name;
    const site = $<HTMLAnchorElement>("#consent-site");
    $("#consent-site-line").hidden = !req.client.uri;
    Object.assign(site, { href: req.client.uri ?? "", textContent: req.client.uri ?? "" });
    $("#consent-redirect").textContent = req.redirect_origin;
    $("#consent-scopes").replaceChildren(
      ...req.scopes.map((s) => {
        const item = Object.assign(document.createElement("li"), { textContent: s.description });
        item.dataset.testid = "consent-scope";
        item.title = s.name;
        return item;
      }),
    );
    $("#consent-resource").textContent = req.resource ?? "this service's sign-in only (your profile)";
    // For how long (ASVS 10.7.2): the API's words, from its token lifetimes; disconnecting ends it sooner.
    $("#consent-lifetime").textContent = `${req.lifetime.description} You can disconnect it any time under Connected apps.`;
    $("#consent-relogin").hidden = !req.login_required;
    // Not registered by this service: its name and site are its own words (ASVS 10.4.7).
    $("#consent-unverified").hidden = req.client.verified;
  }

  return {
    /** Keeps a request id from the page's fragment (`#authorize=<id>`) for this tab. */
    take(id: string, promptNone = false) {
      sessionStorage.setItem(KEY, id);
      if (promptNone) sessionStorage.setItem(`${KEY}:none`, "1");
      else sessionStorage.removeItem(`${KEY}:none`);
    },
    /**
     * Shows the consent page when a request is pending: true when it is on screen (the caller hides
     * its own pages). Signed out: false, with a line above the sign-in forms saying who waits.
     */
    async render(signedIn: boolean): Promise<boolean> {
      if (leaving) return true; // on the way to the app: nothing more to show
      const id = pending();
      $("#consent-signin").hidden = !id || signedIn;
      // Hidden only once it is decided, so that a second render in flight does not make it flicker.
      const hide = () => {
        $("#consent").hidden = true;
        return false;
      };
      if (id && !signedIn && silentAsked()) {
        await client.deny(id).then((r) => go(r.redirect_to), showError);
        return true;
      }
      if (!id || !signedIn) return hide();
      let req: AuthorizationRequest;
      try {
        req = await client.authorizationRequest(id);
      } catch (err) {
        // Expired, decided, or held by another session: nothing to ask any more.
        sessionStorage.removeItem(KEY);
        showError(
          err instanceof AuthError && err.code === "not_found"
            ? new AuthError("not_found", "This app's request has expired or was answered already: start again from the app", 404)
            : err,
        );
        return hide();
      }
      shown = req;
      // prompt=none: no page at all, the API answers (a remembered consent: a code; else consent_required).
      // A remembered consent that the app did not ask to renew: yes at once.
      const silent = req.prompt?.split(" ").includes("none") || (req.consent_remembered && !req.login_required);
      if (silent) {
        hide();
        try {
          go((await client.approve(id)).redirect_to);
        } catch (err) {
          if (err instanceof AuthError && err.code === "reauthentication_required") await reauthenticate();
          else showError(err);
          return false;
        }
        return true;
      }
      describe(req);
      $("#consent").hidden = false;
      return true;
    },
  };
}
