/**
 * REQUIRE_MFA (docs/second-factors.md#mandatory-second-factor): an account the deployment requires a
 * second factor of, and that holds none, signs in to an enrolment-only session. Its access token says
 * so (`mfa_enrolment: true`, read here unverified, for display); every route but the enrolment path
 * (TOTP setup and enable, passkey registration, GET /me, logout) answers 403 mfa_enrolment_required.
 * Once TOTP is on or a passkey is registered, a refresh brings a full token: totpEnable() and
 * passkeyRegister() do that refresh themselves.
 */

type Payload = (token: string | undefined) => Record<string, unknown> | undefined;

export interface EnrolmentSession {
  token(): string | undefined;
  refresh(): Promise<void>;
  payload: Payload;
}

export function mfaCalls(session: EnrolmentSession) {
  /** True while this session may only enrol a second factor (show only the TOTP or passkey page). */
  const enrolmentRequired = () => session.payload(session.token())?.mfa_enrolment === true;
  /** After an enrolment call: a session that was enrolment-only is refreshed, so its next token is full. */
  async function afterEnrolment<T>(done: T): Promise<T> {
    if (enrolmentRequired()) await session.refresh();
    return done;
  }
  return { enrolmentRequired, afterEnrolment };
}
