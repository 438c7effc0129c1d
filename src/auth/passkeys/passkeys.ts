import type {
  AuthenticationResponseJSON,
  RegistrationResponseJSON,
  VerifiedAuthenticationResponse,
  VerifiedRegistrationResponse,
} from "@simplewebauthn/server";
import { audit, auditRowIf, logEvent } from "../../audit";
import { type Config, ConfigError } from "../../config";
import { batch } from "../../db/batch";
import { endGuest, upgradedAt } from "../../db/guests";
import { anotherWayIn } from "../../db/identities";
import { consumeChallenge, insertChallenge } from "../../db/mfa";
import {
  counterAdvances,
  counterMayAdvance,
  deletePasskey,
  findOwnPasskey,
  findPasskeyWithOwner,
  insertPasskey,
  listPasskeys as listPasskeyRows,
  passkeyIdsOf,
  passkeyStoredAt,
  recordPasskeyUse,
} from "../../db/passkeys";
import type { Passkey } from "../../db/schema";
import { isSessionLive, sessionExists, sessionLive } from "../../db/sessions";
import { anotherSecondFactor, keepsAnotherSecondFactor, selectUser } from "../../db/users";
import type { Deps } from "../../deps";
import { fromBase64Url, randomBytes, toBase64Url } from "../../encoding";
import { log } from "../../log";
import { decideSignIn, type SignedIn } from "../core/decision";
import { Refusal, sessionEnded } from "../core/errors";
import { mfaRequiredFor } from "../core/mfa-policy";
import { challengeSession, proveCeremony, type StepUpAsk, type StepUpInput, sessionChallenge, stepUp } from "../core/step-up";
import type { AccessClaims } from "../core/tokens";
import { notMeLink } from "../mail/links";
import { securityNotice } from "../mail/notices";

/**
 * Passkeys (WebAuthn) through @simplewebauthn/server: registration by a signed-in user, and sign-in
 * without a password (discoverable credentials, user verification required, so a passkey is a
 * complete sign-in on its own: no TOTP step after it). Knows nothing of HTTP.
 *
 * Challenges are ours (random, stored in D1, single-use, CHALLENGE_TTL seconds); the challenge a
 * response signed is read from its clientDataJSON and used up (one conditional statement) before
 * the response is verified, so no response is verified twice. The relying-party id and the allowed
 * page origins come from config and are checked by the library, as are signature counters.
 */

/** The relying party: its id (a domain), name, and the page origins allowed to use passkeys. */
export function relyingParty(config: Config) {
  const origins = config.WEBAUTHN_ORIGINS.length ? config.WEBAUTHN_ORIGINS : config.CORS_ORIGINS;
  const first = origins[0];
  if (!first) throw new ConfigError(["WEBAUTHN_ORIGINS: passkeys need the app's origin (or set CORS_ORIGINS)"]);
  return { id: config.WEBAUTHN_RP_ID || new URL(first).hostname, name: config.APP_NAME, origins };
}

/** The WebAuthn user handle: the user id's bytes, as the authenticator keeps and returns them (base64url). */
const userHandleOf = (userId: string) => toBase64Url(new TextEncoder().encode(userId));

const newChallenge = () => toBase64Url(randomBytes(32));

/** The signature counter in authenticator data (bytes 33 to 36, after the rp id hash and flags), or null. */
function signCountOf(authenticatorData: string): number | null {
  const bytes = fromBase64Url(authenticatorData);
  return bytes && bytes.length >= 37 ? new DataView(bytes.buffer).getUint32(33) : null;
}

/**
 * The library with its ASN.1 and X.509 parsers (most of the bundle's growth): loaded on the first
 * passkey request, so a cold start for any other route does not evaluate it.
 */
const webauthn = () => import("@simplewebauthn/server");

/**
 * The challenge a browser response signed (clientDataJSON is base64url JSON; the library checks it
 * in full later), or null when it cannot be read.
 */
