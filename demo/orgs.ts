import type { AuthClient, FreshCheck, Member, Organization } from "../client";

/**
 * Organizations (docs/organizations.md): the switcher (my organizations, a new one, which one this
 * session acts for) and the active organization's members and invitations. What the page offers
 * follows the access token's own claims (`client.activeOrganization()`: org_role, org_permissions),
 * decoded without verification for display only; the API decides every call whatever the page shows.
 */

/** What main.ts lends the demo's pages: its form and button wiring, messages, the step-up and a redraw. */
export interface Ui {
  onSubmit(id: string, action: (fields: Record<string, string>) => Promise<unknown>): void;
  onClick(id: string, action: () => Promise<unknown>): void;
  showError(err: unknown): unknown;
  notice(text: string): void;
  /** The step-up fields an action asks of this account (the password, a code while TOTP is on). */
  check(action: "manage_organization" | "create_api_key", code: string | undefined, password: string | undefined): FreshCheck;
  render(): Promise<void>;
}

export const $ = <T extends HTMLElement = HTMLElement>(selector: string) => document.querySelector<T>(selector)!;
export const button = (text: string, action: () => Promise<unknown>, ui: Ui) => {
  const b = Object.assign(document.createElement("button"), { type: "button", textContent: text });
  b.addEventListener("click", () => action().catch(ui.showError));
  return b;
};
export const item = (testid: string, text: string) => {
  const li = Object.assign(document.createElement("li"), { textContent: text });
  li.dataset.testid = testid;
  return li;
};
const day = (iso: string) => new Date(iso).toLocaleDateString();

