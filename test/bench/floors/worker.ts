import { Hono, type Context } from "hono";
import { SignJWT, createLocalJWKSet, generateKeyPair, jwtVerify, type JSONWebKeySet } from "jose";

/**
 * Floors for `npm run bench`: each route does only the work its API counterpart cannot avoid, with
 * the same libraries, so the API's cost reads as a ratio to it.
 *   GET  /bare    a Hono route answering JSON          (floor of GET /)
 *   GET  /verify  one ES256 verify + one KV read       (floor of GET /protected; a bulk get of its two keys)
 *   POST /sign    one ES256 sign + one D1 write        (floor of POST /refresh)
 *   POST /hash    one PBKDF2 derive at the API's count (floor of POST /login and /register)
 * and, for the capacity model, one D1 statement on its own: GET /read (by primary key), POST /write.
 * With ?same, /bare and /verify answer with the headers and body of the API's GET / (ANSWER, set
 * by the bench from a real answer): what is left between the API and that is code, not content.
 */
interface FloorEnv {
  KV: KVNamespace;
  DB: D1Database;
  JWKS: string;
  PASSWORD_ITERATIONS: string;
  ANSWER: string; // {"headers": [[name, value]...], "body": {...}}
}

// Per isolate, as the API caches its keys.
let verifyKeys: ReturnType<typeof createLocalJWKSet> | undefined;
const signingKey = generateKeyPair("ES256").then((pair) => pair.privateKey);
let tableReady: Promise<unknown> | undefined;

const app = new Hono<{ Bindings: FloorEnv }>();

let answer: { headers: [string, string][]; body: Record<string, unknown> } | undefined;
function reply(c: Context<{ Bindings: FloorEnv }>, body: Record<string, unknown>) {
  if (c.req.query("same") === undefined) return c.json(body);
  answer ??= JSON.parse(c.env.ANSWER) as NonNullable<typeof answer>;
  for (const [name, value] of answer.headers) c.header(name, value);
  return c.json(answer.body);
}

app.get("/bare", (c) => reply(c, { message: "ok" }));

app.get("/verify", async (c) => {
  verifyKeys ??= createLocalJWKSet(JSON.parse(c.env.JWKS) as JSONWebKeySet);
  const token = c.req.header("authorization")?.slice("Bearer ".length) ?? "";
  const { payload } = await jwtVerify(token, verifyKeys, { algorithms: ["ES256"] });
  // One KV read: a bulk get of the two keys a revocation may sit under, as the API reads them.
  const found = await c.env.KV.get([`sid:${payload.sid}`, `usr:${payload.sub}`], "json");
  return reply(c, { sub: payload.sub, revoked: found.get(`sid:${payload.sid}`) != null });
});

function table(db: D1Database) {
  tableReady ??= db.batch([
    db.prepare("CREATE TABLE IF NOT EXISTS rows (id TEXT PRIMARY KEY, at INTEGER)"),
    db.prepare("INSERT OR IGNORE INTO rows (id, at) VALUES ('known', 0)"),
  ]);
  return tableReady;
}
const write = async (db: D1Database, id: string) => {
  await table(db);
  await db.batch([db.prepare("INSERT INTO rows (id, at) VALUES (?, ?)").bind(id, Date.now())]);
};

app.get("/read", async (c) => {
  await table(c.env.DB);
  return c.json(await c.env.DB.prepare("SELECT id, at FROM rows WHERE id = ?").bind("known").first());
});

app.post("/write", async (c) => {
  await write(c.env.DB, crypto.randomUUID());
  return c.json({ ok: true });
});

app.post("/sign", async (c) => {
  const id = crypto.randomUUID();
  await write(c.env.DB, id);
  const token = await new SignJWT({ sid: id, roles: ["user"] })
    .setProtectedHeader({ alg: "ES256", typ: "at+jwt" })
    .setSubject(id)
    .setIssuedAt()
    .setExpirationTime("15m")
    .sign(await signingKey);
  return c.json({ access_token: token });
});

app.post("/hash", async (c) => {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("bench password 1"), "PBKDF2", false, ["deriveBits"]);
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iterations = Number(c.env.PASSWORD_ITERATIONS);
  await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256);
  return c.json({ ok: true });
});

export default app;
