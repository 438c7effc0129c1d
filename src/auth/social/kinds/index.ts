import type { ProviderConfig } from "../../../config";
import type { ProviderKind } from "../protocol";
import { apple } from "./apple";
import { github } from "./github";
import { microsoft } from "./microsoft";
import { google, oidc } from "./openid";

/**
 * Every provider kind (ProviderConfig's `kind`), each an object carrying its own quirks. A new kind
 * is one file here, its entry below, and its configuration in src/config-providers.ts.
 */
const KINDS: { [K in ProviderConfig["kind"]]: ProviderKind<Extract<ProviderConfig, { kind: K }>> } = { oidc, google, microsoft, apple, github };

/** The kind a configured provider is. */
export const kindOf = (p: ProviderConfig) => KINDS[p.kind] as ProviderKind;
