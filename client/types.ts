// Generated from the server's zod schemas (src/schemas*.ts, src/response-schemas*.ts) by `npm run client:build`. Do not edit.
// Each type is what the server's zod schema validates (a request's input, a response's output).

export type ErrorCode = "invalid_request" | "validation_failed" | "invalid_credentials" | "invalid_token" | "forbidden" | "registration_closed" | "account_disabled" | "email_unverified" | "invalid_link" | "invalid_mfa_code" | "invalid_challenge" | "passkey_rejected" | "too_many_passkeys" | "scope_not_allowed" | "too_many_api_keys" | "not_found" | "method_not_allowed" | "username_taken" | "email_taken" | "mfa_already_enabled" | "mfa_not_enabled" | "last_admin" | "last_way_in" | "account_exists" | "account_proof_required" | "identity_in_use" | "password_not_set" | "reauthentication_required" | "invalid_grant" | "unknown_provider" | "provider_unavailable" | "key_not_ready" | "keys_not_rotating" | "org_slug_taken" | "last_owner" | "too_many_organizations" | "already_member" | "too_many_invitations" | "invitation_wrong_account" | "invalid_mail_code" | "password_too_common" | "password_contains_context" | "password_breached" | "turnstile_required" | "turnstile_failed" | "turnstile_unavailable" | "guest_not_allowed" | "mfa_enrolment_required" | "mfa_required" | "payload_too_large" | "unsupported_media_type" | "rate_limited" | "internal_error" | "service_unavailable";

export type ErrorBody = {
  error: "invalid_request" | "validation_failed" | "invalid_credentials" | "invalid_token" | "forbidden" | "registration_closed" | "account_disabled" | "email_unverified" | "invalid_link" | "invalid_mfa_code" | "invalid_challenge" | "passkey_rejected" | "too_many_passkeys" | "scope_not_allowed" | "too_many_api_keys" | "not_found" | "method_not_allowed" | "username_taken" | "email_taken" | "mfa_already_enabled" | "mfa_not_enabled" | "last_admin" | "last_way_in" | "account_exists" | "account_proof_required" | "identity_in_use" | "password_not_set" | "reauthentication_required" | "invalid_grant" | "unknown_provider" | "provider_unavailable" | "key_not_ready" | "keys_not_rotating" | "org_slug_taken" | "last_owner" | "too_many_organizations" | "already_member" | "too_many_invitations" | "invitation_wrong_account" | "invalid_mail_code" | "password_too_common" | "password_contains_context" | "password_breached" | "turnstile_required" | "turnstile_failed" | "turnstile_unavailable" | "guest_not_allowed" | "mfa_enrolment_required" | "mfa_required" | "payload_too_large" | "unsupported_media_type" | "rate_limited" | "internal_error" | "service_unavailable";
  message: string;
  fields?: Record<string, string> | undefined;
};

export type User = {
  id: string;
  username: string | null;
  email: string | null;
  email_verified: boolean;
  roles: string[];
  created_at: string;
};

export type Tokens = {
  access_token: string;
  refresh_token?: string | undefined;
  token_type: "Bearer";
  expires_in: number;
};

export type SignedInBody = {
  user: {
    id: string;
    username: string | null;
    email: string | null;
    email_verified: boolean;
    roles: string[];
    created_at: string;
  };
  access_token: string;
  refresh_token?: string | undefined;
  token_type: "Bearer";
  expires_in: number;
};

export type MfaChallengeBody = {
  mfa_required: true;
  challenge: string;
  expires_in: number;
  methods: ("totp" | "recovery_code")[];
};

export type Me = {
  user: {
    id: string;
    username: string | null;
    email: string | null;
    email_verified: boolean;
    roles: string[];
    created_at: string;
  };
  factors: {
    totp: boolean;
    recovery_codes_left: number;
    passkeys: number;
  };
};

export type Factors = {
  totp: boolean;
  recovery_codes_left: number;
  passkeys: number;
};

