// A team's own backend on Workers (Hono), accepting this API's access tokens: the signature through
// the issuer's public keys (JWKS), and the issuer, audience, type and algorithm, before any route
// under /api runs. Set ISSUER and AUDIENCE to the auth API's (wrangler.toml [vars]).
import { Hono } from "hono";
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from "jose";

type Env = { Bindings: { ISSUER: string; AUDIENCE: string }; Variables: { claims: JWTPayload & { username?: string; roles?: string[] } } };

// One key set per isolate: jose caches the keys and fetches them again for a kid it has not seen
// (the auth API publishes each new signing key well before it signs with it).
let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

const app = new Hono<Env>();

app.use("/api/*", async (c, next) => {
  // RFC 6750: the challenge tells the client (client.fetch()) to refresh its token and retry once.
  const refuse = () => c.json({ error: "invalid_token" }, 401, { "WWW-Authenticate": 'Bearer error="invalid_token"' });
  const token = /^Bearer (\S+)$/.exec(c.req.header("Authorization") ?? "")?.[1];
  if (!token) return c.json({ error: "unauthorized" }, 401, { "WWW-Authenticate": "Bearer" });
  jwks ??= createRemoteJWKSet(new URL("/.well-known/jwks.json", c.env.ISSUER));
  try {
    const { payload } = await jwtVerify(token, jwks, { issuer: c.env.ISSUER, audience: c.env.AUDIENCE, typ: "at+jwt", algorithms: ["ES256"] });
    c.set("claims", payload);
  } catch {
    return refuse(); // expired, tampered, another issuer or audience, not an access token
  }
  await next();
});

app.get("/api/me", (c) => {
  const { sub, username, roles } = c.get("claims");
  return c.json({ user_id: sub, username, roles });
});

app.post("/api/notes", async (c) => {
  const { text } = await c.req.json<{ text: string }>();
  return c.json({ saved: text, by: c.get("claims").sub }, 201);
});

export default app;
