/**
 * The WebAuthn JSON the client moves between the API and the browser (W3C Web Authentication, level 3:
 * the JSON forms of the creation and request options, and of the credentials). Plain types, no DOM:
 * they match what navigator.credentials and @simplewebauthn/browser take and give.
 */

export type Base64URLString = string;
export type AuthenticatorTransport = "ble" | "cable" | "hybrid" | "internal" | "nfc" | "smart-card" | "usb";
export type AuthenticatorAttachment = "cross-platform" | "platform";
export type Requirement = "discouraged" | "preferred" | "required";

export interface PublicKeyCredentialDescriptorJSON {
  id: Base64URLString;
  type: "public-key";
  transports?: AuthenticatorTransport[];
}

/** What POST /passkeys/register/options answers: pass it to navigator.credentials.create() (or startRegistration). */
export interface PublicKeyCredentialCreationOptionsJSON {
  rp: { id?: string; name: string };
  user: { id: Base64URLString; name: string; displayName: string };
  challenge: Base64URLString;
  pubKeyCredParams: { alg: number; type: "public-key" }[];
  timeout?: number;
  excludeCredentials?: PublicKeyCredentialDescriptorJSON[];
  authenticatorSelection?: {
    authenticatorAttachment?: AuthenticatorAttachment;
    requireResidentKey?: boolean;
    residentKey?: Requirement;
    userVerification?: Requirement;
  };
  hints?: ("client-device" | "hybrid" | "security-key")[];
  attestation?: "direct" | "enterprise" | "indirect" | "none";
  attestationFormats?: ("android-key" | "android-safetynet" | "apple" | "fido-u2f" | "none" | "packed" | "tpm")[];
  extensions?: { appid?: string; credProps?: boolean; hmacCreateSecret?: boolean; minPinLength?: boolean };
}

/** What POST /passkeys/login/options answers: pass it to navigator.credentials.get() (or startAuthentication). */
export interface PublicKeyCredentialRequestOptionsJSON {
  challenge: Base64URLString;
  timeout?: number;
  rpId?: string;
  allowCredentials?: PublicKeyCredentialDescriptorJSON[];
  userVerification?: Requirement;
  hints?: ("client-device" | "hybrid" | "security-key")[];
  extensions?: { appid?: string; credProps?: boolean; hmacCreateSecret?: boolean; minPinLength?: boolean };
}

/** The new credential, as JSON: what POST /passkeys/register/verify takes. */
export interface RegistrationResponseJSON {
  id: Base64URLString;
  rawId: Base64URLString;
  response: {
    clientDataJSON: Base64URLString;
    attestationObject: Base64URLString;
    authenticatorData?: Base64URLString;
    transports?: string[];
    publicKeyAlgorithm?: number;
    publicKey?: Base64URLString;
  };
  authenticatorAttachment?: AuthenticatorAttachment;
  clientExtensionResults: object;
  type: "public-key";
}

/** The assertion, as JSON: what POST /passkeys/login/verify takes. */
export interface AuthenticationResponseJSON {
  id: Base64URLString;
  rawId: Base64URLString;
  response: { clientDataJSON: Base64URLString; authenticatorData: Base64URLString; signature: Base64URLString; userHandle?: Base64URLString };
  authenticatorAttachment?: AuthenticatorAttachment;
  clientExtensionResults: object;
  type: "public-key";
}