export type Security = {
  ways_in: ({
    kind: "password" | "email" | "totp" | "passkey" | "identity";
    added_at: string | null;
    added_by_session: string | null;
    by_this_session: boolean;
    address?: string | undefined;
    verified?: boolean | undefined;
    recovery_codes_left?: number | undefined;
    id?: string | undefined;
    provider?: string | undefined;
    name?: string | undefined;
    last_used_at?: string | null | undefined;
    backed_up?: boolean | undefined;
  })[];
  session: {
    id: string;
    auth_time: string;
    amr: string[];
  };
  step_up: Record<"change_password" | "change_email" | "delete_account" | "end_sessions" | "setup_totp" | "enable_totp" | "disable_totp" | "add_passkey" | "remove_passkey" | "add_identity" | "remove_identity" | "reset_password" | "revoke_way_in" | "change_roles" | "rotate_signing_keys" | "retire_signing_key" | "manage_clients" | "manage_organization" | "create_api_key", ("password" | "second_factor" | "new_totp_code" | "mailbox" | "recent_sign_in")[]>;
};

export type Message = {
  message: string;
};

export type Protected = {
  message: string;
  user_id: string;
  username: string | null;
};

export type SessionsPage = {
  sessions: ({
    id: string;
    created_at: string;
    last_used_at: string;
    expires_at: string;
    user_agent: string | null;
    current: boolean;
  })[];
  next_cursor: string | null;
};

export type SessionsRevoked = {
  message: string;
  sessions_revoked: number;
};

export type PasswordChanged = {
  message: string;
  sessions_revoked: number;
  password_warning?: "password_breached" | undefined;
};

export type Registered = {
  user: {
    id: string;
    username: string | null;
    email: string | null;
    email_verified: boolean;
    roles: string[];
    created_at: string;
  };
  password_warning?: "password_breached" | undefined;
};

export type TotpSetup = {
  secret: string;
  otpauth_uri: string;
};

export type RecoveryCodes = {
  message: string;
  recovery_codes: string[];
};

export type Passkey = {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  backed_up: boolean;
};

export type Passkeys = {
  passkeys: ({
    id: string;
    name: string;
    created_at: string;
    last_used_at: string | null;
    backed_up: boolean;
  })[];
};

export type ResetDone = {
  message: string;
  passkeys_removed: number;
  identities_removed: number;
  totp_removed: boolean;
  takes_effect_at?: string | undefined;
  password_warning?: "password_breached" | undefined;
};

export type WayInRevoked = {
  message: string;
  removed: boolean;
  way: string;
  takes_effect_at?: string | undefined;
};

export type Providers = {
  providers: ({
    id: string;
    name: string;
    kind: "oidc" | "google" | "microsoft" | "apple" | "github";
  })[];
};

export type TurnstileConfig = {
  site_key: string | null;
};

export type IdentityLinked = {
  linked: {
    id: string;
    provider: string;
  };
};

export type RegisterRequest = {
  username?: string | undefined;
  email?: string | undefined;
  password: string;
  use_cookie?: boolean | undefined;
};

export type LoginRequest = {
  username: string;
  password: string;
  use_cookie?: boolean | undefined;
};

export type LoginMfaRequest = {
  challenge: string;
  code?: string | undefined;
  recovery_code?: string | undefined;
  use_cookie?: boolean | undefined;
};

export type PasswordChangeRequest = {
  current_password: string;
  code?: string | undefined;
  recovery_code?: string | undefined;
  new_password: string;
};

export type AuthorizationRequest = {
  id: string;
  client: {
    id: string;
    name: string;
    uri: string | null;
    verified: boolean;
  };
  scopes: {
    name: string;
    description: string;
  }[];
  lifetime: {
    access_token_seconds: number;
    refresh: {
      max_seconds: number;
      idle_seconds: number;
    } | null;
    description: string;
  };
  resource: string | null;
  redirect_origin: string;
  prompt: string | null;
  login_required: boolean;
  consent_remembered: boolean;
  expires_at: string;
};

export type AuthorizationRedirect = {
  redirect_to: string;
};

export type ConnectedApps = {
  apps: ({
    client_id: string;
    name: string;
    uri: string | null;
    scopes: string[];
    resources: string[];
    connected_at: string;
    last_used_at: string | null;
    grants: number;
    consent_remembered: boolean;
  })[];
};

