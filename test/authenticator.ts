import { isoCBOR } from "@simplewebauthn/server/helpers";
import { toBase64Url } from "../src/encoding";

/**
 * A software WebAuthn authenticator for tests (workerd and Node alike): an ES256 key pair, a
 * discoverable credential, "none" attestation. It answers the server's options the way a browser
 * and a platform authenticator would, and every field a test may want to get wrong (origin, rp id,
 * counter, user handle, user verification) can be overridden per call.
 */

export interface Tweaks {
  origin?: string;
  rpId?: string;
  counter?: number;
  userVerified?: boolean;
  userHandle?: string | null; // null: leave it out
  challenge?: string;
}

const bytes = (s: string) => new TextEncoder().encode(s);
const sha256 = async (data: Uint8Array) => new Uint8Array(await crypto.subtle.digest("SHA-256", data));
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  return out;
};
const u32 = (n: number) => new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);

/** WebCrypto signs ECDSA as r||s; WebAuthn wants ASN.1 DER. */
function toDer(raw: Uint8Array) {
  const int = (b: Uint8Array) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b[i]! & 0x80 ? concat(new Uint8Array([0]), b.slice(i)) : b.slice(i);
    return concat(new Uint8Array([0x02, v.length]), v);
  };
  const body = concat(int(raw.slice(0, 32)), int(raw.slice(32)));
  return concat(new Uint8Array([0x30, body.length]), body);
}

const UP = 0x01;
const UV = 0x04;
const AT = 0x40;

export class SoftAuthenticator {
  readonly credentialId = toBase64Url(crypto.getRandomValues(new Uint8Array(16)));
  counter = 0;
  userHandle?: string;
  private keys?: CryptoKeyPair;

  constructor(
    readonly origin = "http://localhost:5173",
    readonly rpId = "localhost",
  ) {}

  private async keyPair() {
    this.keys ??= (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
    return this.keys;
  }

  private async authData(rpId: string, flags: number, counter: number, attested?: Uint8Array) {
    return concat(await sha256(bytes(rpId)), new Uint8Array([flags]), u32(counter), attested ?? new Uint8Array());
  }

  private clientData(type: string, challenge: string, origin: string) {
    return bytes(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  }

  /** navigator.credentials.create() with the server's creation options. */
  async register(options: { challenge: string; user: { id: string } }, t: Tweaks = {}) {
    const { publicKey } = await this.keyPair();
    const jwk = (await crypto.subtle.exportKey("jwk", publicKey)) as JsonWebKey;
    const b64 = (s: string) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
    // COSE_Key: kty EC2, alg ES256, crv P-256, x, y.
    const cose = isoCBOR.encode(
      new Map<number, number | Uint8Array>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, b64(jwk.x!)],
        [-3, b64(jwk.y!)],
      ]),
    );
    const id = Uint8Array.from(atob(this.credentialId.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (this.credentialId.length % 4)) % 4)), (c) =>
      c.charCodeAt(0),
    );
    const attested = concat(new Uint8Array(16), new Uint8Array([id.length >> 8, id.length & 255]), id, cose);
    const flags = UP | AT | (t.userVerified === false ? 0 : UV);
    const authData = await this.authData(t.rpId ?? this.rpId, flags, t.counter ?? this.counter, attested);
    const attestationObject = isoCBOR.encode(
      new Map<string, unknown>([
        ["fmt", "none"],
        ["attStmt", new Map()],
        ["authData", authData],
      ]) as never,
    );
    this.userHandle = options.user.id;
    return {
      id: this.credentialId,
      rawId: this.credentialId,
      type: "public-key" as const,
      response: {
        clientDataJSON: toBase64Url(this.clientData("webauthn.create", t.challenge ?? options.challenge, t.origin ?? this.origin)),
        attestationObject: toBase64Url(attestationObject),
        transports: ["internal"],
      },
      clientExtensionResults: {},
      authenticatorAttachment: "platform" as const,
    };
  }

  /** navigator.credentials.get() with the server's request options; the counter moves on by one unless told. */
  async assert(options: { challenge: string }, t: Tweaks = {}) {
    const { privateKey } = await this.keyPair();
    const counter = t.counter ?? ++this.counter;
    const authData = await this.authData(t.rpId ?? this.rpId, UP | (t.userVerified === false ? 0 : UV), counter);
    const clientData = this.clientData("webauthn.get", t.challenge ?? options.challenge, t.origin ?? this.origin);
    const signed = concat(authData, await sha256(clientData));
    const signature = toDer(new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, signed)));
    const userHandle = t.userHandle === null ? undefined : (t.userHandle ?? this.userHandle);
    return {
      id: this.credentialId,
      rawId: this.credentialId,
      type: "public-key" as const,
      response: {
        clientDataJSON: toBase64Url(clientData),
        authenticatorData: toBase64Url(authData),
        signature: toBase64Url(signature),
        ...(userHandle ? { userHandle } : {}),
      },
      clientExtensionResults: {},
    };
  }
}
