// Identity providers on loopback, one HTTP server, no internet needed. Used by the workerd tests'
// globalSetup, the Chromium e2e setup, and `node scripts/local-idp.mjs` for trying social sign-in:
// - /oidc: a real OpenID provider (oidc-provider) with its built-in login and consent pages; any
//   login name is an account, names starting with "unverified" have an address it does not vouch for;
// - /crafted: an OpenID issuer whose ID tokens are broken one way each (the code names the way:
//   "<scenario>.<nonce>"), to prove a relying party's checks;
// - /github: a GitHub stand-in (OAuth 2 only, plus the REST /user and /user/emails).
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import Provider from "oidc-provider";

const send = (res, status, body, type = "application/json") => {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(type === "application/json" ? JSON.stringify(body) : body);
};

const redirect = (res, location) => {
  res.writeHead(302, { location });
  res.end();
};

const readForm = async (req) => {
  let body = "";
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
};

/** Client authentication as RFC 6749 allows it: HTTP Basic (form-encoded id and secret) or in the body. */
const clientOf = (req, form) => {
  const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
  if (!basic) return [form.get("client_id"), form.get("client_secret")];
  const decoded = Buffer.from(basic, "base64").toString();
  const colon = decoded.indexOf(":");
  const part = (s) => decodeURIComponent(s.replaceAll("+", " "));
  return colon < 0 ? [] : [part(decoded.slice(0, colon)), part(decoded.slice(colon + 1))];
};

const privateJwk = async (alg, kid) => {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg, use: "sig" };
};

/** oidc-provider, as a request handler for the issuer's path (`${origin}${prefix}`). */
async function openIdProvider({ issuer, prefix, redirectUris, clientId, clientSecret }) {
  const config = {
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
    scopes: ["openid", "email", "profile"],
    responseTypes: ["code"],
    findAccount: (_ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, email: `${id}@example.test`, email_verified: !id.startsWith("unverified"), name: id, preferred_username: id }),
    }),
    pkce: { required: () => true },
    // Own keys: no "development-only signing keys" warning, and both common algorithms on offer.
    jwks: { keys: [await privateJwk("RS256", "local-rs256"), await privateJwk("ES256", "local-es256")] },
    cookies: { keys: [crypto.randomUUID()] },
    features: { devInteractions: { enabled: true } },
    // Set explicitly: the defaults print a notice the first time each is used.
    ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, Interaction: 3600, Session: 86400, Grant: 86400 },
    renderError: (ctx, out) => {
      ctx.type = "text";
      ctx.body = Object.entries(out)
        .map(([k, v]) => `${k}: ${v}`)
        .join("\n");
    },
  };
  // A test tool wants exactly what its startup warns of (in-memory storage, the dev login pages):
  // drop those warnings, and only while constructing, so nothing else is hidden.
  const warn = console.warn;
  console.warn = (...args) => String(args[0]).includes("oidc-provider WARNING") || warn(...args);
  let provider;
  try {
    provider = new Provider(issuer, config);
  } finally {
    console.warn = warn;
  }
  provider.on("server_error", (_ctx, err) => console.error("local IdP (oidc-provider):", err));
  const app = provider.callback();
  // Mounted as Express would: oidc-provider routes on req.url without the prefix, and takes the
  // prefix back from req.originalUrl for the URLs it writes (discovery, redirects, form actions, cookie paths).
  return (req, res) => {
    req.originalUrl = req.url;
    req.url = req.url.slice(prefix.length) || "/";
    return app(req, res);
  };
}

