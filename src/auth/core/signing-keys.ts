import type { JWK } from "jose";
import { type AuditContext, audit } from "../../audit";
import { type Config, ConfigError } from "../../config";
import type { Db } from "../../db/client";
import type { SigningKey } from "../../db/schema";
import { allKeys, insertKeys, liveKeys, markMirrored, retireExpired, turnRing } from "../../db/signing-keys";
import { log } from "../../log";
import { Refusal } from "./errors";
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
 * erased). The cron turns the ring; an operator can force a turn or retire a key at once.
 *
 * The token path reads D1 only without a usable mirror: every change is mirrored into KV (the public
 * keys and the sealed current key), which each isolate re-reads at most every KEY_PROPAGATION / 2
 * (60 s at most). The windows are counted from the moment a mirror showed a change (publish), so a
 * location that still sees the ring as it was keeps signing with a key every verifier still has.
 * A key's row is made in auth/core/signing-key-rows.ts; an operator's view and commands are auth/keys/operations.ts.
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
interface Mirror {
  keys: { kid: string; state: LiveState; jwk: JWK }[];
  signing: { kid: string; sealed: string };
}

// ---- the token path: the ring as this isolate sees it ----

/** Per isolate: the ring as last read (`loaded`: when a read last succeeded) and when to read again. */
const views = new Map<string, { at: number; loaded: number; ring: Promise<KeyRing> }>();

/** The keys that sign and verify now. Reads KV at most once per refresh window; D1 only without a usable mirror. */
export async function activeKeys(ks: KeyStores): Promise<KeyRing> {
  const { config } = ks;
  if (config.SIGNING_KEYS === "secret") return secretKeyRing(config.JWT_PRIVATE_KEY!);
  const id = config.JWT_WRAPPING_KEY!;
  const now = Date.now();
  const seen = views.get(id);
  if (seen && now - seen.at < keyWindows(config).refresh) return seen.ring;
  const view = { at: now, loaded: now, ring: loadRing(ks, new Date(now)) };
  // Requests arriving while this read runs share it, fallback included.
  view.ring = view.ring.catch((err) => {
    // Neither KV nor D1 answered: the ring this isolate had stays usable for JWKS_MAX_AGE past its
    // refresh (the margin the previous key's retention holds for it), then the request fails.
    const usable = seen && !(err instanceof ConfigError) && now - seen.loaded < keyWindows(config).refresh + config.JWKS_MAX_AGE * 1000;
    if (!usable) {
      if (views.get(id) === view) views.delete(id);
      throw err;
    }
    log("key_ring_stale", { error: (err as Error).name, age_ms: now - seen.loaded }, "warn");
    view.loaded = seen.loaded;
    return seen.ring;
  });
  views.set(id, view);
  return view.ring;
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
    // No mirror yet (a new deployment's first requests): build the ring from D1, starting it if empty.
    try {
      mirror = (await maintainRing(ks, {}, now)).mirror;
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      // Isolates starting the ring at once race for one KV key (one write a second): a loser signs
      // with the ring D1 holds, and a later request or the cron writes the mirror.
      log("key_ring_mirror_failed", { error: (err as Error).message }, "warn");
      mirror = await mirrorOf(await liveKeys(ks.db));
    }
  }
  return ringOf(ks.config, mirror);
}

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

// ---- the ring's lifecycle: the cron, an operator, a new deployment's first request ----

export interface RingChange {
  /** The cron: turn the ring when the current key has signed KEY_ROTATION_DAYS, retire what is due. */
  scheduled?: boolean;
  /** An operator: turn the ring now (the next key must have been published for the full window). */
  rotate?: boolean;
  /** An operator, in an emergency: retire this key at once. */
  retire?: string;
  /** The operator's user id, for the audit rows. */
  by?: string;
}

export interface RingReport {
  mirror: Mirror;
  rotated?: { from: string; to: string };
  retired: string[];
  created: string[];
}

/**
 * Brings the ring to where it should be, then mirrors it to KV. Safe to run twice at once (every
 * write is conditional) and to fail halfway: a failed mirror write leaves the windows unstarted, and
 * the next run (the cron's, or the next isolate that misses the mirror) writes it again.
 */
