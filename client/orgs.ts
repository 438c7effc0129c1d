import type { FreshCheck } from "./checks.js";
import type {
  Invitation,
  InvitationBody,
  InvitationCreateRequest,
  Invitations,
  Member,
  MemberBody,
  MembersPage,
  Message,
  Organization,
  OrganizationBody,
  OrganizationCreateRequest,
  OrganizationSwitched,
  Organizations,
  OrganizationUpdateRequest,
} from "./types.js";

/**
 * Organizations, their members and invitations, and the session's active organization
 * (docs/organizations.md). A session has at most one active organization; its access tokens carry it
 * as `org_id`, `org_slug`, `org_role` and `org_permissions`, which your backends read from the
 * verified token without calling the API. switchOrganization() changes it and takes the new access
 * token at once; a change made by someone else (a role, a removal) reaches the token at its next
 * refresh, within the access token's lifetime.
 */

export type { Invitation, Member, Organization };
export type MembersQuery = { cursor?: string; limit?: number };
/**
 * The active organization as the current access token carries it, decoded from the token's payload
 * without checking its signature: this is the client's own token, read for display (which
 * organization, which role, what the buttons may offer). A backend verifies the token (its JWKS)
 * before it trusts any claim.
 */
export type ActiveOrganization = { id: string; slug: string; role: string; permissions: string[] };

type Call = <T>(method: string, path: string, body?: unknown) => Promise<T>;
/** The token's payload as JSON, unverified; undefined when it is not a JWT. */
type Payload = (token: string | undefined) => Record<string, unknown> | undefined;

export interface Session {
  /** The current access token, as held (not refreshed). */
  token(): string | undefined;
  /** Takes a new access token for this session (the switch answers one). */
  adopt(tokens: { access_token: string; expires_in: number }): void;
  /** A refresh now, for a token whose claims the caller just made stale. */
  refresh(): Promise<void>;
  payload: Payload;
}

/** The invitation token in a page URL's fragment (`#accept-invitation=<token>`, the mailed link), or null. */
export function invitationToken(url: string): string | null {
  const match = /(?:^|&)accept-invitation=([^&]+)/.exec(url.split("#")[1] ?? "");
  return match ? decodeURIComponent(match[1]!) : null;
}

export function orgCalls(authed: Call, session: Session) {
  const org = (id: string) => `/orgs/${encodeURIComponent(id)}`;
  const member = (orgId: string, userId: string) => `${org(orgId)}/members/${encodeURIComponent(userId)}`;
  const organization = (r: OrganizationBody) => r.organization;

  function active(): ActiveOrganization | null {
    const p = session.payload(session.token());
    const { org_id: id, org_slug: slug, org_role: role, org_permissions: permissions } = p ?? {};
    return typeof id === "string" && typeof slug === "string" && typeof role === "string" && Array.isArray(permissions)
      ? { id, slug, role, permissions: permissions as string[] }
      : null;
  }
  /**
   * After the caller changed their own standing in `orgId` (left, deleted it, handed it over): when it
   * is the active one, a refresh now, so this session's token says so rather than at its expiry.
   */
  async function settle<T>(orgId: string, done: T): Promise<T> {
    if (active()?.id === orgId) await session.refresh();
    return done;
  }
  const self = () => session.payload(session.token())?.sub as string;

  return {
    /** `org_id`, `org_slug`, `org_role`, `org_permissions` of the current access token (unverified, see ActiveOrganization), or null. */
    activeOrganization: active,
    /**
     * Makes `orgId` this session's active organization (null: none) and takes the new access token,
     * which carries it; the refresh token stays and later refreshes carry the organization too. The
     * token held before is revoked. Not a member: 404 not_found.
     */
    async switchOrganization(orgId: string | null): Promise<Organization | null> {
      const res = await authed<OrganizationSwitched>("POST", "/orgs/switch", { org_id: orgId });
      session.adopt(res);
      return res.organization;
    },
    /** A new organization; the caller is its owner. 409 org_slug_taken, too_many_organizations. */
    createOrganization: (input: OrganizationCreateRequest) => authed<OrganizationBody>("POST", "/orgs", input).then(organization),
    /** The caller's organizations, newest first, each with the caller's role. */
    organizations: () => authed<Organizations>("GET", "/orgs").then((r) => r.organizations),
    /** One of the caller's organizations; 404 not_found for any other. */
    getOrganization: (id: string) => authed<OrganizationBody>("GET", org(id)).then(organization),
    /** A new name or slug (org:update). */
    updateOrganization: (id: string, input: OrganizationUpdateRequest) => authed<OrganizationBody>("PATCH", org(id), input).then(organization),
    /** Owners only, with the step-up (the password, and a code while TOTP is on). Members lose its claims at their next refresh. */
    deleteOrganization: async (id: string, check: FreshCheck) => settle(id, await authed<Message>("DELETE", org(id), check)),
    /** A page of members (keyset): pass `next_cursor` back as `cursor` while it is not null. */
    members: (orgId: string, { cursor, limit }: MembersQuery = {}) =>
      authed<MembersPage>(
        "GET",
        `${org(orgId)}/members${`${limit ? `&limit=${limit}` : ""}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`.replace("&", "?")}`,
      ),
    /** members:manage, never above the caller's own rank. 409 last_owner. The member's token changes at its next refresh. */
    changeMemberRole: (orgId: string, userId: string, role: string) => authed<MemberBody>("PATCH", member(orgId, userId), { role }).then((r) => r.member),
    /** members:manage with the same rank rule. The member's sessions lose the organization at their next refresh. */
    removeMember: (orgId: string, userId: string) => authed<Message>("DELETE", member(orgId, userId)),
    /** The caller leaves; 409 last_owner while nobody else owns it (hand it over first). */
    leaveOrganization: async (orgId: string) => settle(orgId, await authed<Message>("DELETE", member(orgId, self()))),
    /** Owners only, with the step-up: `userId` (a member) becomes an owner, the caller an admin. */
    transferOrganization: async (orgId: string, userId: string, check: FreshCheck) =>
      settle(orgId, await authed<OrganizationBody>("POST", `${org(orgId)}/transfer`, { user_id: userId, ...check }).then(organization)),
    /** Mails a single-use link (`APP_URL#accept-invitation=<token>`); never a role above the caller's. 409 already_member. */
    invite: (orgId: string, input: InvitationCreateRequest) => authed<InvitationBody>("POST", `${org(orgId)}/invitations`, input).then((r) => r.invitation),
    /** The pending invitations. */
    invitations: (orgId: string) => authed<Invitations>("GET", `${org(orgId)}/invitations`).then((r) => r.invitations),
    revokeInvitation: (orgId: string, id: string) => authed<Message>("DELETE", `${org(orgId)}/invitations/${encodeURIComponent(id)}`),
    /**
     * Joins with the invitation's role, signed in to the account whose verified address was invited
     * (403 invitation_wrong_account otherwise: sign in to that one, or verify the address, and try
     * again). 400 invalid_link: unknown, used, revoked or expired. Does not switch to it.
     */
    acceptInvitation: (token: string) => authed<OrganizationBody>("POST", "/invitations/accept", { token }).then(organization),
  };
}
