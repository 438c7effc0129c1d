/**
 * The sensitive actions, each a row of the step-up table (auth/core/ways-in.ts STEP_UP, which
 * re-exports them). Here, below the domain, so the response schemas can name them without
 * importing it; in the table's order, which the OpenAPI document shows.
 */
export const ACTIONS = [
  "change_password",
  "change_email",
  "delete_account",
  "end_sessions",
  "setup_totp",
  "enable_totp",
  "disable_totp",
  "add_passkey",
  "remove_passkey",
  "add_identity",
  "remove_identity",
  "reset_password",
  "revoke_way_in",
  "change_roles",
  "rotate_signing_keys",
  "retire_signing_key",
  "manage_clients",
  "manage_organization",
  "create_api_key",
] as const;

export type Action = (typeof ACTIONS)[number];
