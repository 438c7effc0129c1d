import { exportJWK, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import { call, expectError, forgeToken, nowSeconds, refreshWith, registerUser, testJwk, unsignedToken } from "./helpers";

/** Every attack must end as 401 invalid_token with an RFC 6750 challenge, on a real route. */
async function expectRejected(token: string) {
  const res = await call("GET", "/protected", { token });
  expectError(res, 401, "invalid_token");
  expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
}

describe("token attacks (RFC 8725) against GET /protected", () => {
  it("the baseline forged token with valid claims is accepted (so each case below changes one thing)", async () => {
    expect((await call("GET", "/protected", { token: await forgeToken() })).status).toBe(200);
  });

  it("alg none", async () => {
    await expectRejected(
      unsignedToken({
        iss: "http://localhost:8787",
        aud: "edge-auth-api",
        sub: "u-1",
        jti: "j",
        iat: nowSeconds(),
        exp: nowSeconds() + 60,
        sid: "s",
        username: "a",
        roles: ["admin"],
      }),
    );
  });

  it("HS256 keyed with the public key (algorithm confusion)", async () => {
    const { d: _private, ...publicJwk } = testJwk();
    for (const secret of [JSON.stringify(publicJwk), publicJwk.x!]) {
      await expectRejected(await forgeToken({ header: { alg: "HS256" }, key: new TextEncoder().encode(secret) }));
    }
  });

  it("an unknown or injected kid", async () => {
    const { privateKey } = await generateKeyPair("ES256");
    for (const kid of ["unknown-key", "../../../../dev/null", "x' OR '1'='1", ""]) {
      await expectRejected(await forgeToken({ key: privateKey, header: { kid } }));
    }
    // The right kid does not help a token signed by another key.
    await expectRejected(await forgeToken({ key: privateKey }));
  });

  it("an attacker key embedded in the header (jwk) or pointed at (jku, x5u)", async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "attacker" };
    await expectRejected(await forgeToken({ key: privateKey, header: { kid: "attacker", jwk } }));
    await expectRejected(await forgeToken({ key: privateKey, header: { kid: "attacker", jku: "https://evil.example/jwks.json" } }));
    await expectRejected(await forgeToken({ key: privateKey, header: { x5u: "https://evil.example/cert.pem" } }));
  });

  it("tampered claims (roles raised after signing)", async () => {
    const token = await forgeToken();
    const [h, p, s] = token.split(".");
    const claims = JSON.parse(atob(p!.replace(/-/g, "+").replace(/_/g, "/")));
    const raised = btoa(JSON.stringify({ ...claims, roles: ["admin"] }))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
    await expectRejected(`${h}.${raised}.${s}`);
  });

  it("a wrong typ, iss or aud", async () => {
    await expectRejected(await forgeToken({ header: { typ: "JWT" } }));
    await expectRejected(await forgeToken({ header: { typ: undefined } }));
    await expectRejected(await forgeToken({ claims: { iss: "https://evil.example" } }));
    await expectRejected(await forgeToken({ claims: { aud: "another-api" } }));
  });

  it("expired or not yet valid", async () => {
    await expectRejected(await forgeToken({ claims: { iat: nowSeconds() - 3600, exp: nowSeconds() - 1 } }));
    await expectRejected(await forgeToken({ claims: { nbf: nowSeconds() + 3600 } }));
  });

  it("a refresh token used as an access token", async () => {
    const reg = await registerUser();
    await expectRejected(reg.refresh_token);
  });

  it("an access token used as a refresh token", async () => {
    const reg = await registerUser();
    expectError(await refreshWith(reg.access_token), 401, "invalid_token");
    // and the session it names is untouched
    expect((await refreshWith(reg.refresh_token)).status).toBe(200);
  });

  it("an admin role claimed by a forged token never reaches admin routes", async () => {
    const { privateKey } = await generateKeyPair("ES256");
    const res = await call("GET", "/admin/users", { token: await forgeToken({ key: privateKey, claims: { roles: ["admin"] } }) });
    expectError(res, 401, "invalid_token");
  });
});
