import type { AuthClient, ConnectedApp } from "../client";

/** "Connected apps": the apps this account let in (GET /account/apps, fetched with the rest of the page), each with a Disconnect button that ends its grants. */

const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : "never");

export function renderApps(client: AuthClient, list: HTMLElement, apps: ConnectedApp[], onChange: () => unknown, showError: (err: unknown) => unknown) {
  list.replaceChildren();
  if (!apps.length) list.append(Object.assign(document.createElement("li"), { textContent: "None" }));
  for (const app of apps) {
    const item = document.createElement("li");
    item.dataset.testid = "connected-app";
    item.dataset.clientId = app.client_id;
    const name = Object.assign(document.createElement("strong"), { textContent: app.name });
    const site = app.uri ? ` (${app.uri})` : "";
    const to = app.resources.length ? `, for ${app.resources.join(", ")}` : "";
    item.append(name, `${site}: ${app.scopes.join(" ")}${to}. Connected ${when(app.connected_at)}, last used ${when(app.last_used_at)}. `);
    const disconnect = Object.assign(document.createElement("button"), { type: "button", textContent: "Disconnect" });
    disconnect.addEventListener("click", () => client.disconnectApp(app.client_id).then(onChange, showError));
    item.append(disconnect);
    list.append(item);
  }
}