/** The crafted issuer: a well-formed code flow whose ID token varies by scenario. */
async function craftedIssuer({ issuer, origin, clientId, clientSecret }) {
  const keyA = await generateKeyPair("ES256", { extractable: true });
  const keyB = await generateKeyPair("ES256");
  const jwks = { keys: [{ ...(await exportJWK(keyA.publicKey)), kid: "crafted-a", alg: "ES256", use: "sig" }] };
  const metadata = {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    userinfo_endpoint: `${issuer}/userinfo`,
    response_types_supported: ["code"],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: ["ES256"],
    code_challenge_methods_supported: ["S256"],
    token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
  };

  // Each scenario changes one thing of a good token: [claims, header kid, signing key].
  const scenarios = {
    good: (c) => c,
    other_key: (c) => [c, "crafted-a", keyB.privateKey],
    unknown_kid: (c) => [c, "crafted-b", keyB.privateKey],
    wrong_iss: (c) => ({ ...c, iss: `${origin}/elsewhere` }),
    wrong_aud: (c) => ({ ...c, aud: "someone-else" }),
    extra_aud: (c) => ({ ...c, aud: [clientId, "someone-else"], azp: "someone-else" }),
    expired: (c) => ({ ...c, iat: c.iat - 3600, exp: c.iat - 1800 }),
    wrong_nonce: (c) => ({ ...c, nonce: "not-the-nonce" }),
    no_nonce: ({ nonce, ...c }) => c,
    unverified: (c) => ({ ...c, sub: "crafted-unverified", email_verified: false }),
    no_email: ({ email, email_verified, ...c }) => c,
  };
  const idToken = (scenario, nonce) => {
    const now = Math.floor(Date.now() / 1000);
    const good = { iss: issuer, aud: clientId, sub: "crafted-user", email: "crafted@example.test", email_verified: true, nonce, iat: now, exp: now + 300 };
    const made = scenarios[scenario](good);
    const [claims, kid, key] = Array.isArray(made) ? made : [made, "crafted-a", keyA.privateKey];
    return new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid }).sign(key);
  };

  return async (req, res, url) => {
    switch (url.pathname.slice("/crafted".length)) {
      case "/.well-known/openid-configuration":
        return send(res, 200, metadata);
      case "/jwks":
        return send(res, 200, jwks);
      case "/authorize": {
        // Approves at once, so a browser can go through it.
        const q = url.searchParams;
        if (!URL.canParse(q.get("redirect_uri"))) return send(res, 400, { error: "invalid_request", error_description: "redirect_uri" });
        const back = new URL(q.get("redirect_uri"));
        back.searchParams.set("code", `good.${q.get("nonce") ?? ""}`);
        back.searchParams.set("state", q.get("state") ?? "");
        back.searchParams.set("iss", issuer);
        return redirect(res, back.href);
      }
      case "/token": {
        if (req.method !== "POST") return send(res, 405, { error: "invalid_request" });
        const form = await readForm(req);
        const [id, secret] = clientOf(req, form);
        if (id !== clientId || secret !== clientSecret) return send(res, 401, { error: "invalid_client" });
        if (form.get("grant_type") !== "authorization_code") return send(res, 400, { error: "unsupported_grant_type" });
        if (!form.get("code") || !form.get("code_verifier") || !form.get("redirect_uri")) return send(res, 400, { error: "invalid_request" });
        const code = form.get("code");
        const dot = code.indexOf(".");
        const scenario = dot < 0 ? code : code.slice(0, dot);
        if (!Object.hasOwn(scenarios, scenario) || dot < 0) return send(res, 400, { error: "invalid_grant" });
        const id_token = await idToken(scenario, code.slice(dot + 1));
        return send(res, 200, { access_token: "crafted-at", token_type: "Bearer", expires_in: 300, id_token });
      }
      case "/userinfo":
        if (req.headers.authorization !== "Bearer crafted-at") return send(res, 401, { error: "invalid_token" });
        return send(res, 200, { sub: "crafted-user", email: "crafted@example.test", email_verified: true });
      default:
        return send(res, 404, { error: "not_found" });
    }
  };
}

