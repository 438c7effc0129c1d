import { audit, auditRow, logEvent } from "../audit";
import type { Config } from "../config";
import { batch } from "../db/batch";
import { uniqueViolation } from "../db/client";
import {
  claimLinkFlow,
  deleteIdentity,
  exchangeGrant,
  findForProfile,
  insertFlow,
  insertIdentity,
  listIdentities,
  setGrant,
  takenUsernames,
  touchIdentity,
  useFlow,
} from "../db/identities";
import { totpIsOff } from "../db/mfa";
import type { OAuthFlow, User } from "../db/schema";
import { findUserById, insertUser } from "../db/users";
import type { Deps } from "../deps";
import { randomBytes, sha256Base64Url, toBase64Url } from "../encoding";
import { securityNotice } from "../mail";
import { Refusal } from "./errors";
import { issueMfaChallenge, type LoginResult } from "./login";
import { authorizationUrl, type FlowSecrets, finishSignIn, newFlowSecrets, type Profile, ProviderFailure, postsBack, providerOf } from "./providers";
import { type Issued, openSession, refusedSignIn } from "./sign-in";
import { type StepUpInput, stepUp } from "./step-up";
import type { AccessClaims } from "./tokens";
import { amrOf, NO_PASSWORD } from "./ways-in";

/**
 * Social sign-in and linking (docs/social-sign-in.md). Knows nothing of HTTP; the protocol is
 * auth/providers.ts. A flow is a D1 row from start to callback (single use, 10 minutes), bound to
 * the browser that started it by a random HttpOnly cookie whose SHA-256 the row keeps: a callback
 * from another browser (login CSRF) finds no flow.
 *
 * Identities are keyed by (issuer, subject), never by address. A new identity joins the account
 * with the same address only when the provider vouches for the address and the account proved it
 * too; anything else with that address is `account_exists` (sign in, then link). A social sign-in is
 * one factor ("fed"): with TOTP on, the second step follows (POST /login/mfa).
 */

const FLOW_TTL_MS = 10 * 60_000;
/** The one-time code the app exchanges right after the redirect. */
const GRANT_TTL_MS = 60_000;

/** Where the browser lands after a callback, and what it carries there (in the URL's fragment). */
export interface Landing {
  returnTo: string;
  /** Cookie mode, no second step: the session is open (the route sets the refresh cookie). */
  signedIn?: { user: User; issued: Issued };
  /** The app finishes with POST /oauth/exchange: a sign-in (bearer mode, or a second step due) or a link. */
  code?: { value: string; purpose: "sign_in" | "link" };
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
  if (!p) throw new Refusal("unknown_provider");
  return p;
}