export async function maintainRing(ks: KeyStores & Partial<AuditContext>, change: RingChange, now = new Date()): Promise<RingReport> {
  const { config, db } = ks;
  const windows = keyWindows(config);
  const report: RingReport = { mirror: undefined as unknown as Mirror, retired: [], created: [] };
  let rows = await liveKeys(db);
  const find = (state: LiveState) => rows.find((k) => k.state === state);
  let current = find("current");
  let next = find("next");
  if (!current && next) {
    // Only after an emergency that could not complete: the next key takes over.
    const turned = await turnRing(db, { now, promote: next.kid, newNext: await generated(config, "next", now) });
    report.created.push(...[turned.created].filter((k) => k !== undefined));
  } else if (!current) {
    report.created.push(...(await insertKeys(db, await firstKeys(config, now))).map((k) => k.kid));
    // JWT_PRIVATE_KEY's key was in this ring before and is retired: it never signs again.
    if (!(await liveKeys(db)).some((k) => k.state === "current")) {
      report.created.push(...(await insertKeys(db, [await generated(config, "current", now)])).map((k) => k.kid));
    }
  } else if (!next) {
    report.created.push(...(await insertKeys(db, [await generated(config, "next", now)])).map((k) => k.kid));
  }
  if (report.created.length) {
    rows = await liveKeys(db);
    current = find("current");
    next = find("next");
  }

  let refusal: Refusal | undefined;
  if (change.retire) {
    const turned = await turnRing(db, { now, retire: change.retire, newNext: await generated(config, "next", now) });
    if (turned.retired) {
      report.retired.push(turned.retired);
      if (turned.promoted && current) report.rotated = { from: current.kid, to: turned.promoted };
      if (turned.created) report.created.push(turned.created);
    } else if (!(await allKeys(db)).some((k) => k.kid === change.retire && k.state === "retired")) {
      refusal = new Refusal("not_found", "No signing key has that kid");
    }
    // Already retired (a retry after a failed mirror write): the mirror is written again below.
  } else if (
    current &&
    next &&
    (change.rotate || (change.scheduled && current.activatedAt && now.getTime() - current.activatedAt.getTime() >= windows.rotateEvery))
  ) {
    const readyAt = next.publishedAt ? next.publishedAt.getTime() + windows.publishFor : undefined;
    if (readyAt === undefined || readyAt > now.getTime()) {
      const when = readyAt === undefined ? "once the ring is mirrored" : `at ${new Date(readyAt).toISOString()}`;
      log("key_rotation_waiting", { next: next.kid, ready_at: readyAt ?? null });
      // Refused after the mirror is written below: a retry after a failed write repairs it.
      if (change.rotate)
        refusal = new Refusal("key_not_ready", `The next key ${next.kid} may sign ${when}: verifiers must have had it for JWKS_MAX_AGE + KEY_PROPAGATION`);
    } else {
      const turned = await turnRing(db, {
        now,
        demote: current.kid,
        promote: next.kid,
        readyBefore: new Date(now.getTime() - windows.publishFor),
        newNext: await generated(config, "next", now),
      });
      if (turned.demoted && turned.promoted) report.rotated = { from: turned.demoted, to: turned.promoted };
      if (turned.created) report.created.push(turned.created);
    }
  }
  if (change.scheduled) report.retired.push(...(await retireExpired(db, now)).map((k) => k.kid));

  // The record first: D1 has changed, whatever happens to the mirror below.
  const ctx: AuditContext = { db, requestId: ks.requestId, ip: ks.ip };
  const user_id = change.by ?? null;
  for (const kid of report.created) await audit(ctx, "signing_key_created", { user_id, kid });
  if (report.rotated) await audit(ctx, "signing_key_rotated", { user_id, from: report.rotated.from, to: report.rotated.to, forced: !change.scheduled });
  for (const kid of report.retired) await audit(ctx, "signing_key_retired", { user_id, kid, reason: change.retire ? "emergency" : "scheduled" });

  report.mirror = await publish(ks, now);
  // This isolate sees an operator's or the cron's change at once (a request starting the ring keeps its view).
  if (change.rotate || change.retire || change.scheduled) views.delete(config.JWT_WRAPPING_KEY!);
  if (refusal) throw refusal;
  return report;
}

/**
 * Writes the mirror until it shows what D1 holds, then starts the windows of the keys it shows. KV
 * keeps the last write, so a run that read D1 before another run's change could leave its older copy
 * behind; reading D1 again after the write catches that, and the later run's own write comes after.
 */
async function publish(ks: KeyStores, now: Date): Promise<Mirror> {
  let mirror = await mirrorOf(await liveKeys(ks.db));
  for (let attempt = 1; ; attempt++) {
    await ks.kv.put(MIRROR, JSON.stringify(mirror));
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
