import type { JWK } from "jose";
import type { Config } from "../../config";
import type { NewSigningKey } from "../../db/signing-keys";
import { fromBase64Url } from "../../encoding";
import { derivedKey } from "./hkdf";
import { sealWith } from "./secrets";
import { newSigningJwk, privateKeysOf, publicHalf } from "./tokens";

/**
 * A signing key's row for the ring (auth/core/signing-keys.ts): generated or imported from
 * JWT_PRIVATE_KEY, its private half sealed with JWT_WRAPPING_KEY (the kid as associated data).
 */

export type LiveState = "next" | "current" | "previous";

export const wrapKey = (config: Config) =>
  derivedKey(fromBase64Url(config.JWT_WRAPPING_KEY!)!, "edge-auth-api signing key wrap v1", { name: "AES-GCM", length: 256 }, ["encrypt", "decrypt"]);

const newKid = (now: Date) => `key-${now.toISOString().slice(0, 10)}-${crypto.randomUUID().slice(0, 8)}`;

function keyRow(jwk: JWK, state: LiveState, origin: NewSigningKey["origin"], now: Date, sealed: string | null): NewSigningKey {
  return {
    kid: jwk.kid!,
    state,
    publicJwk: publicHalf(jwk) as Record<string, string>,
    sealedPrivateJwk: sealed,
    origin,
    createdAt: now,
    // A ring's first key signs at once (docs/design.md: "A ring's first key signs at once").
    publishedAt: state === "current" ? now : null,
    activatedAt: state === "current" ? now : null,
    deactivatedAt: state === "previous" ? now : null,
  };
}

const sealedRow = async (config: Config, jwk: JWK, state: LiveState, origin: NewSigningKey["origin"], now: Date) =>
  keyRow(jwk, state, origin, now, await sealWith(await wrapKey(config), jwk.kid!, new TextEncoder().encode(JSON.stringify(jwk))));

export const generated = async (config: Config, state: LiveState, now: Date) => sealedRow(config, await newSigningJwk(newKid(now)), state, "generated", now);

/**
 * A new ring: JWT_PRIVATE_KEY's keys when the deployment had them (its signing key stays current, so
 * no token stops verifying and nobody is signed out), otherwise a new key; and a next key.
 */
export async function firstKeys(config: Config, now: Date): Promise<NewSigningKey[]> {
  if (config.JWT_PRIVATE_KEY) {
    const [signing, ...older] = privateKeysOf(config.JWT_PRIVATE_KEY);
    const rows = [await sealedRow(config, signing!, "current", "imported", now)];
    // Older keys in the set only verify: previous keys, retired on the usual schedule. A public-only
    // one has nothing to seal and is kept as its public half.
    for (const k of older) rows.push(k.d ? await sealedRow(config, k, "previous", "imported", now) : keyRow(k, "previous", "imported", now, null));
    return [...rows, await generated(config, "next", now)];
  }
  return [await generated(config, "current", now), await generated(config, "next", now)];
}
