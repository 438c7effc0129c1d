import { createRoute } from "@hono/zod-openapi";
import { disableTotp, enableTotp, setupTotp } from "../auth/totp/mfa";
import { jsonOnly } from "../middleware/json-only";
import { requireAuth } from "../middleware/require-auth";
import { messageSchema, recoveryCodesSchema, totpSetupSchema } from "../response-schemas";
import { totpDisableSchema, totpEnableSchema, totpSetupRequestSchema } from "../schemas";
import { deps } from "./deps";
import { BEARER, BODY_ERRORS, body, errors, errorsDuringEnrolment, json, openApiApp } from "./openapi";
import { asked, sensitive } from "./step-up";

/** TOTP for the signed-in user: set up, enable (recovery codes), disable. The login step is in routes/auth.ts. */

const authed = requireAuth();
// REQUIRE_MFA: a session that must enrol a second factor may set TOTP up and turn it on (and nothing else).
const enrolling = requireAuth({ duringEnrolment: true });
const bearer = { security: BEARER, tags: ["Second factors"] };

const setupRoute = sensitive(
  "setup_totp",
  createRoute({
    ...bearer,
    method: "post",
    path: "/mfa/totp/setup",
    summary: "Start TOTP after a password check: a new secret and its otpauth:// URI (draw it as a QR code)",
    description:
      "Nothing changes at login until POST /mfa/totp/enable confirms a code. Calling it again replaces the pending secret. 409 mfa_already_enabled while TOTP is on. The password check goes through the account lock.",
    middleware: [enrolling, jsonOnly] as const,
    request: body(totpSetupRequestSchema),
    responses: {
      200: json(totpSetupSchema, "The pending secret"),
      ...errorsDuringEnrolment(...BODY_ERRORS, "invalid_token", "invalid_credentials", "reauthentication_required", "mfa_already_enabled", "rate_limited"),
    },
  }),
);

const enableRoute = sensitive(
  "enable_totp",
  createRoute({
    ...bearer,
    method: "post",
    path: "/mfa/totp/enable",
    summary: "Turn TOTP on with a code from the new secret; returns ten single-use recovery codes, shown once",
    description:
      "The same request again within RETRY_GRACE seconds (its answer lost) gets the same codes, while none has been used; its code then counts against the session's step-up budget.",
    middleware: [enrolling, jsonOnly] as const,
    request: body(totpEnableSchema),
    responses: {
      200: json(recoveryCodesSchema, "TOTP is on"),
      ...errorsDuringEnrolment(...BODY_ERRORS, "invalid_token", "invalid_mfa_code", "mfa_not_enabled", "mfa_already_enabled", "rate_limited"),
    },
  }),
);

const disableRoute = sensitive(
  "disable_totp",
  createRoute({
    ...bearer,
    method: "post",
    path: "/mfa/totp/disable",
    summary: "Turn TOTP off: needs the password and a code (or a recovery code)",
    description:
      "Both are checked through the account lock: a wrong one counts like a failed login (429 while locked). 409 mfa_required while REQUIRE_MFA applies to the account and no passkey would remain.",
    middleware: [authed, jsonOnly] as const,
    request: body(totpDisableSchema),
    responses: {
      200: json(messageSchema, "TOTP is off; the recovery codes are void"),
      ...errors(
        ...BODY_ERRORS,
        "invalid_token",
        "invalid_credentials",
        "invalid_mfa_code",
        "reauthentication_required",
        "mfa_not_enabled",
        "mfa_required",
        "rate_limited",
      ),
    },
  }),
);

export const mfa = openApiApp()
  .openapi(setupRoute, async (c) => {
    const { secret, uri } = await setupTotp(deps(c), asked(c, setupRoute), c.req.valid("json").current_password);
    return c.json({ secret, otpauth_uri: uri }, 200);
  })
  .openapi(enableRoute, async (c) => {
    const codes = await enableTotp(deps(c), asked(c, enableRoute), c.req.valid("json").code);
    return c.json({ message: "Two-step sign-in is on. Keep these recovery codes somewhere safe: each works once.", recovery_codes: codes }, 200);
  })
  .openapi(disableRoute, async (c) => {
    await disableTotp(deps(c), asked(c, disableRoute), c.req.valid("json"));
    return c.json({ message: "Two-step sign-in is off" }, 200);
  });
