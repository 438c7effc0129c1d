import { z } from "zod";

/**
 * Organization roles (docs/organizations.md): the built-in `owner`, `admin` and `member`, plus the
 * roles a deployment defines in ORG_ROLES, each a list of named permissions. A role's permissions are
 * what access tokens carry as `org_permissions`; its rank is what it may hand out (an invitation or a
 * role change never grants more than the actor's own rank).
 */

export const BUILT_IN_ROLES = ["owner", "admin", "member"] as const;

/** What every member may do: see the organization and who is in it. */
const MEMBER = ["org:read", "members:read"];
/** Owners and admins also run it: rename, invite, change roles below their own, remove, manage its keys. */
const ADMIN = [...MEMBER, "org:update", "members:invite", "members:manage", "keys:read", "keys:manage"];
/** Only owners delete it or hand ownership over. */
const OWNER = [...ADMIN, "org:delete", "org:transfer"];

const PERMISSION = /^[a-z][a-z0-9_.:-]{0,63}$/;
const ROLE = /^[a-z][a-z0-9_-]{0,31}$/;

/** ORG_ROLES: a JSON object, role name -> its permissions, e.g. {"billing": ["billing:read", "billing:manage"]}. */
export const orgRolesSchema = z
  .string()
  .default("{}")
  .transform((s, ctx) => {
    try {
      return JSON.parse(s === "" ? "{}" : s) as unknown;
    } catch {
      ctx.addIssue({ code: "custom", message: 'is not JSON (an object like {"billing": ["billing:read"]})' });
      return z.NEVER;
    }
  })
  .pipe(
    z
      .record(
        z.string().regex(ROLE, "each role name must be 1-32 lower-case letters, digits, _ or -, starting with a letter"),
        z.array(z.string().regex(PERMISSION, "each permission must be 1-64 lower-case letters, digits or _.:-, starting with a letter")).max(64),
      )
      .refine((r) => Object.keys(r).length <= 32, "at most 32 roles")
      .refine((r) => !Object.keys(r).some((name) => (BUILT_IN_ROLES as readonly string[]).includes(name)), "must not redefine owner, admin or member"),
  );

export type OrgRoles = z.infer<typeof orgRolesSchema>;

/** Every role known to this deployment. */
export const rolesOf = (custom: OrgRoles): string[] => [...BUILT_IN_ROLES, ...Object.keys(custom)];

export const isRole = (custom: OrgRoles, role: string) => rolesOf(custom).includes(role);

/** Every permission a deployment's roles name: owners and admins hold each custom one too. */
const customPermissions = (custom: OrgRoles) => [...new Set(Object.values(custom).flat())];

/** What a role may do; an unknown role (one ORG_ROLES no longer defines) may do what a member may. */
export function permissionsOf(custom: OrgRoles, role: string): string[] {
  if (role === "owner") return [...OWNER, ...customPermissions(custom)];
  if (role === "admin") return [...ADMIN, ...customPermissions(custom)];
  const own = Object.hasOwn(custom, role) ? custom[role]! : [];
  return [...new Set([...MEMBER, ...own])];
}

/** owner 3 > admin 2 > member and every custom role 1. */
export const rankOf = (role: string) => (role === "owner" ? 3 : role === "admin" ? 2 : 1);

/** May someone with role `actor` give (by invitation or role change) the role `target`? Never above their own rank; members give nothing. */
export const mayGrant = (actor: string, target: string) => rankOf(actor) >= 2 && rankOf(target) <= rankOf(actor);
