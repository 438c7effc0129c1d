import { type AuditContext, audit } from "../../audit";
import { allKeys, insertKeys, liveKeys, retireExpired, turnRing } from "../../db/signing-keys";
import { log } from "../../log";
import { Refusal } from "../core/errors";
import { generated, type LiveState } from "../core/signing-key-rows";
import { forgetView, type KeyStores, keyWindows, type Mirror, mirroredSigner, publish, startRing } from "../core/signing-keys";

/**
 * The signing key ring's lifecycle (docs/design.md "Signing keys"): start, turn, retire, then mirror
 * to KV, each change audited. Run by the cron (src/cron.ts) and an operator (auth/keys/operations.ts)
 * only: a request reads the ring (auth/core/signing-keys.ts) and never turns it.
 */

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
 * the next run (the cron's, or the next request that misses the mirror) writes it again.
 */
export async function maintainRing(ks: KeyStores & Partial<AuditContext>, change: RingChange, now = new Date()): Promise<RingReport> {
  const { config, db } = ks;
  const windows = keyWindows(config);
  const report: RingReport = { mirror: undefined as unknown as Mirror, retired: [], created: [] };
  let rows = await liveKeys(db);
  const find = (state: LiveState) => rows.find((k) => k.state === state);
  let current = find("current");
  let next = find("next");
  // A new ring's first keys, audited as they are made.
  const started = current || next ? [] : await startRing(ks, now, change.by ?? null);
  report.created.push(...started);
  if (!current && next) {
    // Only after an emergency that could not complete: the next key takes over.
    const turned = await turnRing(db, { now, promote: next.kid, newNext: await generated(config, "next", now) });
    report.created.push(...[turned.created].filter((k) => k !== undefined));
  } else if (current && !next) {
    report.created.push(...(await insertKeys(db, [await generated(config, "next", now)])).map((k) => k.kid));
  }
  if (report.created.length) {
    rows = await liveKeys(db);
    current = find("current");
    next = find("next");
  }

  let refusal: Refusal | undefined;
  // A forced rotation whose mirror write failed (a 503), sent again: KV still shows the key D1 turned
  // from. The retry completes that rotation (the mirror, below) and never turns the ring twice.
  const unfinished = change.rotate && current ? await mirroredSigner(ks.kv) : null;
  const repeated = unfinished !== null && rows.some((k) => k.kid === unfinished && k.state === "previous");
  if (repeated && current) {
    report.rotated = { from: unfinished!, to: current.kid };
  } else if (change.retire) {
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
  for (const kid of report.created.filter((k) => !started.includes(k))) await audit(ctx, "signing_key_created", { user_id, kid });
  if (report.rotated && !repeated)
    await audit(ctx, "signing_key_rotated", { user_id, from: report.rotated.from, to: report.rotated.to, forced: !change.scheduled });
  for (const kid of report.retired) await audit(ctx, "signing_key_retired", { user_id, kid, reason: change.retire ? "emergency" : "scheduled" });

  report.mirror = await publish(ks, now);
  // This isolate sees an operator's or the cron's change at once.
  if (change.rotate || change.retire || change.scheduled) forgetView(config);
  if (refusal) throw refusal;
  return report;
}
