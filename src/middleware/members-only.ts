import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";

/**
 * What a guest (docs/guests.md) may not do, in one table: the route groups a token with `guest: true`
 * is refused with 403 guest_not_allowed, checked right after the token (requireAuth), whatever else
 * the token says (a role included). A guest keeps the rest: its sessions, /me, signing out, deleting
 * itself, and the ways to become a member (POST /guests/upgrade, a passkey, a provider). Each group is
 * tested in test/guests-limits.test.ts, which iterates over this table.
 */
export interface MembersOnlyGroup {
  group: string;
  /** A path prefix: the path itself and everything under it, unless `exact`. */
  prefix: string;
  exact?: boolean;
  /** Why a guest may not: the answer's message, and docs/guests.md's row. */
  why: string;
}

export const MEMBERS_ONLY: readonly MembersOnlyGroup[] = [
  { group: "admin", prefix: "/admin", why: "an anonymous account never administers the service (a guest is never granted a role either)" },
  { group: "organizations", prefix: "/orgs", why: "an organization outlives a throwaway account: creating, switching, members" },
  { group: "invitations", prefix: "/invitations", why: "joining an organization binds it to an account nobody can sign in to again" },
  { group: "api_keys", prefix: "/keys", why: "a key acts for its owner from anywhere until revoked" },
  { group: "app_consent", prefix: "/oauth2/requests", why: "approving a third-party app hands it a grant on an account with no owner to review it" },
  { group: "password_change", prefix: "/password", exact: true, why: "a guest has no password: POST /guests/upgrade sets the first one" },
  { group: "email_change", prefix: "/email", exact: true, why: "a guest has no address: POST /guests/upgrade sets the first one" },
  { group: "totp", prefix: "/mfa", why: "a second factor needs a first one: add a way in first" },
];

const normalized = (path: string) => path.replace(/(.)\/+$/, "$1");

/** The group a guest is refused at `path`, or undefined. */
export function membersOnlyGroup(path: string): MembersOnlyGroup | undefined {
  const p = normalized(path);
  return MEMBERS_ONLY.find((g) => p === g.prefix || (!g.exact && p.startsWith(`${g.prefix}/`)));
}

/** After the token check: a guest's token is refused on the members' groups. */
export const membersOnly = createMiddleware<AppEnv>(async function membersOnly(c, next) {
  if (c.get("auth")?.guest) {
    const group = membersOnlyGroup(c.req.path);
    if (group) throw new ApiError("guest_not_allowed", `Guests cannot do this (${group.why}): add an address and a password, a passkey or a provider first`);
  }
  await next();
});
