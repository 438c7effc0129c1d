import { env } from "cloudflare:workers";
import { exportJWK, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import { type SignInput, secretKeyRing, signAccessToken, verifyAccessToken } from "../src/auth/core/tokens";
import type { Config } from "../src/config";
import { getConfig } from "../src/config";
import { forgeToken, nowSeconds, testJwk, unsignedToken } from "./helpers";

const config = getConfig(env);
const privateJwk = testJwk();
const input = () => ({
  userId: "u-1",
  username: "alice",
  roles: ["user"],
  sessionId: "s-1",
  epoch: 0,
  emailVerified: false,
  authTime: new Date(Date.now() - 60_000),
  amr: ["pwd"],
  now: new Date(),
  expiresAt: new Date(Date.now() + 900_000),
});
const now = nowSeconds;
const forge = forgeToken;
// SIGNING_KEYS=secret: the keys in JWT_PRIVATE_KEY (the rotating ring: test/signing-keys.test.ts).
const ringOf = (c: Config) => secretKeyRing(c.JWT_PRIVATE_KEY!);
const sign = async (c: Config, i: SignInput) => signAccessToken(c, await ringOf(c), i);
const verify = async (c: Config, token: string) => verifyAccessToken(c, await ringOf(c), token);
const publicJwks = async (c: Config) => (await ringOf(c)).jwks;

describe("access tokens", () => {
  it("round-trips with the documented claims (README: From your backend)", async () => {
    const { token, jti, expiresIn } = await sign(config, input());
    const claims = await verify(config, token);
    expect(claims).toMatchObject({ sub: "u-1", username: "alice", roles: ["user"], sid: "s-1", jti, amr: ["pwd"] });
    expect(claims!.iat - claims!.auth_time!).toBeGreaterThanOrEqual(59); // when the session's sign-in was proved
    expect(claims!.exp - claims!.iat).toBe(expiresIn);
    const [header, payload] = token
      .split(".")
      .slice(0, 2)
      .map((p) => JSON.parse(atob(p.replace(/-/g, "+").replace(/_/g, "/"))));
    expect(header).toEqual({ alg: "ES256", kid: "test-key-1", typ: "at+jwt" });
    expect(payload).toMatchObject({ iss: config.ISSUER, aud: config.AUDIENCE });
  });

  it("accepts a token forged with valid claims (so the failures below test one thing each)", async () => {
    expect(await verify(config, await forge())).not.toBeNull();
  });

  it("rejects an expired token", async () => {
    expect(await verify(config, await forge({ claims: { iat: now() - 1000, exp: now() - 10 } }))).toBeNull();
  });

  it("rejects a token that is not yet valid", async () => {
    expect(await verify(config, await forge({ claims: { nbf: now() + 600 } }))).toBeNull();
  });

  it("rejects another issuer or audience", async () => {
    expect(await verify(config, await forge({ claims: { iss: "https://evil.example" } }))).toBeNull();
    expect(await verify(config, await forge({ claims: { aud: "another-api" } }))).toBeNull();
    const { token } = await sign(config, input());
    expect(await verify({ ...config, AUDIENCE: "another-api" }, token)).toBeNull();
  });

  it("rejects a wrong typ (an ID token or a plain JWT is not an access token)", async () => {
    expect(await verify(config, await forge({ header: { typ: "JWT" } }))).toBeNull();
  });

  it("rejects a tampered payload", async () => {
    const { token } = await sign(config, input());
    const [h, p, s] = token.split(".");
    const claims = JSON.parse(atob(p!.replace(/-/g, "+").replace(/_/g, "/")));
    const evil = btoa(JSON.stringify({ ...claims, roles: ["admin"] }))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
    expect(await verify(config, `${h}.${evil}.${s}`)).toBeNull();
  });

  it("rejects alg none and an HMAC token keyed with the public key", async () => {
    const unsigned = unsignedToken({
      iss: config.ISSUER,
      aud: config.AUDIENCE,
      sub: "u-1",
      jti: "j",
      iat: now(),
      exp: now() + 60,
      sid: "s",
      username: "a",
      roles: ["admin"],
    });
    expect(await verify(config, unsigned)).toBeNull();
    const publicJson = JSON.stringify((await publicJwks(config)).keys[0]);
    const hs = await forge({ header: { alg: "HS256" }, key: new TextEncoder().encode(publicJson) });
    expect(await verify(config, hs)).toBeNull();
  });

  it("rejects a token signed by another key, whatever kid it names", async () => {
    const { privateKey } = await generateKeyPair("ES256");
    expect(await verify(config, await forge({ key: privateKey }))).toBeNull();
    expect(await verify(config, await forge({ key: privateKey, header: { kid: "attacker-key" } }))).toBeNull();
  });

  it("rejects tokens missing any required claim, or with ill-typed roles or username", async () => {
    for (const claim of ["sub", "jti", "iat", "exp", "sid", "roles"]) {
      expect(await verify(config, await forge({ claims: { [claim]: undefined } })), claim).toBeNull();
    }
    expect(await verify(config, await forge({ claims: { roles: "admin" } }))).toBeNull();
    expect(await verify(config, await forge({ claims: { username: 42 } }))).toBeNull();
  });

  it("accepts a token without a username (an account that has none) as username null", async () => {
    expect(await verify(config, await forge({ claims: { username: undefined } }))).toMatchObject({ username: null });
    const unnamed = await sign(config, { ...input(), username: "" });
    const [, body] = unnamed.token.split(".");
    expect(JSON.parse(atob(body!.replace(/-/g, "+").replace(/_/g, "/")))).not.toHaveProperty("username");
    expect(await verify(config, unnamed.token)).toMatchObject({ username: null });
  });

  it("rejects junk", async () => {
    for (const junk of ["", "abc", "a.b.c", "x".repeat(5000)]) expect(await verify(config, junk)).toBeNull();
  });
});

describe("JWKS and key rotation", () => {
  it("publishes only the public half, with kid, alg and use", async () => {
    const { keys } = await publicJwks(config);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: "EC", crv: "P-256", kid: "test-key-1", alg: "ES256", use: "sig" });
    expect(keys[0]).not.toHaveProperty("d");
  });

  it("with a key set, signs with the first key and still accepts tokens of the previous one", async () => {
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    const next = { ...(await exportJWK(privateKey)), kid: "test-key-2" };
    const rotated = { ...config, JWT_PRIVATE_KEY: JSON.stringify({ keys: [next, privateJwk] }) };
    const old = await sign(config, input());
    const fresh = await sign(rotated, input());
    expect(JSON.parse(atob(fresh.token.split(".")[0]!)).kid).toBe("test-key-2");
    expect(await verify(rotated, old.token)).not.toBeNull();
    expect(await verify(rotated, fresh.token)).not.toBeNull();
    expect((await publicJwks(rotated)).keys.map((k) => k.kid)).toEqual(["test-key-2", "test-key-1"]);
  });

  it("refuses a signing secret that is not a private P-256 JWK", async () => {
    await expect(sign({ ...config, JWT_PRIVATE_KEY: "not json" }, input())).rejects.toThrow();
    const { d: _d, ...publicOnly } = privateJwk;
    await expect(sign({ ...config, JWT_PRIVATE_KEY: JSON.stringify(publicOnly) }, input())).rejects.toThrow(/private P-256/);
  });
});