/** Where the browser may be sent back: APP_URL (the default) or a page on an allowed app origin. */
export function returnTarget(config: Config, asked: string | undefined): string {
  if (!asked) {
    if (!config.APP_URL) throw new Refusal("validation_failed", undefined, { return_to: "is required: APP_URL is not set" });
    return config.APP_URL;
  }
  const allowed = new Set([...config.CORS_ORIGINS, ...(config.APP_URL ? [new URL(config.APP_URL).origin] : [])]);
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

/** GET /oauth/:provider/start: a sign-in flow from this browser. */
export async function startSignIn(deps: Deps, providerId: string, input: { useCookie: boolean; returnTo?: string }): Promise<Started> {
  const p = provider(deps.config, providerId);
  const returnTo = returnTarget(deps.config, input.returnTo);
  const secrets = newFlowSecrets(callbackUrl(deps.config, p.id));
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
export async function beginLink(deps: Deps, claims: AccessClaims, providerId: string, input: StepUpInput & { returnTo?: string }): Promise<string> {
  const p = provider(deps.config, providerId);
  const returnTo = returnTarget(deps.config, input.returnTo);
  await stepUp(deps, claims, "add_identity", input);
  const secrets = newFlowSecrets(callbackUrl(deps.config, p.id));
  await insertFlow(deps.db, {
    ...flowRow(secrets, new Date()),
    id: await sha256Base64Url(secrets.state),
    provider: p.id,
    purpose: "link",
    userId: claims.sub,
    sessionId: claims.sid,
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
  const url = await authorizationUrl(p, { state, codeVerifier: flow.codeVerifier, nonce: flow.nonce, redirectUri: callbackUrl(deps.config, p.id) });
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
    profile = await finishSignIn(config, p, params, { state, codeVerifier: flow.codeVerifier, nonce: flow.nonce, redirectUri: callbackUrl(config, p.id) });
  } catch (err) {
    if (!(err instanceof ProviderFailure)) throw err;
    await audit(deps, "social_sign_in_failed", { user_id: flow.userId, provider: p.id, reason: err.code, detail: err.detail.slice(0, 200) });
    return { returnTo: flow.returnTo, error: err.code };
  }
  if (flow.purpose === "link") return { returnTo: flow.returnTo, code: await leaveGrant(deps, flow, flow.userId ?? "", now, profile) };
  try {
    const { user, identityId } = await accountFor(deps, p.id, profile, now);
    const touched = touchIdentity(db, identityId, profile.email, profile.emailVerified, now);
    // A cookie set in the answer to a cross-site POST (Apple's form_post) is dropped by browsers
    // (SameSite): then the app's exchange, a same-site request, sets it.
    if (user.totpEnabledAt || !flow.useCookie || posted)
      return { returnTo: flow.returnTo, code: await leaveGrant(deps, flow, user.id, now, undefined, touched) };
    const opened = await openSession(deps, user, now, {
      amr: amrOf({ method: "social" }),
      condition: totpIsOff(db, user.id),
      after: { touched },
      detail: { method: p.id },
    });
    if (!opened.issued)
      return { returnTo: flow.returnTo, error: await refusedSignIn(deps, user.id, { code: "invalid_grant", reason: "changed_during_login" }) };
    return { returnTo: flow.returnTo, signedIn: { user, issued: opened.issued } };
  } catch (err) {
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
  return { value, purpose: flow.purpose };
}

/**
 * The account a provider's answer signs in to: the identity's own; else the account with the same
 * address, when both the provider and the account vouch for it (the identity is linked now); else a
 * new account, where sign-up is open. `account_exists` when an account has the address but cannot
 * be joined this way.
 */
async function accountFor(deps: Deps, providerId: string, profile: Profile, now: Date): Promise<{ user: User; identityId: string }> {
  const { db, config } = deps;
  const found = await findForProfile(db, profile.issuer, profile.subject, profile.email);
  if (found.linked) return disabledRefused({ user: found.linked.user, identityId: found.linked.identity.id });
  const identity = {
    id: crypto.randomUUID(),
    provider: providerId,
    issuer: profile.issuer,
    subject: profile.subject,
    email: profile.email,
    emailVerified: profile.emailVerified,
    createdAt: now,
  };
  const owner = found.byAddress;
  if (owner) {
    if (!profile.emailVerified || !owner.emailVerifiedAt) throw new Refusal("account_exists");
    const linked = { user_id: owner.id, provider: providerId, by: "verified_address" };
    await batch(db, { identity: insertIdentity(db, { ...identity, userId: owner.id }), audited: auditRow(deps, "identity_linked", linked) });
    logEvent(deps, "identity_linked", linked);
    securityNotice(deps, owner, `Sign-in with ${providerId} was linked to your account, because it vouches for this address`);
    return disabledRefused({ user: owner, identityId: identity.id });
  }
  if (config.REGISTRATION === "closed") throw new Refusal("registration_closed");
  const email = profile.emailVerified ? profile.email : null; // an address nobody vouches for is not copied
  if (config.REQUIRE_VERIFIED_EMAIL === "on" && !email)
    throw new Refusal("email_unverified", "The provider did not vouch for an address, and this service needs one");
  const user = await newAccount(deps, profile, email, now);
  const registered = { user_id: user.id, provider: providerId };
  try {
    await batch(db, {
      user: insertUser(db, user),
      identity: insertIdentity(db, { ...identity, userId: user.id }),
      audited: auditRow(deps, "register", registered),
    });
  } catch (err) {
    const index = uniqueViolation(err);
    if (!index) throw err;
    // Another callback for the same person won the race, or the address was taken meanwhile.
    const again = await findForProfile(db, profile.issuer, profile.subject, profile.email);
    if (again.linked) return disabledRefused({ user: again.linked.user, identityId: again.linked.identity.id });
    if (again.byAddress) throw new Refusal("account_exists");
    throw err;
  }
  logEvent(deps, "register", registered);
  return { user, identityId: identity.id };
}

function disabledRefused(found: { user: User; identityId: string }) {
  if (found.user.disabledAt) throw new Refusal("account_disabled");
  return found;
}

/** A new account without a password: a username from the provider's hints, free regardless of case. */
async function newAccount(deps: Deps, profile: Profile, email: string | null, now: Date): Promise<User> {
  const hint = profile.username ?? profile.email?.split("@")[0] ?? profile.name ?? "user";
  let stem = hint
    .normalize("NFKD")
    .replace(/[^A-Za-z0-9_]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, 24);
  if (stem.length < 3) stem = `user${stem}`;
  const tail = () =>
    toBase64Url(randomBytes(4))
      .replace(/[^A-Za-z0-9]/g, "")
      .slice(0, 5)
      .toLowerCase();
  const candidates = [stem, `${stem}_${tail()}`, `${stem}_${tail()}`];
  const taken = await takenUsernames(deps.db, candidates);
  const username = candidates.find((c) => !taken.has(c.toLowerCase())) ?? `${stem}_${tail()}${tail()}`;
  return {
    id: crypto.randomUUID(),
    username,
    email,
    emailVerifiedAt: email ? now : null,
    verifyBy: null,
    disabledAt: null,
    passwordHash: NO_PASSWORD,
    roles: ["user"],
    failedLogins: 0,
    lastFailedLoginAt: null,
    lockedUntil: null,
    lockAuditedUntil: null,
    passwordVersion: 0,
    sessionEpoch: 0,
    epochKeptSession: null,
    totpSecret: null,
    totpEnabledAt: null,
    totpLastStep: 0,
    recoveryCodes: null,
    passwordSetAt: null,
    passwordSetBy: null,
    emailSetAt: email ? now : null,
    emailSetBy: null,
    totpEnabledBy: null,
    createdAt: now,
    updatedAt: now,
  };
}

/**
 * POST /oauth/exchange: the callback's one-time code, once, within a minute. A sign-in answers as
 * POST /login does (tokens, or the second step's challenge while TOTP is on); a link needs the
 * access token of the session that asked for it, and answers the identity.
 */
export async function exchange(
  deps: Deps,
  code: string,
  claims: AccessClaims | undefined,
): Promise<LoginResult | { linked: { id: string; provider: string } }> {
  const { db } = deps;
  const now = new Date();
  const flow = await exchangeGrant(db, await sha256Base64Url(code), now);
  if (!flow?.grantUserId) throw new Refusal("invalid_grant");
  if (flow.purpose === "link") return { linked: await completeLink(deps, flow, claims, now) };
  const user = await findUserById(db, flow.grantUserId);
  if (!user) throw new Refusal("invalid_grant");
  if (user.disabledAt) throw new Refusal("account_disabled");
  if (user.totpEnabledAt) return { user, challenge: await issueMfaChallenge(deps, user, now, {}, "fed") };
  const opened = await openSession(deps, user, now, { amr: amrOf({ method: "social" }), condition: totpIsOff(db, user.id), detail: { method: flow.provider } });
  if (!opened.issued) throw new Refusal(await refusedSignIn(deps, user.id, { code: "invalid_grant", reason: "changed_during_login" }));
  return { user, issued: opened.issued };
}

async function completeLink(deps: Deps, flow: OAuthFlow, claims: AccessClaims | undefined, now: Date) {
  // Only the session that asked: a victim lured into finishing an attacker's link flow has no such token.
  if (!claims || claims.sub !== flow.grantUserId || claims.sid !== flow.sessionId || !flow.linked)
    throw new Refusal("invalid_grant", "Finish linking from the session that started it, with its access token");
  const user = await findUserById(deps.db, claims.sub);
  if (!user) throw new Refusal("invalid_grant");
  const id = crypto.randomUUID();
  const row = { id, userId: user.id, provider: flow.provider, ...flow.linked, createdAt: now, addedBy: claims.sid };
  const linked = { user_id: user.id, session_id: claims.sid, provider: flow.provider, by: "session" };
  try {
    await batch(deps.db, { identity: insertIdentity(deps.db, row), audited: auditRow(deps, "identity_linked", linked) });
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
export async function unlinkIdentity(deps: Deps, claims: AccessClaims, id: string, input: StepUpInput): Promise<void> {
  if (!(await listIdentities(deps.db, claims.sub)).some((i) => i.id === id)) throw new Refusal("not_found", "No such identity");
  const { user } = await stepUp(deps, claims, "remove_identity", input);
  const [removed] = await deleteIdentity(deps.db, id, user.id);
  if (!removed) {
    const still = (await listIdentities(deps.db, user.id)).some((i) => i.id === id);
    throw still ? new Refusal("last_way_in") : new Refusal("not_found", "No such identity");
  }
  await audit(deps, "identity_unlinked", { user_id: user.id, session_id: claims.sid, provider: removed.provider });
  securityNotice(deps, user, `Sign-in with ${removed.provider} was unlinked from your account`);
}
