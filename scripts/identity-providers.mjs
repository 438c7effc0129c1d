// Identity providers on loopback, for trying social sign-in and for the tests (no internet needed):
// - a real OpenID provider: oidc-provider (panva, OpenID-certified) with its built-in login and
//   consent pages; any login name is an account, names starting with "unverified" have an
//   address the provider does not vouch for;
// - a crafted OpenID issuer whose token endpoint answers ID tokens broken in one way each (the
//   code names the way: "<scenario>.<nonce>"), to prove a relying party's checks; its twin "lax"
//   whose metadata even lists `none` among its signing algorithms and says it sends RFC 9207's
//   `iss`; and an "impostor" whose discovery document names the crafted issuer instead of itself;
// - two unreachable issuers: one where nothing listens at all, and one ("deaf") whose discovery
//   works but whose token endpoint is a port where nothing listens;
// - a GitHub stand-in (OAuth 2 and its /user and /user/emails REST endpoints).
// `node scripts/identity-providers.mjs` runs them for `npm run dev` (see docs/social-sign-in.md).
import { createServer } from "node:http";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import Provider from "oidc-provider";

const listen = (server, port, host) =>
  new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(`http://${host}:${server.address().port}`));
  });

const json = (res, status, body) => {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
};

const readForm = (req) =>
  new Promise((resolve) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => resolve(new URLSearchParams(body)));
  });

// One key per kid for the process: a provider restarted (the soak's idpDown/idpUp) signs with the
// keys it published before, as a real one does; new material under an old kid would fail every
// relying party's cached JWKS.
const signingJwks = new Map();
function signingJwk(alg, kid) {
  if (!signingJwks.has(kid))
    signingJwks.set(
      kid,
      generateKeyPair(alg, { extractable: true }).then(async ({ privateKey }) => ({ ...(await exportJWK(privateKey)), kid, alg, use: "sig" })),
    );
  return signingJwks.get(kid);
}

/** The real OpenID provider, on a server of its own (so its pages' links need no path prefix). */
async function oidc({ port, host, redirectUris, clientId, clientSecret }) {
  const server = createServer();
  const origin = await listen(server, port, host);
  const provider = new Provider(origin, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: redirectUris,
        response_types: ["code"],
        grant_types: ["authorization_code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name", "preferred_username"] },
    findAccount: (_ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, email: `${id}@example.test`, email_verified: !id.startsWith("unverified"), name: id, preferred_username: id }),
    }),
    pkce: { required: () => true },
    jwks: { keys: [await signingJwk("RS256", "local-rs"), await signingJwk("ES256", "local-es")] },
    cookies: { keys: [crypto.randomUUID()] },
    features: { devInteractions: { enabled: true } },
  });
  // A test tool: its expected development warnings would only be noise.
  provider.on("server_error", (_ctx, err) => console.error("local IdP:", err));
  server.on("request", provider.callback());
  return { origin, server };
}

/** A port where nothing listens (taken, then let go): a provider there cannot be reached. */
async function closedPort(host) {
  const server = createServer();
  const origin = await listen(server, 0, host);
  await new Promise((resolve) => server.close(resolve));
  return origin;
}

