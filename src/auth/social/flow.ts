import { audit, auditRow, auditRowIf, logEvent } from "../../audit";
import { appOrigins, type Config } from "../../config";
import { batch } from "../../db/batch";
import { overloaded, uniqueViolation } from "../../db/client";
import { endGuest, upgradedAt } from "../../db/guests";
import {
  claimLinkFlow,
  deleteIdentity,
  exchangeGrant,
  identityStored,
  insertFlow,
  insertIdentity,
  listIdentities,
  setGrant,
  touchIdentity,
  useFlow,
} from "../../db/identities";
import type { OAuthFlow, User } from "../../db/schema";
import { findUserById } from "../../db/users";
import type { Deps } from "../../deps";
import { randomBytes, sha256Base64Url, toBase64Url } from "../../encoding";
import { decideOrHandOff, decideSignIn, type SignInResult } from "../core/decision";
import { Refusal } from "../core/errors";
import type { Issued } from "../core/sign-in";
import { proveCeremony, type StepUpAsk, type StepUpInput, stepUp } from "../core/step-up";
import { securityNotice } from "../mail/notices";
import { accountFor } from "./accounts";
import {
  authorizationUrl,
  type FlowSecrets,
  finishSignIn,
  newFlowSecrets,
  type Profile,
  ProviderFailure,
  postsBack,
  providerOf,
  providerOff,
} from "./providers";

/**
 * Social sign-in and linking (docs/social-sign-in.md). Knows nothing of HTTP; the protocol is
 * auth/social/providers.ts. A flow is a D1 row from start to callback (single use, 10 minutes), bound to
 * the browser that started it by a random HttpOnly cookie whose SHA-256 the row keeps: a callback
 * from another browser (login CSRF) finds no flow. The code the callback leaves for the app is
 * bound the same way: its exchange needs the secret whose S256 the app gave at the start (the
 * client keeps it per tab), or else that cookie; a code carried into another browser is refused.
 *
 * Identities are keyed by (issuer, subject), never by address: a new identity whose address an
 * account has is `account_exists` (sign in to it, then link). A social sign-in is one factor
 * ("fed"): with TOTP on, the second step follows (POST /login/mfa).
 */

const FLOW_TTL_MS = 10 * 60_000;
const NOT_HERE = "This sign-in code is unknown, used, expired, or was not started in this browser: sign in again";
/** The one-time code the app exchanges right after the redirect. */
export const GRANT_TTL_MS = 60_000;

/** Where the browser lands after a callback, and what it carries there (in the URL's fragment). */
export interface Landing {
  returnTo: string;
  /** Cookie mode, no second step: the session is open (the route sets the refresh cookie). */
  signedIn?: { user: User; issued: Issued };
  /**
   * The app finishes with POST /oauth/exchange: a sign-in (bearer mode, or a second step due) or a
   * link. `byCookie`: a sign-in started without a code_challenge, whose exchange must carry the
   * flow's cookie (the route sets it, scoped to the exchange).
   */
  code?: { value: string; purpose: "sign_in" | "link"; byCookie: boolean };
  /** A code the app can show (oauth_error). */
  error?: string;
}

/** A flow that left this API for the provider: the URL, and the cookie value that binds it to this browser. */
export interface Started {
  url: URL;
  browser: string;
  postsBack: boolean;
}

const random = () => toBase64Url(randomBytes(32));
const base = (config: Config) => config.ISSUER.replace(/\/$/, "");
export const callbackUrl = (config: Config, provider: string) => `${base(config)}/oauth/${provider}/callback`;

function provider(config: Config, id: string) {
  const p = providerOf(config, id);
  if (!p) throw new Refusal(providerOff(config, id) ? "provider_unavailable" : "unknown_provider");
  return p;
}

