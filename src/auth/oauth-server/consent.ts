import { audit } from "../../audit";
import type { Config } from "../../config";
import { consentOf, type Decision, decideRequest, firstPartySession, type Holder, holdRequest, openRequest, rememberConsent } from "../../db/oauth-requests";
import type { OAuthClient, OAuthRequest } from "../../db/oauth-server-tables";
import type { Deps } from "../../deps";
import { randomBytes, sha256Base64Url, toBase64Url } from "../../encoding";
import { log } from "../../log";
import { Refusal, sessionEnded } from "../core/errors";
import { usableClient } from "./clients";
import { grantLifetime } from "./lifetime";
import { scopesOf } from "./policy";
import { withParams } from "./redirects";
import { refreshAllowed } from "./token";

/**
 * The app's consent page answers a stored authorization request (authorize.ts): what is asked, then
 * approve or deny, once. The first signed-in session that opens a request holds it; only a later
 * sign-in of the same user (what prompt=login or max_age asks for) may take it over. Each decision is
 * one conditional statement (db/oauth-requests.ts), so a replayed or racing approval gets no code.
 */

/** The signed-in caller, from a verified first-party access token. */
export interface Caller {
  sub: string;
  sid: string;
}

const ID_FORMAT = /^[A-Za-z0-9_-]{43}$/;
const notFound = () => new Refusal("not_found", "No such authorization request, or it was decided, expired or is another session's");

/** What each scope means, in the words a consent page shows; a deployment's own ones as OAUTH_SCOPE_DESCRIPTIONS says (else by name). */
const SCOPE_WORDS: Record<string, string> = {
  openid: "Know who you are on this service (your account id)",
  profile: "See your username",
  email: "See your email address and whether it is verified",
  offline_access: "Stay connected while you are away, until you disconnect it",
};

export const describeScope = (config: Config) => (name: string) => ({
  name,
  description: SCOPE_WORDS[name] ?? config.OAUTH_SCOPE_DESCRIPTIONS[name] ?? name,
});

async function requestKey(id: string) {
  if (!ID_FORMAT.test(id)) throw notFound();
  return sha256Base64Url(id);
}

/** The caller's session as D1 holds it (its sign-in time is D1's, never the token's claim). */
async function holderOf(deps: Deps, caller: Caller, now: Date): Promise<Holder & { amr: string[] }> {
  const session = await firstPartySession(deps.db, caller.sid, caller.sub, now);
  if (!session) throw sessionEnded();
  return { sessionId: session.id, userId: session.userId, authTime: session.authTime, amr: session.amr, now };
}

/** Whether the request asks for a newer sign-in than the session's: prompt=login, or max_age exceeded. */
function needsSignIn(request: OAuthRequest, authTime: Date, now: Date) {
  const signedInSince = authTime.getTime() > request.createdAt.getTime();
  if (signedInSince) return false;
  if (request.prompt?.split(" ").includes("login")) return true;
  return request.maxAge !== null && now.getTime() - authTime.getTime() > request.maxAge * 1000;
}

/**
 * Whether the user already agreed this client may have all that is asked, for this resource. Only
 * where the client's identity is assured (RFC 8252 8.6): a confidential client (its code is useless
 * without its secret), or an https redirect (only that site receives the code). A public client on a
 * loopback or private-use redirect is asked every time: any app on the device can claim its id.
 */
async function remembered(deps: Deps, request: OAuthRequest, userId: string, client: OAuthClient) {
  if (client.secretHash === null && !request.redirectUri.startsWith("https://")) return false;
  const consent = await consentOf(deps.db, userId, request.clientId, request.resource ?? "");
  const given = consent?.current ? scopesOf(consent.scope) : [];
  return scopesOf(request.scope).every((s) => given.includes(s));
}

/**
 * Adds the request's scopes to what the user agreed for this client and resource. Each write holds
 * only if the row is still as read, so approvals at once all land: a try fails only when another
 * approval's write landed, so n approvals at once need at most n tries each.
 */
const REMEMBER_TRIES = 5;
async function remember(deps: Deps, userId: string, request: OAuthRequest, now: Date) {
  const resource = request.resource ?? "";
  for (let attempt = 0; attempt < REMEMBER_TRIES; attempt++) {
    const was = await consentOf(deps.db, userId, request.clientId, resource);
    // A consent from before the user's sessions last ended counts for nothing: start again from this one.
    const kept = was?.current ? scopesOf(was.scope) : [];
    const scope = [...new Set([...kept, ...scopesOf(request.scope)])].join(" ");
    if (await rememberConsent(deps.db, { userId, clientId: request.clientId, resource, scope, now }, was?.scope)) return;
  }
  // Only remembering failed (the approval stands): the next request asks again.
  log("oauth_consent_not_remembered", { request_id: deps.requestId, user_id: userId, client_id: request.clientId }, "warn");
}