/** The GitHub stand-in: the scenario travels as the code, then as the access token `gho_<scenario>`. */
function gitHub({ clientId, clientSecret }) {
  const users = {
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

  return async (req, res, url) => {
    const path = url.pathname.slice("/github".length);
    if (path === "/login/oauth/authorize") {
      const q = url.searchParams;
      if (!URL.canParse(q.get("redirect_uri"))) return send(res, 400, { error: "redirect_uri_mismatch" });
      const back = new URL(q.get("redirect_uri"));
      back.searchParams.set("code", q.get("scenario") ?? "verified");
      back.searchParams.set("state", q.get("state") ?? "");
      return redirect(res, back.href);
    }
    if (path === "/login/oauth/access_token" && req.method === "POST") {
      const form = await readForm(req);
      const [id, secret] = clientOf(req, form);
      // GitHub answers errors here with 200, and in JSON only when asked (else form-encoded).
      const answer = (body) =>
        (req.headers.accept ?? "").includes("application/json")
          ? send(res, 200, body)
          : send(res, 200, new URLSearchParams(body).toString(), "application/x-www-form-urlencoded");
      if (id !== clientId || secret !== clientSecret) return answer({ error: "incorrect_client_credentials" });
      const scenario = form.get("code") ?? "";
      if (!Object.hasOwn(users, scenario) || !form.get("code_verifier")) return answer({ error: "bad_verification_code" });
      return answer({ access_token: `gho_${scenario}`, token_type: "bearer", scope: "read:user,user:email" });
    }
    if (path === "/api/user" || path === "/api/user/emails") {
      const scenario = /^(?:Bearer|token) gho_(\w+)$/i.exec(req.headers.authorization ?? "")?.[1];
      if (!scenario || !Object.hasOwn(users, scenario)) return send(res, 401, { message: "Bad credentials" });
      const [id, emails] = users[scenario];
      return send(res, 200, path === "/api/user" ? { id, login: `octo-${scenario}`, name: "Octo Cat", email: null } : emails);
    }
    return send(res, 404, { message: "Not Found" });
  };
}

/**
 * Starts the three on one server at `host:port` (port 0: any free port). `redirectUris` are the
 * OpenID provider's client's; the crafted issuer and the GitHub stand-in send back wherever asked.
 */
export async function startLocalIdp({
  port = 0,
  host = "127.0.0.1",
  redirectUris,
  clientId = "edge-auth-local",
  clientSecret = "local-idp-secret-0123456789",
} = {}) {
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  const origin = `http://${host.includes(":") ? `[${host}]` : host}:${server.address().port}`;
  const oidc = `${origin}/oidc`;
  const crafted = `${origin}/crafted`;
  const github = `${origin}/github`;
  const client = { clientId, clientSecret };
  const routes = [
    ["/oidc", await openIdProvider({ issuer: oidc, prefix: "/oidc", redirectUris, ...client })],
    ["/crafted", await craftedIssuer({ issuer: crafted, origin, ...client })],
    ["/github", gitHub(client)],
  ];
  server.on("request", async (req, res) => {
    const url = new URL(req.url ?? "/", origin);
    const route = routes.find(([prefix]) => url.pathname === prefix || url.pathname.startsWith(`${prefix}/`));
    try {
      if (route) await route[1](req, res, url);
      else send(res, 404, { error: "not_found" });
    } catch (err) {
      console.error("local IdP:", err);
      if (!res.headersSent) send(res, 500, { error: "server_error" });
    }
  });
  const close = () =>
    new Promise((resolve, reject) => {
      server.close((err) => (err ? reject(err) : resolve()));
      server.closeAllConnections(); // keep-alive connections would hold close() open
    });
  return { origin, oidc, crafted, github, clientId, clientSecret, close };
}

/**
 * Signs `login` in at oidc-provider's dev pages over plain HTTP, as a browser would: follows the
 * redirects from `authorizeUrl`, posts the login form (prompt, login, password) and the consent form
 * (prompt) to their actions, keeping the provider's cookies. Resolves to the URL it finally sends
 * the browser to, off the provider (the redirect_uri with code, state and iss, or an error).
 * Plain fetch, URL and Headers only, so its steps carry over to a workerd test.
 */
export async function driveLogin(authorizeUrl, login) {
  const base = new URL(".", authorizeUrl).href; // the issuer's path: everything under it is the provider's
  const jar = new Map(); // name -> value; oidc-provider's cookie names are distinct, so paths can be ignored
  const go = async (url, form) => {
    const headers = new Headers({ cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; ") });
    if (form) headers.set("content-type", "application/x-www-form-urlencoded");
    const res = await fetch(url, { method: form ? "POST" : "GET", headers, body: form ? new URLSearchParams(form) : undefined, redirect: "manual" });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const name = pair.slice(0, pair.indexOf("=")).trim();
      const gone = attrs.some((a) => /^\s*expires=.*1970/i.test(a) || /^\s*max-age=0\s*$/i.test(a));
      if (gone) jar.delete(name);
      else jar.set(name, pair.slice(pair.indexOf("=") + 1).trim());
    }
    return res;
  };

  let res = await go(authorizeUrl);
  for (let step = 0; step < 10; step++) {
    const location = res.headers.get("location");
    if (location) {
      const next = new URL(location, res.url || base).href;
      if (!next.startsWith(base)) return next;
      res = await go(next);
      continue;
    }
    const html = await res.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1]?.replaceAll("&amp;", "&");
    const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
    if (!res.ok || !action || !prompt) throw new Error(`local IdP: no form to submit (${res.status}): ${html.slice(0, 500)}`);
    const form = prompt === "login" ? { prompt, login, password: "any" } : { prompt };
    res = await go(new URL(action, base).href, form);
  }
  throw new Error("local IdP: the sign-in did not leave the provider after 10 steps");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.env.IDP_PORT ?? 9100);
  const callbacks = ["http://localhost:8787", "http://127.0.0.1:8787"].flatMap((api) => ["local", "github"].map((id) => `${api}/oauth/${id}/callback`));
  const idp = await startLocalIdp({ port, redirectUris: callbacks });
  const providers = [
    { id: "local", kind: "oidc", issuer: idp.oidc, client_id: idp.clientId },
    { id: "github", kind: "github", client_id: idp.clientId, server: idp.github, api: `${idp.github}/api` },
  ];
  console.log(`OpenID provider: ${idp.oidc} (sign in with any name; names starting "unverified" have an unverified address)`);
  console.log(`crafted issuer:  ${idp.crafted} (ID tokens broken one way each, for tests)`);
  console.log(`GitHub stand-in: ${idp.github} (API at ${idp.github}/api)`);
  console.log(`\nSet the var OAUTH_PROVIDERS (wrangler.toml [vars], or .dev.vars) to:\n${JSON.stringify(providers)}`);
  const secrets = { local: idp.clientSecret, github: idp.clientSecret };
  console.log(`and put the secret in .dev.vars, then restart npm run dev:\nOAUTH_CLIENT_SECRETS=${JSON.stringify(secrets)}`);
  const stop = () => idp.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
