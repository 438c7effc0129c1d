import { AuthError, createAuthClient, type AuthClient } from "../client";

/**
 * The demo SPA: every screen goes through the typed client in cookie mode (the refresh token is an
 * HttpOnly cookie; the access token lives only in this page's memory).
 */

const api = (import.meta as { env?: Record<string, string> }).env?.VITE_API_URL ?? "http://localhost:8787";
const client: AuthClient = createAuthClient({ baseUrl: api });

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
  form?.querySelectorAll<HTMLElement>("[data-field]").forEach((el) => (el.textContent = ""));
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
    } catch (err) {
      const e = showError(err);
      for (const [field, message] of Object.entries(e.fields ?? {})) {
        const slot = form.querySelector(`[data-field="${field}"]`);
        if (slot) slot.textContent = message;
      }
    }
  });
}

async function render() {
  const { signedIn } = client.state;
  $("#signed-out").hidden = signedIn;
  $("#signed-in").hidden = !signedIn;
  status.textContent = signedIn ? `Signed in as ${client.state.signedIn && client.state.username}` : "Signed out";
  if (!signedIn) return;
  try {
    const [user, { sessions }] = await Promise.all([client.me(), client.sessions()]);
    $("#profile").innerHTML = "";
    for (const [k, v] of Object.entries({ username: user.username, email: user.email ?? "-", roles: user.roles.join(", "), id: user.id, since: new Date(user.created_at).toLocaleString() })) {
      const dd = Object.assign(document.createElement("dd"), { textContent: v });
      dd.dataset.testid = `profile-${k}`;
      $("#profile").append(Object.assign(document.createElement("dt"), { textContent: k }), dd);
    }
    const list = $("#sessions");
    list.innerHTML = "";
    for (const s of sessions) {
      const item = document.createElement("li");
      item.dataset.testid = "session";
      item.textContent = `${s.current ? "This browser" : (s.user_agent ?? "unknown client").slice(0, 40)}, last used ${new Date(s.last_used_at).toLocaleTimeString()} `;
      if (!s.current) {
        const revoke = Object.assign(document.createElement("button"), { textContent: "Revoke" });
        revoke.addEventListener("click", () => client.revokeSession(s.id).then(render, showError));
        item.append(revoke);
      }
      list.append(item);
    }
  } catch (err) {
    showError(err);
  }
}

onSubmit("register", (f) => client.register({ username: f.username!, email: f.email, password: f.password! }));
onSubmit("login", (f) => client.login({ username: f.username!, password: f.password! }));
onSubmit("password", async (f) => {
  const { sessions_revoked } = await client.changePassword({ current_password: f.current_password!, new_password: f.new_password! });
  await render();
  notice(`Password changed; ${sessions_revoked} other session(s) signed out`);
});
onSubmit("forgot", async (f) => {
  await client.forgotPassword(f.email!);
  notice("If that address has an account, a reset link is on its way (under npm run dev: printed by wrangler)");
});
onSubmit("delete", async (f) => {
  await client.deleteAccount(f.current_password!);
  notice("Your account is deleted");
});

// A mailed link opens this page with its token in the URL fragment (never sent to any server).
let resetToken = "";
onSubmit("reset", async (f) => {
  await client.resetPassword(resetToken, f.new_password!);
  $("#reset").hidden = true;
  notice("Your password is reset: sign in with the new one");
});
async function followLink() {
  const [action, token] = location.hash.slice(1).split("=");
  if (!token) return;
  history.replaceState(null, "", location.pathname);
  if (action === "verify-email") await client.verifyEmail(token).then(() => notice("Your email address is verified"), showError);
  if (action === "confirm-email") await client.confirmEmail(token).then(() => notice("Your email address is changed"), showError);
  if (action === "reset-password") {
    resetToken = token;
    $("#reset").hidden = false;
  }
}
window.addEventListener("hashchange", () => void followLink());

$("#reload").addEventListener("click", () => void render());
$("#logout").addEventListener("click", () => client.logout().catch(showError));
$("#logout-all").addEventListener("click", () => client.logoutEverywhere().catch(showError));

client.onChange(() => {
  clearErrors();
  void render();
});
// A reload signs in silently from the refresh cookie when there is one.
void followLink();
client.resume().then(render, (err) => {
  showError(err);
  void render();
});