function challengeOf(clientDataJSON: string): string | null {
  try {
    const { challenge } = JSON.parse(new TextDecoder().decode(fromBase64Url(clientDataJSON) ?? undefined)) as { challenge?: unknown };
    return typeof challenge === "string" && challenge.length <= 100 ? challenge : null;
  } catch {
    return null;
  }
}

/** Passkeys one account may hold: each is a way in, listed in every registration's options. */
export const MAX_PASSKEYS = 20;
const tooMany = () => new Refusal("too_many_passkeys", `An account has at most ${MAX_PASSKEYS} passkeys: remove one first`);

async function storeChallenge(deps: Deps, id: string, purpose: "passkey_register" | "passkey_login", userId: string | null, now: Date) {
  await insertChallenge(deps.db, { id, purpose, userId, createdAt: now, expiresAt: new Date(now.getTime() + deps.config.CHALLENGE_TTL * 1000) }).run();
}

/**
 * Options for navigator.credentials.create(): a discoverable credential with user verification.
 * A passkey signs in on its own, so adding one takes the step-up add_passkey (auth/core/ways-in.ts): the
 * password and, while TOTP is on, a code. The challenge then carries that check for CHALLENGE_TTL.
 */
export async function registrationOptions(deps: Deps, ask: StepUpAsk<"add_passkey">, check: StepUpInput) {
  const rp = relyingParty(deps.config);
  const { user, sessionId } = await stepUp(deps, ask, check);
  const existing = await passkeyIdsOf(deps.db, user.id);
  if (existing.length >= MAX_PASSKEYS) throw tooMany();
  // The challenge names this session: only it verifies the passkey (auth/core/step-up.ts proveCeremony).
  const challenge = await sessionChallenge(sessionId ?? "");
  const { generateRegistrationOptions } = await webauthn();
  const options = await generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    // An account without a username (a guest, one made by mail) shows its address, else a name for the device's list.
    userName: user.username || user.email || `${deps.config.APP_NAME} account`,
    userID: Uint8Array.from(new TextEncoder().encode(user.id)),
    challenge: fromBase64Url(challenge)!,
    timeout: deps.config.CHALLENGE_TTL * 1000,
    // The same authenticator does not register twice for one account.
    excludeCredentials: existing.map((p) => ({ id: p.id, transports: p.transports ?? undefined })),
    // A fresh object each time: the library writes into it.
    authenticatorSelection: { residentKey: "required", userVerification: "required" },
  });
  await storeChallenge(deps, options.challenge, "passkey_register", user.id, new Date());
  return options;
}