/** The crafted issuer, the GitHub stand-in and the deaf issuer: one small router. */
async function standIns({ port, host, clientId, clientSecret }) {
  const keyA = await generateKeyPair("ES256", { extractable: true });
  const keyB = await generateKeyPair("ES256", { extractable: true });
  const publicA = { ...(await exportJWK(keyA.publicKey)), kid: "crafted-a", alg: "ES256", use: "sig" };
  const server = createServer();
  const origin = await listen(server, port, host);
  const crafted = `${origin}/crafted`;
  const lax = `${origin}/lax`;
  const impostor = `${origin}/impostor`;
  const github = `${origin}/github`;
  const deaf = `${origin}/deaf`;
  const nowhere = await closedPort(host);
  const basicOk = (req, form) => {
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const [id, secret] = basic
      ? Buffer.from(basic, "base64").toString().split(":").map(decodeURIComponent)
      : [form.get("client_id"), form.get("client_secret")];
    return id === clientId && secret === clientSecret;
  };

  async function idToken(issuer, scenario, nonce) {
    const now = Math.floor(Date.now() / 1000);
    // auth_time: when the person last signed in at the provider (OpenID's answer to max_age).
    const who = issuer === lax ? "lax" : "crafted"; // one person per issuer: the same address at both would be account_exists
    const claims = { sub: `${who}-user`, email: `${who}@example.test`, email_verified: true, nonce, iat: now, exp: now + 300, auth_time: now - 60 };
    let iss = issuer;
    let aud = clientId;
    let key = keyA.privateKey;
    let kid = "crafted-a";
    if (scenario === "other_key") key = keyB.privateKey;
    if (scenario === "unknown_kid") [key, kid] = [keyB.privateKey, "crafted-b"];
    if (scenario === "wrong_iss") iss = `${origin}/elsewhere`;
    if (scenario === "wrong_aud") aud = "someone-else";
    if (scenario === "extra_aud") Object.assign(claims, { azp: "someone-else" }), (aud = [clientId, "someone-else"]);
    if (scenario === "azp_other") claims.azp = "someone-else"; // one audience, but authorized for another party
    if (scenario === "azp_self") claims.azp = clientId;
    if (scenario === "expired") Object.assign(claims, { iat: now - 3600, exp: now - 1800 });
    if (scenario === "future_iat") Object.assign(claims, { iat: now + 600, exp: now + 900 });
    if (scenario === "skewed_iat") Object.assign(claims, { iat: now + 20, exp: now + 320 }); // a provider's clock a little ahead
    if (scenario === "long_lived") claims.exp = now + 2 * 86_400;
    if (scenario === "string_verified") Object.assign(claims, { sub: "crafted-string", email: "crafted-string@example.test", email_verified: "true" });
    if (scenario === "wrong_nonce") claims.nonce = "not-the-nonce";
    if (scenario === "no_nonce") delete claims.nonce;
    if (scenario === "unverified") Object.assign(claims, { sub: "crafted-unverified", email_verified: false });
    if (scenario === "no_email") delete claims.email, delete claims.email_verified;
    if (scenario === "old_auth_time") claims.auth_time = now - 2 * 86_400; // signed in at the provider two days ago
    if (scenario === "no_auth_time") delete claims.auth_time;
    if (scenario === "unsigned") return unsigned({ ...claims, iss, aud });
    if (scenario === "no_signature")
      return (await new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid }).setIssuer(iss).setAudience(aud).sign(key)).replace(/[^.]+$/, "");
    return new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid }).setIssuer(iss).setAudience(aud).sign(key);
  }

  // An unsecured JWT (RFC 7519 section 6: alg "none", an empty signature).
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const unsigned = (claims) => `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.`;

  /** An OpenID issuer's discovery document; `lax` lists `none` too and promises RFC 9207's `iss`. */
  const metadata = (issuer, base, lax = false) => ({
    issuer,
    authorization_endpoint: `${base}/authorize`,
    token_endpoint: `${base}/token`,
    jwks_uri: `${base}/jwks`,
    userinfo_endpoint: `${base}/userinfo`,
    response_types_supported: ["code"],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: lax ? ["ES256", "none"] : ["ES256"],
    code_challenge_methods_supported: ["S256"],
    ...(lax ? { authorization_response_iss_parameter_supported: true } : {}),
  });

  // GitHub's users per scenario: the numeric id and the addresses /user/emails lists.
  const octo = {
    verified: [4242, [{ email: "octo@example.test", primary: true, verified: true, visibility: "private" }]],
    unverified: [4243, [{ email: "octo-unverified@example.test", primary: true, verified: false, visibility: null }]],
    secondary: [
      4244,
      [
        { email: "octo-secondary@example.test", primary: true, verified: false, visibility: null },
        { email: "other@example.test", primary: false, verified: true, visibility: null },
      ],
    ],
    none: [4245, []],
  };

  server.on("request", async (req, res) => {
    const url = new URL(req.url ?? "/", origin);
    const path = url.pathname;
    // The crafted issuer and its lax twin share their endpoints (each under its own path).
    const [, base, rest] = /^\/(crafted|lax)(\/.*)$/.exec(path) ?? [];
    const issuer = base === "lax" ? lax : crafted;
    if (rest === "/.well-known/openid-configuration") return json(res, 200, metadata(issuer, issuer, base === "lax"));
    // The impostor's metadata names the crafted issuer (its endpoints too): a relying party must refuse it.
    if (path === "/impostor/.well-known/openid-configuration") return json(res, 200, metadata(crafted, crafted));
    if (rest === "/jwks") return json(res, 200, { keys: [publicA] });
    if (path === "/deaf/.well-known/openid-configuration") {
      return json(res, 200, {
        issuer: deaf,
        authorization_endpoint: `${crafted}/authorize`,
        token_endpoint: `${nowhere}/token`,
        jwks_uri: `${nowhere}/jwks`,
        response_types_supported: ["code"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["ES256"],
      });
    }
    if (rest === "/authorize") {
      const back = new URL(url.searchParams.get("redirect_uri") ?? "");
      back.searchParams.set("code", `good.${url.searchParams.get("nonce")}`);
      back.searchParams.set("state", url.searchParams.get("state") ?? "");
      back.searchParams.set("iss", issuer);
      res.writeHead(302, { location: back.href });
      return res.end();
    }
    if (rest === "/token" && req.method === "POST") {
      const form = await readForm(req);
      if (!basicOk(req, form)) return json(res, 401, { error: "invalid_client" });
      if (form.get("grant_type") !== "authorization_code" || !form.get("code_verifier") || !form.get("redirect_uri")) {
        return json(res, 400, { error: "invalid_request" });
      }
      const [scenario, nonce] = (form.get("code") ?? "").split(".");
      return json(res, 200, { access_token: "crafted-at", token_type: "Bearer", expires_in: 300, id_token: await idToken(issuer, scenario, nonce) });
    }
    if (rest === "/userinfo") {
      if (req.headers.authorization !== "Bearer crafted-at") return json(res, 401, { error: "invalid_token" });
      const who = base === "lax" ? "lax" : "crafted";
      return json(res, 200, { sub: `${who}-user`, email: `${who}@example.test`, email_verified: true });
    }
    if (path === "/github/login/oauth/authorize") {
      const back = new URL(url.searchParams.get("redirect_uri") ?? "");
      back.searchParams.set("code", url.searchParams.get("scenario") ?? "verified");
      back.searchParams.set("state", url.searchParams.get("state") ?? "");
      res.writeHead(302, { location: back.href });
      return res.end();
    }
    if (path === "/github/login/oauth/access_token" && req.method === "POST") {
      const form = await readForm(req);
      // GitHub answers its errors with 200 and an error field.
      if (!basicOk(req, form)) return json(res, 200, { error: "incorrect_client_credentials" });
      const scenario = form.get("code") ?? "";
      if (!(scenario in octo) || !form.get("code_verifier")) return json(res, 200, { error: "bad_verification_code" });
      return json(res, 200, { access_token: `gho_${scenario}`, token_type: "bearer", scope: "read:user,user:email" });
    }
    if (path === "/github/api/user" || path === "/github/api/user/emails") {
      const scenario = /^Bearer gho_(\w+)$/.exec(req.headers.authorization ?? "")?.[1];
      const user = scenario && octo[scenario];
      if (!user) return json(res, 401, { message: "Bad credentials" });
      return path.endsWith("/emails") ? json(res, 200, user[1]) : json(res, 200, { id: user[0], login: `octo-${scenario}`, name: "Octo Cat", email: null });
    }
    json(res, 404, { error: "not_found" });
  });
  return { origin, server, crafted, lax, impostor, github, deaf, nowhere };
}

