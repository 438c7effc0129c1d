// The benchmark's client side of second factors (scripts/bench.mjs bundles this file with esbuild:
// Node's type stripping cannot load test/authenticator.ts, whose constructor has parameter
// properties and whose imports have no extensions). The same authenticator the tests use, and the
// API's own TOTP code generator.

export { fromBase32, totpCode } from "../../src/auth/core/totp";
export { SoftAuthenticator } from "../authenticator";
