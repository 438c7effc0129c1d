import { type Context, Hono } from "hono";
import { createLocalJWKSet, generateKeyPair, type JSONWebKeySet, jwtVerify, SignJWT } from "jose";

/**
 * Floors for `npm run bench`: each route does only the work its API counterpart cannot avoid, with
 * the same libraries, so the API's cost reads as a ratio to it.
 *   GET  /bare    a Hono route answering JSON          (floor of GET /)
 *   GET  /verify  one ES256 verify + one KV read       (floor of GET /protected; a bulk get of its two keys)
 *   POST /sign    one ES256 sign + one D1 write        (floor of POST /refresh)
 *   POST /hash    one PBKDF2 derive at the API's count (floor of POST /login and /register)
 *   POST /verify-write  /verify, then one D1 write   (floor of POST /mfa/totp/setup and /passkeys/register/verify)
 *   POST /verify-sign   one ES256 signature check with a key imported for it, then /sign
 *                       (floor of POST /passkeys/login/verify: the assertion's key is per passkey)
 * and one D1 statement on its own: GET /read (by primary key), POST /write (the capacity model's, and
 * the floor of POST /passkeys/login/options).
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

/** The Bearer token checked, and one KV read: a bulk get of the two keys a revocation may sit under, as the API reads them. */
async function authorize(c: Context<{ Bindings: FloorEnv }>) {
  verifyKeys ??= createLocalJWKSet(JSON.parse(c.env.JWKS) as JSONWebKeySet);
  const token = c.req.header("authorization")?.slice("Bearer ".length) ?? "";
  const { payload } = await jwtVerify(token, verifyKeys, { algorithms: ["ES256"] });
  const found = await c.env.KV.get([`sid:${payload.sid}`, `usr:${payload.sub}`], "json");
  return { sub: payload.sub, revoked: found.get(`sid:${payload.sid}`) != null };
}

app.get("/verify", async (c) => reply(c, await authorize(c)));

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

app.post("/verify-write", async (c) => {
  const { sub } = await authorize(c);
  await write(c.env.DB, crypto.randomUUID());
  return c.json({ sub });
});

async function sign(db: D1Database) {
  const id = crypto.randomUUID();
  await write(db, id);
  return new SignJWT({ sid: id, roles: ["user"] })
    .setProtectedHeader({ alg: "ES256", typ: "at+jwt" })
    .setSubject(id)
    .setIssuedAt()
    .setExpirationTime("15m")
    .sign(await signingKey);
}

app.post("/sign", async (c) => c.json({ access_token: await sign(c.env.DB) }));

// A passkey assertion's shape: a P-256 signature over authenticator data (37 bytes) and the hash of
// the client data; the public key arrives as stored, so it is imported for each check. Made once per
// isolate, at the first request (no random values at startup in workerd).
let assertion: Promise<{ jwk: JsonWebKey; signed: Uint8Array; signature: ArrayBuffer }> | undefined;
async function newAssertion() {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const signed = crypto.getRandomValues(new Uint8Array(37 + 32));
  const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, signed);
  return { jwk: (await crypto.subtle.exportKey("jwk", pair.publicKey)) as JsonWebKey, signed, signature };
}

app.post("/verify-sign", async (c) => {
  const { jwk, signed, signature } = await (assertion ??= newAssertion());
  const key = await crypto.subtle.importKey("jwk", jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  if (!(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, signature, signed))) throw new Error("floor: signature refused");
  return c.json({ access_token: await sign(c.env.DB) });
});

app.post("/hash", async (c) => {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("bench password 1"), "PBKDF2", false, ["deriveBits"]);
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iterations = Number(c.env.PASSWORD_ITERATIONS);
  await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256);
  return c.json({ ok: true });
});

export default app;