/** Where the browser may be sent back: APP_URL (the default) or a page on an allowed app origin. */
export function returnTarget(config: Config, asked: string | undefined): string {
  if (!asked) {
    if (!config.APP_URL) throw new Refusal("validation_failed", undefined, { return_to: "is required: APP_URL is not set" });
    return config.APP_URL;
  }
  const allowed = appOrigins(config);
  let url: URL;
  try {
    url = new URL(asked);
  } catch {
    throw new Refusal("validation_failed", undefined, { return_to: "must be an absolute URL" });
  }
  if (!allowed.has(url.origin))
    throw new Refusal("validation_failed", undefined, { return_to: "must be a page of an allowed app origin (APP_URL, CORS_ORIGINS)" });
  url.hash = "";
  return url.href;
}

/**
 * GET /oauth/:provider/start: a sign-in flow from this browser. `codeChallenge`: the S256 of a
 * secret the app keeps (the client's signInWith, per tab); then only that secret exchanges the code.
 */
export async function startSignIn(deps: Deps, providerId: string, input: { useCookie: boolean; returnTo?: string; codeChallenge?: string }): Promise<Started> {
  const p = provider(deps.config, providerId);
  const returnTo = returnTarget(deps.config, input.returnTo);
  const secrets = newFlowSecrets(callbackUrl(deps.config, p.id), deps.config.SOCIAL_MAX_AGE);
  const url = await authorizationUrl(p, secrets);
  const browser = random();
  const now = new Date();
  await insertFlow(deps.db, {
    ...flowRow(secrets, now),
    id: await sha256Base64Url(secrets.state),
    provider: p.id,
    purpose: "sign_in",
    browser: await sha256Base64Url(browser),
    useCookie: input.useCookie,
    exchangeChallenge: input.codeChallenge ?? null,
    returnTo,
  });
  return { url, browser, postsBack: postsBack(p) };
}

const flowRow = (s: FlowSecrets, now: Date) => ({
  codeVerifier: s.codeVerifier,
  nonce: s.nonce,
  createdAt: now,
  expiresAt: new Date(now.getTime() + FLOW_TTL_MS),
});

/**
 * POST /me/identities/:provider/link: after the step-up (add_identity), a link flow for this session.
 * Answers the URL the browser opens (GET /oauth/:provider/start?link=...), which binds it to that
 * browser; the link completes only when this session exchanges the callback's code.
 */
export async function beginLink(deps: Deps, ask: StepUpAsk<"add_identity">, providerId: string, input: StepUpInput & { returnTo?: string }): Promise<string> {
  const p = provider(deps.config, providerId);
  const returnTo = returnTarget(deps.config, input.returnTo);
  const proof = await stepUp(deps, ask, input);
  const secrets = newFlowSecrets(callbackUrl(deps.config, p.id), deps.config.SOCIAL_MAX_AGE);
  await insertFlow(deps.db, {
    ...flowRow(secrets, new Date()),
    id: await sha256Base64Url(secrets.state),
    provider: p.id,
    purpose: "link",
    userId: proof.userId,
    sessionId: proof.sessionId, // the exchange must come from this session (completeLink)
    browser: "",
    useCookie: false,
    returnTo,
  });
  return `${base(deps.config)}/oauth/${p.id}/start?link=${encodeURIComponent(secrets.state)}`;
}

/** GET /oauth/:provider/start?link=...: the browser claims a link flow (once, while fresh) and goes on to the provider. */
export async function claimLink(deps: Deps, providerId: string, state: string): Promise<Started> {
  const p = provider(deps.config, providerId);
  const browser = random();
  const [flow] = await claimLinkFlow(deps.db, await sha256Base64Url(state), p.id, await sha256Base64Url(browser), new Date());
  if (!flow) throw new Refusal("invalid_grant", "This link request is unknown, used or expired: start again from your security settings");
  const redirectUri = callbackUrl(deps.config, p.id);
  const url = await authorizationUrl(p, { state, codeVerifier: flow.codeVerifier, nonce: flow.nonce, redirectUri, maxAge: deps.config.SOCIAL_MAX_AGE });
  return { url, browser, postsBack: postsBack(p) };
}

/**
 * The provider's callback: the flow its state names, from this browser (used once); the provider's
 * answer checked in full; then the account, and where the browser goes with what.
 */