/**
 * Starts the three on `host` (port 0: any free ports; else `port` and `port + 1`). `unref`: the
 * servers do not keep the process alive (a test run ends without closing them).
 */
export async function startLocalIdp({
  port = 0,
  host = "127.0.0.1",
  redirectUris,
  clientId = "edge-auth-local",
  clientSecret = "local-idp-secret-0123456789",
  unref = false,
} = {}) {
  const real = await oidc({ port, host, redirectUris, clientId, clientSecret });
  const others = await standIns({ port: port && port + 1, host, clientId, clientSecret }).catch(async (e) => {
    await new Promise((r) => real.server.close(r)); // its port taken: nothing left listening
    throw e;
  });
  if (unref) for (const s of [real.server, others.server]) s.unref();
  const close = () => Promise.all([real.server, others.server].map((s) => new Promise((r) => s.close(r))));
  return {
    oidc: real.origin,
    crafted: others.crafted,
    lax: others.lax,
    impostor: others.impostor,
    github: others.github,
    deaf: others.deaf,
    down: others.nowhere,
    clientId,
    clientSecret,
    close,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.IDP_PORT ?? 9100);
  const api = process.env.API_ORIGIN ?? "http://localhost:8787";
  const idp = await startLocalIdp({ port, redirectUris: [`${api}/oauth/local/callback`] });
  console.log(`local IdP: ${idp.oidc} (sign in with any name; "unverified..." names have an unproved address)`);
  console.log("In .dev.vars, replace the OAUTH_CLIENT_SECRETS line (npm run dev wrote '{}') and add OAUTH_PROVIDERS with these two,");
  console.log("then restart npm run dev (or npm run demo):");
  console.log(`OAUTH_PROVIDERS='${JSON.stringify([{ id: "local", kind: "oidc", name: "Local IdP", issuer: idp.oidc, client_id: idp.clientId }])}'`);
  console.log(`OAUTH_CLIENT_SECRETS='${JSON.stringify({ local: idp.clientSecret })}'`);
  const stop = () => idp.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
