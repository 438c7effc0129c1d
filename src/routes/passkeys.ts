import { createRoute } from "@hono/zod-openapi";
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from "@simplewebauthn/server";
import { authenticationOptions, listPasskeys, passkeyLogin, registrationOptions, removePasskey, verifyRegistration } from "../auth/passkeys/passkeys";
import type { Passkey } from "../db/schema";
import { jsonOnly } from "../middleware/json-only";
import { limitByIp } from "../middleware/rate-limit";
import { assertAllowedOrigin } from "../middleware/refresh-cookie";
import { requireAuth } from "../middleware/require-auth";
import { messageSchema, passkeyOptionsSchema, passkeySchema, passkeysSchema, signedInSchema } from "../response-schemas";
import { freshCheckSchema, passkeyIdSchema, passkeyLoginSchema, passkeyRegisterSchema } from "../schemas";
import { deps, signInDeps } from "./deps";
import { BEARER, BODY_ERRORS, body, errors, errorsDuringEnrolment, json, openApiApp, setCookie } from "./openapi";
import { publicUser, tokenBody } from "./shapes";
import { asked, sensitive } from "./step-up";

/** Passkeys: registration and the list for the signed-in user, and sign-in without a password. */

const authed = requireAuth();
// REQUIRE_MFA: a session that must enrol a second factor may register a passkey.
const enrolling = requireAuth({ duringEnrolment: true });
const tags = ["Passkeys"];
const bearer = { security: BEARER, tags };

const passkeyShape = (p: Passkey) => ({
  id: p.id,
  name: p.name,
  created_at: p.createdAt.toISOString(),
  last_used_at: p.lastUsedAt?.toISOString() ?? null,
  backed_up: p.backedUp,
});

const registerOptionsRoute = sensitive(
  "add_passkey",
  createRoute({
    ...bearer,
    method: "post",
    path: "/passkeys/register/options",
    summary: "Options for navigator.credentials.create(), after a fresh check: a discoverable passkey with user verification",
    description:
      'A passkey signs in on its own, so adding one takes a step-up: the password and, while TOTP is on, a code or a recovery code (wrong ones count against this session\'s own budget, never the account lock). The challenge is single use and lives CHALLENGE_TTL seconds. The mail that announces the passkey carries a "this was not me" link.',
    middleware: [enrolling, jsonOnly] as const,
    request: body(freshCheckSchema),
    responses: {
      200: json(passkeyOptionsSchema, "PublicKeyCredentialCreationOptionsJSON"),
      ...errorsDuringEnrolment(
        ...BODY_ERRORS,
        "invalid_token",
        "invalid_credentials",
        "invalid_mfa_code",
        "reauthentication_required",
        "too_many_passkeys",
        "rate_limited",
      ),
    },
  }),
);

const registerVerifyRoute = sensitive(
  "add_passkey",
  createRoute({
    ...bearer,
    method: "post",
    path: "/passkeys/register/verify",
    summary: "Store the passkey the browser created",
    description:
      "Checks the challenge (this user's, unused, unexpired: else 401 invalid_challenge), then the origin (WEBAUTHN_ORIGINS, else CORS_ORIGINS), the relying-party id (WEBAUTHN_RP_ID) and user verification (else 400 passkey_rejected). The same registration sent again by the same user within RETRY_GRACE seconds (its answer lost) gets the stored passkey.",
    middleware: [enrolling, jsonOnly] as const,
    request: body(passkeyRegisterSchema),
    responses: {
      201: json(passkeySchema, "Registered"),
      ...errorsDuringEnrolment(...BODY_ERRORS, "invalid_token", "invalid_challenge", "passkey_rejected", "too_many_passkeys"),
    },
  }),
);

const loginOptionsRoute = createRoute({
  method: "post",
  path: "/passkeys/login/options",
  tags,
  summary: "Options for navigator.credentials.get(): sign in with any passkey of this site",
  middleware: [limitByIp("LOGIN_IP_LIMITER")] as const,
  responses: { 200: json(passkeyOptionsSchema, "PublicKeyCredentialRequestOptionsJSON"), ...errors("invalid_request", "payload_too_large", "rate_limited") },
});

const loginVerifyRoute = createRoute({
  method: "post",
  path: "/passkeys/login/verify",
  tags,
  summary: "Sign in with the passkey assertion: the same session as a password login",
  description:
    "401 invalid_challenge for an unknown, used or expired challenge; 401 invalid_credentials for an unknown passkey, a bad signature, a wrong origin or relying-party id, a user handle of another user, or a signature counter that did not move forward. No TOTP step follows: a passkey with user verification is two factors already.",
  middleware: [limitByIp("LOGIN_IP_LIMITER"), jsonOnly] as const,
  request: body(passkeyLoginSchema),
  responses: {
    200: json(signedInSchema, "Signed in", setCookie),
    ...errors(...BODY_ERRORS, "invalid_challenge", "invalid_credentials", "account_disabled", "email_unverified", "forbidden", "rate_limited"),
  },
});

const listRoute = createRoute({
  ...bearer,
  method: "get",
  path: "/passkeys",
  summary: "The user's passkeys, newest first (never a key)",
  middleware: [authed] as const,
  responses: { 200: json(passkeysSchema, "The passkeys"), ...errors("invalid_request", "invalid_token") },
});

const deleteRoute = sensitive(
  "remove_passkey",
  createRoute({
    ...bearer,
    method: "delete",
    path: "/passkeys/{id}",
    summary: "Remove one of the user's passkeys, after a step-up (the password, and while TOTP is on a code)",
    description:
      "409 last_way_in when nothing else would sign in; 409 mfa_required while REQUIRE_MFA applies to the account and neither TOTP nor another passkey would remain.",
    middleware: [authed, jsonOnly] as const,
    request: { params: passkeyIdSchema, ...body(freshCheckSchema) },
    responses: {
      200: json(messageSchema, "Removed"),
      ...errors(
        ...BODY_ERRORS,
        "invalid_token",
        "invalid_credentials",
        "invalid_mfa_code",
        "reauthentication_required",
        "not_found",
        "last_way_in",
        "mfa_required",
        "rate_limited",
      ),
    },
  }),
);

export const passkeys = openApiApp()
  .openapi(registerOptionsRoute, async (c) => c.json({ options: await registrationOptions(deps(c), asked(c, registerOptionsRoute), c.req.valid("json")) }, 200))
  .openapi(registerVerifyRoute, async (c) => {
    const { response, name } = c.req.valid("json");
    const passkey = await verifyRegistration(deps(c), asked(c, registerVerifyRoute), response as unknown as RegistrationResponseJSON, name);
    return c.json(passkeyShape(passkey), 201);
  })
  .openapi(loginOptionsRoute, async (c) => c.json({ options: await authenticationOptions(deps(c)) }, 200))
  .openapi(loginVerifyRoute, async (c) => {
    const { response, use_cookie = false } = c.req.valid("json");
    if (use_cookie) assertAllowedOrigin(c);
    const { user, issued } = await passkeyLogin(signInDeps(c, use_cookie), response as unknown as AuthenticationResponseJSON);
    return c.json({ user: publicUser(user), ...tokenBody(c, issued, use_cookie) }, 200);
  })
  .openapi(listRoute, async (c) => c.json({ passkeys: (await listPasskeys(deps(c), c.get("auth"))).map(passkeyShape) }, 200))
  .openapi(deleteRoute, async (c) => {
    await removePasskey(deps(c), asked(c, deleteRoute), c.req.valid("param").id, c.req.valid("json"));
    return c.json({ message: "Passkey removed" }, 200);
  });