export async function completeCallback(deps: Deps, providerId: string, params: URLSearchParams, browser: string | undefined, posted = false): Promise<Landing> {
  const { db, config } = deps;
  const fallback = config.APP_URL;
  const p = providerOf(config, providerId);
  if (!p && providerOff(config, providerId)) {
    logEvent(deps, "social_sign_in_failed", { provider: providerId, reason: "provider_unavailable" });
    return { returnTo: fallback, error: "provider_unavailable" };
  }
  const state = params.get("state");
  const now = new Date();
  const flow = p && state && browser ? await useFlow(db, await sha256Base64Url(state), p.id, await sha256Base64Url(browser), now) : undefined;
  if (!p || !state || !flow) {
    // No state, a forged or replayed one, or another browser's: nothing is asked of the provider.
    logEvent(deps, "social_sign_in_failed", { provider: providerId, reason: !state ? "no_state" : browser ? "unknown_state" : "no_flow_cookie" });
    return { returnTo: fallback, error: "invalid_state" };
  }
  let profile: Profile;
  try {
    const secrets = { state, codeVerifier: flow.codeVerifier, nonce: flow.nonce, redirectUri: callbackUrl(config, p.id), maxAge: config.SOCIAL_MAX_AGE };
    profile = await finishSignIn(config, p, params, secrets);
  } catch (err) {
    if (!(err instanceof ProviderFailure)) throw err;
    await audit(deps, "social_sign_in_failed", { user_id: flow.userId, provider: p.id, reason: err.code, detail: err.detail.slice(0, 200) });
    return { returnTo: flow.returnTo, error: err.code };
  }
  try {
    if (flow.purpose === "link") return { returnTo: flow.returnTo, code: await leaveGrant(deps, flow, flow.userId ?? "", now, profile) };
    const { user, identityId } = await accountFor(deps, p.id, profile, now);
    const touched = touchIdentity(db, identityId, profile.email, profile.emailVerified, now);
    // Bearer mode, a second step due, or a cookie set in the answer to a cross-site POST (Apple's
    // form_post), which browsers drop (SameSite): the app's exchange, a same-site request, finishes.
    const decided = await decideOrHandOff(deps, user, { kind: "social" }, now, {
      mayOpen: flow.useCookie && !posted,
      session: { after: { touched }, detail: { method: p.id } },
      changed: "invalid_grant",
    });
    if (decided === "hand_off") return { returnTo: flow.returnTo, code: await leaveGrant(deps, flow, user.id, now, undefined, touched) };
    return { returnTo: flow.returnTo, signedIn: decided };
  } catch (err) {
    if (overloaded(err)) return { returnTo: flow.returnTo, error: "temporarily_unavailable" }; // the state is spent: a 503's retry could not work
    if (!(err instanceof Refusal)) throw err;
    await audit(deps, "social_sign_in_failed", { provider: p.id, reason: err.code });
    return { returnTo: flow.returnTo, error: err.code };
  }
}

/** Leaves the one-time code on the flow (with a pending link's identity): what the app exchanges. */
async function leaveGrant(deps: Deps, flow: OAuthFlow, userId: string, now: Date, linked?: Profile, also?: ReturnType<typeof touchIdentity>) {
  const value = random();
  const identity = linked && { issuer: linked.issuer, subject: linked.subject, email: linked.email, emailVerified: linked.emailVerified };
  const grant = { hash: await sha256Base64Url(value), userId, linked: identity, expiresAt: new Date(now.getTime() + GRANT_TTL_MS) };
  await batch(deps.db, { grant: setGrant(deps.db, flow.id, grant), touched: also });
  return { value, purpose: flow.purpose, byCookie: flow.purpose === "sign_in" && !flow.exchangeChallenge };
}

/**
 * POST /oauth/exchange: the callback's one-time code, once, within a minute. A sign-in is bound to
 * the browser that started it: the secret whose S256 the start was given (code_verifier), or else
 * the flow's cookie; a code carried into another browser (a link to the app with an attacker's
 * code) finds nothing. It answers as POST /login does (tokens, or the second step's challenge while
 * TOTP is on). A link needs the access token of the session that asked for it, and answers the identity.
 */