export type AppDisconnected = {
  message: string;
  grants_revoked: number;
  consents_removed: number;
};

export type Organization = {
  id: string;
  name: string;
  slug: string;
  role: string;
  created_at: string;
};

export type OrganizationBody = {
  organization: {
    id: string;
    name: string;
    slug: string;
    role: string;
    created_at: string;
  };
};

export type Organizations = {
  organizations: {
    id: string;
    name: string;
    slug: string;
    role: string;
    created_at: string;
  }[];
};

export type OrganizationSwitched = {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  organization: {
    id: string;
    name: string;
    slug: string;
    role: string;
    created_at: string;
  } | null;
};

export type Member = {
  user_id: string;
  username: string | null;
  email: string | null;
  role: string;
  joined_at: string;
};

export type MemberBody = {
  member: {
    user_id: string;
    role: string;
    joined_at: string;
  };
};

export type MembersPage = {
  members: ({
    user_id: string;
    username: string | null;
    email: string | null;
    role: string;
    joined_at: string;
  })[];
  next_cursor: string | null;
};

export type AdminOrganizationsPage = {
  organizations: {
    id: string;
    name: string;
    slug: string;
    created_at: string;
    members: number;
  }[];
  next_cursor: string | null;
};

export type OrganizationCreateRequest = {
  name: string;
  slug: string;
};

export type OrganizationUpdateRequest = {
  name?: string | undefined;
  slug?: string | undefined;
};

export type Invitation = {
  id: string;
  org_id: string;
  email: string;
  role: string;
  invited_by: string | null;
  created_at: string;
  expires_at: string;
};

export type InvitationBody = {
  invitation: {
    id: string;
    org_id: string;
    email: string;
    role: string;
    invited_by: string | null;
    created_at: string;
    expires_at: string;
  };
};

export type Invitations = {
  invitations: ({
    id: string;
    org_id: string;
    email: string;
    role: string;
    invited_by: string | null;
    created_at: string;
    expires_at: string;
  })[];
};

export type InvitationCreateRequest = {
  email: string;
  role: string;
};

export type ApiKey = {
  id: string;
  name: string;
  start: string;
  scopes: string[];
  owner: {
    type: "user" | "organization";
    id: string;
  };
  created_by: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
};

export type ApiKeyCreated = {
  key: {
    id: string;
    name: string;
    start: string;
    scopes: string[];
    owner: {
      type: "user" | "organization";
      id: string;
    };
    created_by: string;
    created_at: string;
    expires_at: string | null;
    last_used_at: string | null;
    revoked_at: string | null;
  };
  secret: string;
};

export type ApiKeys = {
  keys: ({
    id: string;
    name: string;
    start: string;
    scopes: string[];
    owner: {
      type: "user" | "organization";
      id: string;
    };
    created_by: string;
    created_at: string;
    expires_at: string | null;
    last_used_at: string | null;
    revoked_at: string | null;
  })[];
};

export type ApiKeyCreateRequest = {
  name: string;
  scopes: string[];
  expires_in_days?: number | undefined;
  org_id?: string | undefined;
  current_password?: string | undefined;
  code?: string | undefined;
  recovery_code?: string | undefined;
};

export type TokenResponse = {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  scope: string;
  refresh_token?: string | undefined;
  id_token?: string | undefined;
  issued_token_type?: "urn:ietf:params:oauth:token-type:access_token" | undefined;
};

export type GuestUpgradeRequest = {
  email: string;
  password: string;
  username?: string | undefined;
};

export type UserBody = {
  user: {
    id: string;
    username: string | null;
    email: string | null;
    email_verified: boolean;
    roles: string[];
    created_at: string;
  };
};

export type ProfilePatchRequest = {
  username: string;
};

export type MailSignInStartRequest = {
  email: string;
};

export type MailSignInLinkRequest = {
  token: string;
  use_cookie?: boolean | undefined;
};

export type MailSignInCodeRequest = {
  email: string;
  code: string;
  use_cookie?: boolean | undefined;
};