function redirectOrigin(uri: string) {
  const url = new URL(uri);
  return url.origin !== "null" ? url.origin : `${url.protocol}${url.host ? `//${url.host}` : ""}`;
}

const back = (deps: Deps, request: OAuthRequest, params: Record<string, string>) =>
  withParams(request.redirectUri, { ...params, state: request.state, iss: deps.config.ISSUER });

/** GET: holds the request for the caller's session and says what it asks. */
export async function describeRequest(deps: Deps, caller: Caller, id: string, now = new Date()) {
  const key = await requestKey(id);
  const holder = await holderOf(deps, caller, now);
  const request = await holdRequest(deps.db, key, holder);
  if (!request) throw notFound();
  const client = await usableClient(deps, request.clientId);
  if (!client) throw notFound();
  const prompts = request.prompt?.split(" ") ?? [];
  return {
    id,
    // Registered by this deployment (an admin, its configuration), or self-described (RFC 7591, a
    // metadata document): the page should say that the latter's name and site are its own claims.
    client: { id: client.id, name: client.name, uri: client.uri, verified: client.source === "admin" || client.source === "config" },
    scopes: scopesOf(request.scope).map(describeScope(deps.config)),
    lifetime: grantLifetime(deps.config, refreshAllowed(client, scopesOf(request.scope))),
    resource: request.resource,
    redirect_origin: redirectOrigin(request.redirectUri),
    prompt: request.prompt,
    login_required: needsSignIn(request, holder.authTime, now),
    consent_remembered: !prompts.includes("consent") && (await remembered(deps, request, holder.userId, client)),
    expires_at: request.expiresAt.toISOString(),
  };
}

/** Writes a refusal (once) and says where the browser goes with it. */
async function refuse(deps: Deps, key: string, holder: Holder | null, error: "access_denied" | "login_required" | "consent_required", now: Date) {
  const decided = await decideRequest(deps.db, key, holder, now, { approved: false });
  if (!decided) throw notFound();
  await audit(deps, "oauth_request_denied", { user_id: holder?.userId, session_id: holder?.sessionId, client_id: decided.clientId, reason: error });
  return { redirect_to: back(deps, decided, { error }) };
}

/**
 * POST approve: by the holding session (or one that may take it over), once. A request that needs a
 * newer sign-in is refused with reauthentication_required (prompt=none: login_required to the app);
 * prompt=none without a remembered consent covering it: consent_required to the app.
 */
export async function approveRequest(deps: Deps, caller: Caller, id: string, now = new Date()) {
  const key = await requestKey(id);
  const holder = await holderOf(deps, caller, now);
  const request = await holdRequest(deps.db, key, holder);
  const client = request && (await usableClient(deps, request.clientId));
  if (!request || !client) throw notFound();
  const silent = request.prompt === "none";
  if (needsSignIn(request, holder.authTime, now)) {
    if (silent) return refuse(deps, key, holder, "login_required", now);
    throw new Refusal("reauthentication_required", "This app asks for a recent sign-in: sign in again, then approve");
  }
  if (silent && !(await remembered(deps, request, holder.userId, client))) return refuse(deps, key, holder, "consent_required", now);
  const code = toBase64Url(randomBytes(32));
  const decision: Decision = {
    approved: true,
    codeHash: await sha256Base64Url(code),
    codeExpiresAt: new Date(now.getTime() + deps.config.OAUTH_CODE_TTL * 1000),
    authTime: holder.authTime,
    amr: holder.amr,
  };
  const decided = await decideRequest(deps.db, key, holder, now, decision);
  if (!decided) throw notFound(); // decided meanwhile (a replay, a race): no second code
  await remember(deps, holder.userId, decided, now);
  await audit(deps, "oauth_request_approved", { user_id: holder.userId, session_id: holder.sessionId, client_id: decided.clientId });
  return { redirect_to: back(deps, decided, { code }) };
}

/**
 * POST deny: with the holder's bearer, access_denied. Without one (the user would not sign in), the
 * request id alone: login_required for prompt=none, access_denied otherwise.
 */
export async function denyRequest(deps: Deps, caller: Caller | null, id: string, now = new Date()) {
  const key = await requestKey(id);
  if (caller) return refuse(deps, key, await holderOf(deps, caller, now), "access_denied", now);
  const request = await openRequest(deps.db, key, now);
  if (!request) throw notFound();
  return refuse(deps, key, null, request.prompt === "none" ? "login_required" : "access_denied", now);
}