export async function exchange(
  deps: Deps,
  input: { code: string; codeVerifier?: string; browser?: string },
  ask: StepUpAsk<"add_identity"> | undefined,
): Promise<SignInResult | { linked: { id: string; provider: string } }> {
  const { db } = deps;
  const now = new Date();
  const proof = {
    challenge: input.codeVerifier ? await sha256Base64Url(input.codeVerifier) : undefined, // S256, as PKCE's
    browser: input.browser ? await sha256Base64Url(input.browser) : undefined,
  };
  const flow = await exchangeGrant(db, await sha256Base64Url(input.code), now, proof);
  if (!flow?.grantUserId) throw new Refusal("invalid_grant", NOT_HERE);
  if (flow.purpose === "link") return { linked: await completeLink(deps, flow, ask, now) };
  const user = await findUserById(db, flow.grantUserId);
  if (!user) throw new Refusal("invalid_grant");
  return decideSignIn(deps, user, { kind: "social" }, now, { session: { detail: { method: flow.provider } }, changed: "invalid_grant" });
}

async function completeLink(deps: Deps, flow: OAuthFlow, ask: StepUpAsk<"add_identity"> | undefined, now: Date) {
  // Only the session that asked (add_identity's second half): a victim lured into finishing an
  // attacker's link flow has no such token, nor has another session of the same user.
  const proof = ask && proveCeremony(ask, { userId: flow.grantUserId, sessionId: flow.sessionId });
  if (!proof?.sessionId || !flow.linked) throw new Refusal("invalid_grant", "Finish linking from the session that started it, with its access token");
  const user = await findUserById(deps.db, proof.userId);
  if (!user) throw new Refusal("invalid_grant");
  const id = crypto.randomUUID();
  const row = { id, userId: user.id, provider: flow.provider, ...flow.linked, createdAt: now, addedBy: proof.sessionId };
  const linked = { user_id: user.id, session_id: proof.sessionId, provider: flow.provider, by: "session" };
  try {
    const { member } = await batch(deps.db, {
      identity: insertIdentity(deps.db, row),
      audited: auditRow(deps, "identity_linked", linked),
      member: endGuest(deps.db, user.id, now, identityStored(id)), // a guest's first way in makes it a member (docs/guests.md)
      upgraded: auditRowIf(deps, "guest_upgraded", { ...linked, with: "identity" }, upgradedAt(deps.db, user.id, now)),
    });
    if (member[0]) logEvent(deps, "guest_upgraded", { ...linked, with: "identity" });
  } catch (err) {
    if (!uniqueViolation(err)) throw err;
    const mine = (await listIdentities(deps.db, user.id)).find((i) => i.issuer === row.issuer && i.subject === row.subject);
    if (mine) return { id: mine.id, provider: mine.provider }; // linked already: the same answer
    throw new Refusal("identity_in_use");
  }
  logEvent(deps, "identity_linked", linked);
  securityNotice(deps, user, `Sign-in with ${flow.provider} was linked to your account`);
  return { id, provider: flow.provider };
}

/** DELETE /me/identities/:id: after the step-up (remove_identity), only while another way in remains. */
export async function unlinkIdentity(deps: Deps, ask: StepUpAsk<"remove_identity">, id: string, input: StepUpInput): Promise<void> {
  if (!(await listIdentities(deps.db, ask.claims.sub)).some((i) => i.id === id)) throw new Refusal("not_found", "No such identity");
  const { user, sessionId } = await stepUp(deps, ask, input);
  const [removed] = await deleteIdentity(deps.db, id, user.id);
  if (!removed) {
    const still = (await listIdentities(deps.db, user.id)).some((i) => i.id === id);
    throw still ? new Refusal("last_way_in") : new Refusal("not_found", "No such identity");
  }
  await audit(deps, "identity_unlinked", { user_id: user.id, session_id: sessionId, provider: removed.provider });
  securityNotice(deps, user, `Sign-in with ${removed.provider} was unlinked from your account`);
}
