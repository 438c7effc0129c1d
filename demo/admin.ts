import type { AdminOrganizationsPage, AuthClient, User } from "../client";

/**
 * The admin page: the newest users, organizations and security events, through the admin API (GET
 * /admin/users, /admin/organizations and /admin/audit) with this session's access token. Shown only to
 * accounts with the admin role; the API refuses the calls (403) to anyone else whatever the page shows.
 */

interface AuditEvent {
  created_at: string;
  event: string;
  user_id: string | null;
}

function item(testid: string, text: string) {
  const li = Object.assign(document.createElement("li"), { textContent: text });
  li.dataset.testid = testid;
  return li;
}

export async function renderAdmin(client: AuthClient, section: HTMLElement, roles: string[]) {
  section.hidden = !roles.includes("admin");
  if (section.hidden) return;
  const [{ users }, { events }, { organizations }] = await Promise.all([
    client.request<{ users: User[] }>("GET", "/admin/users?limit=10"),
    client.request<{ events: AuditEvent[] }>("GET", "/admin/audit?limit=10"),
    client.request<AdminOrganizationsPage>("GET", "/admin/organizations?limit=10"),
  ]);
  section
    .querySelector("#admin-orgs")!
    .replaceChildren(
      ...organizations.map((o) =>
        item("admin-org", `${o.name} (${o.slug}), ${o.members} member${o.members === 1 ? "" : "s"}, since ${new Date(o.created_at).toLocaleString()}`),
      ),
    );
  const names = new Map(users.map((u) => [u.id, u.username]));
  section
    .querySelector("#admin-users")!
    .replaceChildren(
      ...users.map((u) => item("admin-user", `${u.username}${u.roles.includes("admin") ? " (admin)" : ""}, since ${new Date(u.created_at).toLocaleString()}`)),
    );
  section
    .querySelector("#admin-events")!
    .replaceChildren(
      ...events.map((e) =>
        item(
          "admin-event",
          `${new Date(e.created_at).toLocaleTimeString()} ${e.event}${e.user_id ? ` (${names.get(e.user_id) ?? e.user_id.slice(0, 8)})` : ""}`,
        ),
      ),
    );
}
