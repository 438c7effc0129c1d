import type { AuditContext } from "../../audit";
import type { Config } from "../../config";
import type { SigningKey } from "../../db/schema";
import { allKeys, liveKeys } from "../../db/signing-keys";
import { Refusal } from "../core/errors";
import { type KeyStores, keyWindows } from "../core/signing-keys";
import type { StepUpProof } from "../core/step-up";
import { maintainRing } from "./rotation";

/**
 * What an operator does to the signing key ring (routes/admin.ts; the routes take the step-up):
 * look at it, turn it now, retire a key in an emergency. The ring is read in auth/core/signing-keys.ts and turned in auth/keys/rotation.ts.
 */

/** The operator's view of the ring: every key with its times (never a private half) and the windows in seconds. */
export interface KeyView {
  keys: SigningKey[];
  windows: { publish_for: number; keep_for: number; rotate_every: number };
  rotated?: { from: string; to: string };
  retired?: string[];
  message?: string;
}

async function viewOf(ks: KeyStores, extra: Omit<KeyView, "keys" | "windows"> = {}): Promise<KeyView> {
  const w = keyWindows(ks.config);
  return {
    keys: await allKeys(ks.db),
    windows: { publish_for: w.publishFor / 1000, keep_for: w.keepFor / 1000, rotate_every: w.rotateEvery / 1000 },
    ...extra,
  };
}

type OperatorStores = KeyStores & Partial<AuditContext>;

/** GET /admin/keys. Starts the ring if this deployment has none yet, so the operator sees the keys that will sign. */
export async function keyRingView(ks: OperatorStores): Promise<KeyView> {
  manualRefused(ks.config);
  if (!(await liveKeys(ks.db)).some((k) => k.state === "current")) await maintainRing(ks, {});
  return viewOf(ks);
}

/** POST /admin/keys/rotate: the next key signs now (refused until it has been published for the full window). */
export async function rotateKeys(ks: OperatorStores, proof: StepUpProof<"rotate_signing_keys">): Promise<KeyView> {
  manualRefused(ks.config);
  const report = await maintainRing(ks, { rotate: true, by: proof.userId });
  return viewOf(ks, { rotated: report.rotated, retired: report.retired });
}

/** POST /admin/keys/{kid}/retire: an emergency; the key stops verifying at once. */
export async function retireKey(ks: OperatorStores, proof: StepUpProof<"retire_signing_key">, kid: string): Promise<KeyView> {
  manualRefused(ks.config);
  const report = await maintainRing(ks, { retire: kid, by: proof.userId });
  const message =
    `Key ${kid} is retired. This API refuses the access tokens it signed within KEY_PROPAGATION (${ks.config.KEY_PROPAGATION} s) everywhere; ` +
    "until then other locations may still sign with it, and those tokens fail too. Resource servers refuse them once their cached JWKS expires " +
    `(JWKS_MAX_AGE, ${ks.config.JWKS_MAX_AGE} s). Clients refresh to get a token from the new key; refresh tokens are not signed with it, so nobody is signed out.` +
    (report.rotated ? ` ${report.rotated.to} signs from now on, before every verifier may have fetched it; they fetch the JWKS again on its unknown kid.` : "");
  return viewOf(ks, { rotated: report.rotated, retired: report.retired, message });
}

/** Refuses ring operations while JWT_PRIVATE_KEY signs: that key is rotated by hand. */
export function manualRefused(config: Config) {
  if (config.SIGNING_KEYS !== "rotating") throw new Refusal("keys_not_rotating");
}
