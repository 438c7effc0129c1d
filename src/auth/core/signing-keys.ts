import type { JWK } from "jose";
import { type AuditContext, audit } from "../../audit";
import { type Config, ConfigError } from "../../config";
import type { Db } from "../../db/client";
import type { SigningKey } from "../../db/schema";
import { insertKeys, liveKeys, markMirrored } from "../../db/signing-keys";
import { log } from "../../log";
import { RevocationIncomplete } from "./errors";
import { KV_KEYS } from "./kv-keys";
import { openWith } from "./secrets";
import { firstKeys, generated, type LiveState, wrapKey } from "./signing-key-rows";
import { type KeyRing, keyRing, secretKeyRing } from "./tokens";

/**
 * Which keys sign and verify access tokens (docs/design.md "Signing keys").
 *
 * SIGNING_KEYS=secret: JWT_PRIVATE_KEY, rotated by hand.
 * SIGNING_KEYS=rotating: a ring in D1 (the one truth: strongly consistent, conditional writes), each
 * private key sealed with JWT_WRAPPING_KEY. Each key is `next` (published, not signing), `current`
 * (signs), `previous` (verifies what it signed), then `retired` (gone from the JWKS, its private half
 * erased). Only the cron and an operator turn the ring (auth/keys/rotation.ts); signing on a
 * request path reads it and never turns, retires or replaces a key.
 *
 * The token path reads D1 only without a usable mirror: every change is mirrored into KV (the public
 * keys and the sealed current key), which each isolate re-reads at most every KEY_PROPAGATION / 2
 * (60 s at most). The windows are counted from the moment a mirror showed a change (publish), so a
 * location that still sees the ring as it was keeps signing with a key every verifier still has.
 * A key's row is made in auth/core/signing-key-rows.ts; the lifecycle is auth/keys/rotation.ts.
 */

export interface KeyStores {
  config: Config;
  db: Db;
  kv: KVNamespace;
}

const MIRROR = KV_KEYS.keyring; // the KV entry (beside the revocations)
const CLOCK_SKEW = 60; // seconds a verifier's clock may be off
const DAY = 86_400_000;

/** The lifecycle's windows, in milliseconds (docs/design.md "Signing keys"). */
export function keyWindows(config: Config) {
  const propagation = config.KEY_PROPAGATION * 1000;
  return {
    /** How often an isolate re-reads the mirror. */
    refresh: Math.min(60_000, propagation / 2),
    /** A next key is published this long before it may sign: every verifier's cached JWKS has it by then. */
    publishFor: (config.JWKS_MAX_AGE + config.KEY_PROPAGATION) * 1000,
    /** A previous key keeps verifying this long after the ring stopped signing with it. */
    keepFor: (config.KEY_PROPAGATION + config.ACCESS_TOKEN_TTL + config.JWKS_MAX_AGE + CLOCK_SKEW) * 1000,
    /** How long a key signs before the cron turns the ring. */
    rotateEvery: config.KEY_ROTATION_DAYS * DAY,
  };
}

/** What KV holds: the public keys verifiers accept, and the sealed key that signs. */
export interface Mirror {
  keys: { kid: string; state: LiveState; jwk: JWK }[];
  signing: { kid: string; sealed: string };
}

// ---- the token path: the ring as this isolate sees it ----

/**
 * Per isolate: the ring as last read (`loaded`: when a read last succeeded) and when to read again.
 * Only finished reads are kept: a request never awaits another request's KV read, since Workers
 * refuse I/O begun in one request's context from another's (it surfaced as 500s under the soak).
 */
const views = new Map<string, { at: number; loaded: number; ring: KeyRing }>();
let generation = 0; // bumped by forgetView: reads begun before it are not kept

/** The keys that sign and verify now. Reads KV at most once per refresh window; D1 only without a usable mirror. */
export async function activeKeys(ks: KeyStores): Promise<KeyRing> {
  const { config } = ks;
  if (config.SIGNING_KEYS === "secret") return secretKeyRing(config.JWT_PRIVATE_KEY!);
  const id = config.JWT_WRAPPING_KEY!;
  const now = Date.now();
  const seen = views.get(id);
  if (seen && now - seen.at < keyWindows(config).refresh) return seen.ring;
  // Requests that find the view due at once each read (a few KV reads, once per window); the newest
  // wins, and a read begun before a change of the ring here (forgetView) is used once, never kept.
  const gen = generation;
  const keep = (view: { at: number; loaded: number; ring: KeyRing }) => {
    if (gen === generation && (views.get(id)?.at ?? 0) <= view.at) views.set(id, view);
    return view.ring;
  };
  try {
    return keep({ at: now, loaded: now, ring: await loadRing(ks, new Date(now)) });
  } catch (err) {
    // Neither KV nor D1 answered: the ring this isolate had stays usable for JWKS_MAX_AGE past its
    // refresh (the margin the previous key's retention holds for it), then the request fails.
    const usable = seen && !(err instanceof ConfigError) && now - seen.loaded < keyWindows(config).refresh + config.JWKS_MAX_AGE * 1000;
    if (!usable) throw err;
    log("key_ring_stale", { error: (err as Error).name, age_ms: now - seen.loaded }, "warn");
    return keep({ at: now, loaded: seen.loaded, ring: seen.ring });
  }
}