/** Verifies a new credential against the challenge this session was given and stores its public key. */
export async function verifyRegistration(deps: Deps, ask: StepUpAsk<"add_passkey">, response: RegistrationResponseJSON, name?: string): Promise<Passkey> {
  const { db } = deps;
  const { claims } = ask;
  const rp = relyingParty(deps.config);
  const now = new Date();
  const challenge = challengeOf(response.response.clientDataJSON);
  // The second half of add_passkey: only the session whose step-up the challenge carries.
  const proof = challenge ? proveCeremony(ask, { userId: claims.sub, sessionId: await challengeSession(challenge, claims.sid) }) : null;
  // Another user's or session's challenge, an expired or a used one: refused before any verification.
  const [used] = proof && challenge ? await consumeChallenge(db, challenge, "passkey_register", now, crypto.randomUUID(), { userId: proof.userId }) : [];
  if (!used || !proof) {
    // The same registration sent again by this session (its answer lost): the passkey it stored is the answer.
    const stored = await findOwnPasskey(db, response.id, claims.sub);
    if (stored?.addedBy === claims.sid && now.getTime() - stored.createdAt.getTime() <= deps.config.RETRY_GRACE * 1000) return stored;
    throw new Refusal("invalid_challenge");
  }
  const { verifyRegistrationResponse } = await webauthn();
  let verified: VerifiedRegistrationResponse;
  try {
    verified = await verifyRegistrationResponse({
      response,
      expectedChallenge: challenge!,
      expectedOrigin: rp.origins,
      expectedRPID: rp.id,
      requireUserVerification: true,
    });
  } catch (err) {
    log("passkey_rejected", { request_id: deps.requestId, user_id: claims.sub, message: (err as Error).message }, "warn");
    throw new Refusal("passkey_rejected");
  }
  if (!verified.verified) throw new Refusal("passkey_rejected");
  const info = verified.registrationInfo;
  const row = {
    id: info.credential.id,
    userId: proof.userId,
    publicKey: toBase64Url(info.credential.publicKey),
    counter: info.credential.counter,
    transports: info.credential.transports ?? null,
    deviceType: info.credentialDeviceType,
    backedUp: info.credentialBackedUp,
    name: name?.trim() || "Passkey",
    createdAt: now,
    addedBy: claims.sid,
    lastUsedAt: null,
  };
  // The passkey with its audit row and its "this was not me" link, and the owner's address for the
  // notice: one round trip.
  const added = { user_id: claims.sub, session_id: claims.sid, passkey: row.id.slice(0, 16) };
  const stored = passkeyStoredAt(db, row.id, now);
  const notMe = await notMeLink(db, claims.sub, `passkey:${row.id}`, claims.sid, now, stored);
  const { inserted, owner, member } = await batch(db, {
    // Only while the registering session is live (a reset that ended it meanwhile wins), and within the cap.
    inserted: insertPasskey(db, row, sessionLive(db, claims.sid, now), MAX_PASSKEYS),
    // A guest's first way in makes it a member, in the same write (docs/guests.md).
    member: endGuest(db, claims.sub, now, stored),
    owner: selectUser(db, claims.sub),
    audited: auditRowIf(deps, "passkey_added", added, stored),
    upgraded: auditRowIf(deps, "guest_upgraded", { ...added, with: "passkey" }, upgradedAt(db, claims.sub, now)),
    notMeLink: notMe.statement,
  });
  if (!inserted[0]) {
    if (!(await isSessionLive(db, claims.sid, now))) throw sessionEnded();
    if ((await passkeyIdsOf(db, claims.sub)).length >= MAX_PASSKEYS) throw tooMany();
    throw new Refusal("passkey_rejected", "This passkey is registered already");
  }
  logEvent(deps, "passkey_added", added);
  if (member[0]) logEvent(deps, "guest_upgraded", { ...added, with: "passkey" });
  // Not the passkey's name: the client chose it, and the mail must not carry text of its choosing.
  const user = owner[0];
  if (user) securityNotice(deps, user, "A passkey was added to your account", notMe.token);
  return row;
}

/** Options for navigator.credentials.get(): no user named (the authenticator offers its passkeys). */
export async function authenticationOptions(deps: Deps) {
  const rp = relyingParty(deps.config);
  const challenge = newChallenge();
  const { generateAuthenticationOptions } = await webauthn();
  const options = await generateAuthenticationOptions({
    rpID: rp.id,
    challenge: fromBase64Url(challenge)!,
    timeout: deps.config.CHALLENGE_TTL * 1000,
    userVerification: "required",
  });
  await storeChallenge(deps, options.challenge, "passkey_login", null, new Date());
  return options;
}

const notRecognised = () => new Refusal("invalid_credentials", "This passkey was not recognised");

/**
 * Signs in with a passkey: the challenge is used up and the credential read (one round trip); the
 * library checks origin, rp id, user verification, signature and counter; the session, the counter
 * and the audit row are one more. Another user's passkey (a user handle that is not its owner's), an
 * unknown one, a counter that went backwards: 401 invalid_credentials.
 */
