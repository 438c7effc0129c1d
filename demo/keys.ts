import type { ApiKey, AuthClient, Organization } from "../client";
import { $, button, item, type Ui } from "./orgs";

/**
 * API keys (docs/api-keys.md): this account's own, and the active organization's where the token's
 * permissions include keys:read. A new key's secret is on screen once, with a copy button, and gone
 * with the next page load (the API keeps only its hash). A script exchanges it at /oauth2/token
 * (`exchangeApiKey` in the client) for a short-lived access token.
 */

const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : "never");

function describeKey(k: ApiKey, owner: string) {
  const scopes = k.scopes.length ? k.scopes.join(" ") : "no scopes";
  const expiry = k.expires_at ? `, expires ${when(k.expires_at)}` : "";
  return `${k.name} (${k.start}…, ${owner}): ${scopes}${expiry}; last used ${when(k.last_used_at)} `;
}

export function createKeys(client: AuthClient, ui: Ui) {
  function hideSecret() {
    $("#key-secret").hidden = true;
    $("#key-secret-value").textContent = "";
  }

  ui.onSubmit("key-create", async (f) => {
    const { key, secret } = await client.createApiKey({
      name: f.name!,
      scopes: (f.scopes ?? "").split(/[\s,]+/).filter(Boolean),
      ...(f.expires_in_days ? { expires_in_days: Number(f.expires_in_days) } : {}),
      ...(f.org_id ? { org_id: f.org_id } : {}),
      ...ui.check("create_api_key", f.code, f.current_password),
    });
    await ui.render();
    // Only now, only here: the API never shows it again.
    $("#key-secret-value").textContent = secret;
    $("#key-secret-name").textContent = key.name;
    $("#key-secret").hidden = false;
  });
  ui.onClick("key-copy", async () => {
    await navigator.clipboard.writeText($("#key-secret-value").textContent ?? "");
    ui.notice("The key is copied: paste it where your script keeps its secrets");
  });
  $("#key-secret-done").addEventListener("click", hideSecret);

  return {
    hideSecret,
    /** Draws the list, and the create form's choice of owner: this account, or an organization the caller manages keys for. */
    async render(organizations: Organization[]) {
      const active = client.activeOrganization();
      const orgKeys = active?.permissions.includes("keys:read") && organizations.some((o) => o.id === active.id) ? active : null;
      const [mine, theirs] = await Promise.all([client.apiKeys(), orgKeys ? client.apiKeys(orgKeys.id) : []]);
      const line = (k: ApiKey, owner: string) => {
        const li = item("api-key", describeKey(k, owner));
        li.dataset.keyId = k.id;
        li.append(
          button(
            "Revoke",
            async () => {
              await client.revokeApiKey(k.id);
              await ui.render();
              ui.notice(`The key ${k.name} is revoked: its next exchange is refused`);
            },
            ui,
          ),
        );
        return li;
      };
      const live = (k: ApiKey) => !k.revoked_at;
      const lines = [...mine.filter(live).map((k) => line(k, "yours")), ...theirs.filter(live).map((k) => line(k, orgKeys!.slug))];
      $("#key-list").replaceChildren(...(lines.length ? lines : [item("no-api-key", "None")]));
      const owners = $<HTMLSelectElement>("#key-owner");
      const chosen = owners.value;
      owners.replaceChildren(
        new Option("Me", ""),
        ...organizations.filter((o) => o.role === "owner" || o.role === "admin").map((o) => new Option(`${o.name} (${o.slug})`, o.id)),
      );
      owners.value = [...owners.options].some((o) => o.value === chosen) ? chosen : "";
    },
  };
}