async function loadRing(ks: KeyStores, now: Date): Promise<KeyRing> {
  let mirror: Mirror | null;
  try {
    mirror = await ks.kv.get<Mirror>(MIRROR, "json");
  } catch (err) {
    // KV did not answer: D1 holds the ring (it is the truth the mirror copies).
    log("key_ring_kv_failed", { error: (err as Error).name }, "warn");
    return ringOf(ks.config, await mirrorOf(await liveKeys(ks.db)));
  }
  if (!mirror) {
    // No mirror (a new deployment's first requests, or a failed write): D1's ring as it stands, never
    // turned here. Only an empty ring gets its first keys; then the mirror is written.
    await startRing(ks, now);
    try {
      mirror = await publish(ks, now);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      // Isolates writing the mirror at once race for one KV key (one write a second): a loser signs
      // with the ring D1 holds, and a later request or the cron writes the mirror.
      log("key_ring_mirror_failed", { error: (err as Error).message }, "warn");
      mirror = await mirrorOf(await liveKeys(ks.db));
    }
  }
  return ringOf(ks.config, mirror);
}

/**
 * A ring with neither a current nor a next key (a new deployment's) gets its first keys, audited:
 * conditional inserts, so isolates racing leave one current and one next. Not a rotation: a ring
 * that has either is left as it is, for the cron or an operator to repair (auth/keys/rotation.ts).
 */
export async function startRing(ks: KeyStores & Partial<AuditContext>, now: Date, by: string | null = null): Promise<string[]> {
  const { config, db } = ks;
  if ((await liveKeys(db)).some((k) => k.state === "current" || k.state === "next")) return [];
  const created = (await insertKeys(db, await firstKeys(config, now))).map((k) => k.kid);
  // JWT_PRIVATE_KEY's key was in this ring before and is retired: it never signs again.
  if (!(await liveKeys(db)).some((k) => k.state === "current")) {
    created.push(...(await insertKeys(db, [await generated(config, "current", now)])).map((k) => k.kid));
  }
  const ctx: AuditContext = { db, requestId: ks.requestId, ip: ks.ip };
  for (const kid of created) await audit(ctx, "signing_key_created", { user_id: by, kid });
  return created;
}

/** The kid KV's mirror says signs (null: no mirror). Behind D1's current key after a turn whose mirror write failed. */
export const mirroredSigner = async (kv: KVNamespace) => (await kv.get<Mirror>(MIRROR, "json"))?.signing.kid ?? null;

/** After the cron's or an operator's change, this isolate reads the ring again at once. */
export const forgetView = (config: Config) => {
  generation++;
  views.delete(config.JWT_WRAPPING_KEY!);
};

async function ringOf(config: Config, mirror: Mirror): Promise<KeyRing> {
  const problem = (what: string) => new ConfigError([`JWT_WRAPPING_KEY: the signing key ring ${what}`]);
  let signing: JWK;
  try {
    signing = JSON.parse(new TextDecoder().decode(await openWith(await wrapKey(config), mirror.signing.kid, mirror.signing.sealed))) as JWK;
  } catch {
    // A replaced wrapping key cannot open the ring it did not seal (docs/design.md: rotate it with the ring).
    throw problem("does not open with this key");
  }
  return keyRing(`ring:${mirror.signing.sealed}:${mirror.keys.map((k) => k.kid).join(",")}`, signing, [...mirror.keys.map((k) => k.jwk)], problem);
}

/**
 * Writes the mirror until it shows what D1 holds, then starts the windows of the keys it shows. KV
 * keeps the last write, so a run that read D1 before another run's change could leave its older copy
 * behind; reading D1 again after the write catches that, and the later run's own write comes after.
 */
export async function publish(ks: KeyStores, now: Date): Promise<Mirror> {
  let mirror = await mirrorOf(await liveKeys(ks.db));
  for (let attempt = 1; ; attempt++) {
    // A failed write: 503, and the operator's retry (or the next request, or the cron) writes it.
    await ks.kv.put(MIRROR, JSON.stringify(mirror)).catch((err) => {
      throw new RevocationIncomplete(err);
    });
    const after = await mirrorOf(await liveKeys(ks.db));
    if (JSON.stringify(after) === JSON.stringify(mirror)) break;
    if (attempt === 3) throw new Error("the signing key ring kept changing while it was mirrored");
    mirror = after;
  }
  // Counted from the write, not from the run's start: every location shows this within KEY_PROPAGATION.
  const shown = new Date(Math.max(now.getTime(), Date.now()));
  const kids = (...states: LiveState[]) => mirror.keys.filter((k) => states.includes(k.state)).map((k) => k.kid);
  await markMirrored(ks.db, shown, keyWindows(ks.config).keepFor, { published: kids("next", "current"), stopped: kids("previous") });
  return mirror;
}

async function mirrorOf(rows: SigningKey[]): Promise<Mirror> {
  const current = rows.find((k) => k.state === "current");
  if (!current?.sealedPrivateJwk) throw new Error("the signing key ring has no current key");
  const order: Record<string, number> = { current: 0, next: 1, previous: 2 };
  const live = rows.filter((k) => k.state !== "retired").sort((a, b) => order[a.state]! - order[b.state]!);
  return {
    keys: live.map((k) => ({ kid: k.kid, state: k.state as LiveState, jwk: k.publicJwk as JWK })),
    signing: { kid: current.kid, sealed: current.sealedPrivateJwk },
  };
}