export async function passkeyLogin(deps: Deps, response: AuthenticationResponseJSON): Promise<SignedIn> {
  const { db } = deps;
  const rp = relyingParty(deps.config);
  const now = new Date();
  const challenge = challengeOf(response.response.clientDataJSON);
  if (!challenge) throw new Refusal("invalid_challenge");
  const found = await batch(db, {
    challengeUsed: consumeChallenge(db, challenge, "passkey_login", now, crypto.randomUUID()),
    owner: findPasskeyWithOwner(db, response.id, now),
  });
  if (!found.challengeUsed[0]) throw new Refusal("invalid_challenge");
  const user = found.owner[0]; // with the credential's columns
  const refuse = async (reason: string) => {
    await audit(deps, reason === "counter_regressed" ? "passkey_counter_regressed" : "passkey_login_failed", { user_id: user?.id ?? null, reason });
    return notRecognised();
  };
  if (!user) throw await refuse("unknown_passkey");
  const { passkeyId: id, passkeyCounter: stored } = user;
  // The library does not compare the user handle with the credential's owner: one naming another user is refused here.
  if (response.response.userHandle !== undefined && response.response.userHandle !== userHandleOf(user.id)) throw await refuse("user_mismatch");
  // A counter that did not move forward: maybe a cloned credential (the library checks it too; this names the reason).
  const counter = signCountOf(response.response.authenticatorData);
  if (counter === null) throw await refuse("verification_failed");
  if (!counterAdvances(stored, counter)) throw await refuse("counter_regressed");
  const { verifyAuthenticationResponse } = await webauthn();
  let verified: VerifiedAuthenticationResponse;
  try {
    verified = await verifyAuthenticationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: rp.origins,
      expectedRPID: rp.id,
      credential: { id, publicKey: fromBase64Url(user.passkeyPublicKey)!, counter: stored, transports: user.passkeyTransports ?? undefined },
      requireUserVerification: true,
    });
  } catch (err) {
    log("passkey_rejected", { request_id: deps.requestId, user_id: user.id, message: (err as Error).message }, "warn");
    throw await refuse("verification_failed");
  }
  if (!verified.verified) throw await refuse("verification_failed");

  // Checked again in the batch (of two sign-ins with one counter value, one wins); moved only with the session it opened.
  const session = { id: crypto.randomUUID() };
  return decideSignIn(deps, user, { kind: "passkey", synced: verified.authenticationInfo.credentialDeviceType === "multiDevice" }, now, {
    session: {
      session,
      seen: user,
      condition: counterMayAdvance(db, id, counter),
      after: { passkeyUsed: recordPasskeyUse(db, id, counter, now, sessionExists(db, session.id)) },
      detail: { method: "passkey" },
    },
    changed: () => refuse("counter_regressed"),
  });
}

export async function listPasskeys(deps: Deps, claims: AccessClaims) {
  return listPasskeyRows(deps.replica(), claims.sub); // a list to look at: may lag a moment
}

/**
 * Removes one of the caller's passkeys after the step-up remove_passkey (another user's id, or an
 * unknown one: not_found); never the last way in (last_way_in: an account without a password keeps one),
 * nor, while REQUIRE_MFA applies, the last second factor (mfa_required: TOTP or another passkey stays).
 */
export async function removePasskey(deps: Deps, ask: StepUpAsk<"remove_passkey">, id: string, check: StepUpInput): Promise<void> {
  const { claims } = ask;
  if (!(await findOwnPasskey(deps.db, id, claims.sub))) throw new Refusal("not_found", "No such passkey");
  const { user } = await stepUp(deps, ask, check);
  const required = mfaRequiredFor(deps.config, user.roles) && !user.isGuest;
  const keepsFactor = required ? anotherSecondFactor(claims.sub, { passkey: id }) : undefined;
  const [removed] = await deletePasskey(deps.db, id, claims.sub, anotherWayIn(claims.sub, { passkey: id }), keepsFactor);
  if (!removed) {
    if (!(await findOwnPasskey(deps.db, id, claims.sub))) throw new Refusal("not_found", "No such passkey");
    throw required && !(await keepsAnotherSecondFactor(deps.db, claims.sub, { passkey: id })) ? new Refusal("mfa_required") : new Refusal("last_way_in");
  }
  await audit(deps, "passkey_removed", { user_id: claims.sub, session_id: claims.sid, passkey: id.slice(0, 16) });
  securityNotice(deps, user, "A passkey was removed from your account");
}