export function createOrgs(client: AuthClient, ui: Ui) {
  let cursor: string | null = null; // the members list's next page
  const activeId = () => client.activeOrganization()?.id;
  /** The owner's step-up for deleting or handing over: this card's password (and code) fields. */
  const ownerCheck = () =>
    ui.check("manage_organization", $<HTMLInputElement>("#org-owner-code input").value || undefined, $<HTMLInputElement>("#org-owner-password input").value);

  ui.onSubmit("org-create", async (f) => {
    const org = await client.createOrganization({ name: f.name!, slug: f.slug! });
    // Whoever makes an organization means to work in it: this session acts for it from now on.
    await client.switchOrganization(org.id);
    await ui.render();
    ui.notice(`${org.name} is created, and it is your active organization: your access token carries it`);
  });
  ui.onSubmit("invite", async (f) => {
    const invitation = await client.invite(activeId()!, { email: f.email!, role: f.role! });
    await ui.render();
    ui.notice(`An invitation to join as ${invitation.role} is mailed to ${invitation.email}`);
  });
  ui.onClick("org-leave", async () => {
    const org = client.activeOrganization();
    if (!org) return;
    await client.leaveOrganization(org.id);
    await ui.render();
    ui.notice(`You left ${org.slug}`);
  });
  ui.onClick("org-none", async () => {
    await client.switchOrganization(null);
    await ui.render();
  });
  ui.onClick("org-delete", async () => {
    const org = client.activeOrganization();
    if (!org) return;
    await client.deleteOrganization(org.id, ownerCheck());
    await ui.render();
    ui.notice(`${org.slug} is deleted: its members' tokens lose it at their next refresh`);
  });
  ui.onClick("members-more", async () => {
    const org = activeId();
    if (org && cursor) await showMembers(org, true);
  });

  /** A member's line: who, the role, and what the caller may do to it. */
  function memberItem(orgId: string, m: Member, self: string, permissions: string[], owner: boolean) {
    const li = item("member", `${m.username}${m.email ? ` <${m.email}>` : ""}: ${m.role}, since ${day(m.joined_at)} `);
    li.dataset.userId = m.user_id;
    if (m.user_id === self || !permissions.includes("members:manage")) return li;
    const role = Object.assign(document.createElement("input"), { value: m.role, name: "role", required: true });
    role.setAttribute("list", "org-roles");
    role.setAttribute("aria-label", `Role of ${m.username}`);
    li.append(
      role,
      button(
        "Change role",
        async () => {
          await client.changeMemberRole(orgId, m.user_id, role.value);
          await ui.render();
          ui.notice(`${m.username} is now ${role.value}: their token says so at its next refresh`);
        },
        ui,
      ),
      " ",
      button(
        "Remove",
        async () => {
          await client.removeMember(orgId, m.user_id);
          await ui.render();
          ui.notice(`${m.username} is removed: their sessions lose ${client.activeOrganization()?.slug} at their next refresh`);
        },
        ui,
      ),
    );
    if (owner)
      li.append(
        " ",
        button(
          "Make owner",
          async () => {
            await client.transferOrganization(orgId, m.user_id, ownerCheck());
            await ui.render();
            ui.notice(`${m.username} owns the organization now; you are an admin`);
          },
          ui,
        ),
      );
    return li;
  }

  async function showMembers(orgId: string, more = false) {
    const org = client.activeOrganization()!;
    const page = await client.members(orgId, more && cursor ? { cursor } : {});
    cursor = page.next_cursor;
    const self = client.state.signedIn ? client.state.userId : "";
    const items = page.members.map((m) => memberItem(orgId, m, self, org.permissions, org.role === "owner"));
    if (more) $("#member-list").append(...items);
    else $("#member-list").replaceChildren(...items);
    $("#members-more").hidden = !cursor;
  }

  async function showInvitations(orgId: string) {
    const invitations = await client.invitations(orgId);
    $("#invitation-list").replaceChildren(
      ...(invitations.length ? [] : [item("no-invitation", "None")]),
      ...invitations.map((inv) => {
        const li = item("invitation", `${inv.email} as ${inv.role}, until ${day(inv.expires_at)} `);
        li.append(
          button(
            "Revoke",
            async () => {
              await client.revokeInvitation(orgId, inv.id);
              await ui.render();
              ui.notice(`The invitation for ${inv.email} is revoked: its link no longer works`);
            },
            ui,
          ),
        );
        return li;
      }),
    );
  }

  return {
    /** Draws both cards; answers the caller's organizations (the keys page offers them). */
    async render(): Promise<Organization[]> {
      const organizations = await client.organizations();
      const active = client.activeOrganization();
      $("#org-current").textContent = active
        ? `Acting for ${active.slug} as ${active.role} (from your access token: ${active.permissions.join(" ")})`
        : "No active organization: your access token carries none";
      $("#org-none").hidden = !active;
      $("#org-list").replaceChildren(
        ...organizations.map((o) => {
          const li = item("org", `${o.name} (${o.slug}), ${o.role} `);
          li.dataset.orgId = o.id;
          if (o.id === active?.id) li.append(Object.assign(document.createElement("strong"), { textContent: "active" }));
          else
            li.append(
              button(
                "Switch",
                async () => {
                  const org = await client.switchOrganization(o.id);
                  await ui.render();
                  ui.notice(`You act for ${org?.name} now: your new access token carries it`);
                },
                ui,
              ),
            );
          return li;
        }),
      );
      // The members card is the active organization's.
      $("#members").hidden = !active;
      if (!active) return organizations;
      $("#members-org").textContent = active.slug;
      const canInvite = active.permissions.includes("members:invite");
      $("#invite").hidden = !canInvite;
      $("#invitations").hidden = !canInvite;
      $("#org-owner").hidden = active.role !== "owner";
      if (!organizations.some((o) => o.id === active.id)) {
        // Removed, or the organization deleted, since this token was signed: it says so until its next refresh.
        $("#member-list").replaceChildren(
          item("member-gone", `You are no longer a member of ${active.slug}: your access token carries it until its next refresh`),
        );
        for (const id of ["#invite", "#invitations", "#org-owner", "#members-more", "#org-leave"]) $(id).hidden = true;
        return organizations;
      }
      $("#org-leave").hidden = false;
      await Promise.all([showMembers(active.id), canInvite ? showInvitations(active.id) : undefined]);
      return organizations;
    },
  };
}
