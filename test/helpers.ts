import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { type Schema, Validator } from "@cfworker/json-schema";
import { importJWK, type JWK, SignJWT } from "jose";
import { expect } from "vitest";
import { fromBase32, STEP_SECONDS, totpCode } from "../src/auth/core/totp";
import worker from "../src/index";
import { SoftAuthenticator } from "./authenticator";

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface CallOptions {
  body?: unknown; // objects are sent as JSON; strings as they are
  token?: string;
  headers?: Record<string, string>;
  base?: string; // defaults to http://localhost
  bindings?: Partial<Env>; // replaces these bindings for this one request (fault injection, config)
  ctx?: ExecutionContext; // with bindings: the request's execution context (to wait on its waitUntil)
}

/** Calls the worker's own fetch, as a client would. */
export async function call<T = any>(method: string, path: string, opts: CallOptions = {}): Promise<ApiResponse<T>> {
  const headers = new Headers(opts.headers);
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
  }
  if (opts.token) headers.set("authorization", `Bearer ${opts.token}`);
  // Each call looks like a new client to the per-IP rate limits, unless a test pins an address.
  if (!headers.has("cf-connecting-ip")) headers.set("cf-connecting-ip", randomIp());
  // A redirect is an answer to look at (social sign-in), never followed.
  const req = new Request(`${opts.base ?? "http://localhost"}${path}`, { method, headers, body, redirect: "manual" });
  const res = opts.bindings ? await worker.fetch(req, { ...env, ...opts.bindings }, opts.ctx) : await exports.default.fetch(req);
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: the assertions below will say so
  }
  await expectDocumented(method, path, res, parsed);
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

/** The schemas with no extra properties allowed on objects: a field the document lacks (a leak) fails. */
function strict<T>(schema: T): T {
  if (Array.isArray(schema)) return schema.map(strict) as T;
  if (!schema || typeof schema !== "object") return schema;
  const out = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, strict(v)])) as Record<string, unknown>;
  if (out.type === "object" && out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out as T;
}

export type OpenApiOperation = {
  parameters?: { in: "path" | "query" | "header"; name: string; schema: Schema & Record<string, unknown> }[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>;
  security?: Record<string, string[]>[];
};
export type OpenApiDoc = { paths: Record<string, Record<string, OpenApiOperation>>; components: { schemas: Record<string, Schema> } };
let openApi: Promise<OpenApiDoc> | undefined;

/** GET /openapi.json as the worker serves it, fetched once per test file. */
export const openApiDocument = () => (openApi ??= exports.default.fetch(new Request("http://localhost/openapi.json")).then((r) => r.json<OpenApiDoc>()));

/** Every operation of the document, as "METHOD /path/{param}" with its entry: what tests iterate over instead of a hand list. */
export async function documentedOperations() {
  const doc = await openApiDocument();
  return Object.entries(doc.paths).flatMap(([template, ops]) => Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), template, ...op })));
}

/**
 * Every answer the tests receive from a documented route must be documented in GET /openapi.json:
 * its status, and its body against that status's schema. So the document cannot drift from the code.
 */
export async function expectDocumented(method: string, path: string, res: Response, body: unknown) {
  const doc = await openApiDocument();
  const bare = new URL(path, "http://localhost").pathname.replace(/(.)\/$/, "$1");
  const template = Object.keys(doc.paths).find((t) => new RegExp(`^${t.replace(/\{[^}]+\}/g, "[^/]+")}$`).test(bare));
  const operation = template ? doc.paths[template]![method.toLowerCase()] : undefined;
  if (!operation) return; // an unknown path or method: the 404/405 handler's answer
  const documented = operation.responses[String(res.status)];
  if (!documented) throw new Error(`${method} ${template} answered ${res.status}, which /openapi.json does not document`);
  const schema = documented.content?.["application/json"]?.schema;
  if (!schema) return;
  const result = new Validator({ ...strict(schema), components: strict(doc.components) } as Schema, "2020-12", false).validate(body);
  if (!result.valid) {
    throw new Error(`${method} ${template} ${res.status}: the body does not match /openapi.json: ${JSON.stringify(result.errors.slice(0, 3))}`);
  }
}

/**
 * The local rate limiter counts in windows aligned to the wall clock (60 s, the period of every limit
 * in wrangler.toml). A test that fills a budget and expects the next request refused first waits, when
 * needed, until the current window has `seconds` left, so it never straddles two windows, wherever in
 * a minute it starts. (Call it from a hook or test with a timeout above `seconds`.)
 */
export async function inOneLimiterWindow(seconds = 12) {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < seconds * 1000) await new Promise((r) => setTimeout(r, left + 100));
}

export const randomIp = () => `10.${[0, 0, 0].map(() => Math.floor(Math.random() * 256)).join(".")}`;

let counter = 0;
/** A username no other test in this file uses. */
export const uniqueName = (prefix = "user") => `${prefix}_${Date.now().toString(36)}_${counter++}`;

export const PASSWORD = "correct horse 42";

export async function registerUser(overrides: Record<string, unknown> = {}) {
  const username = uniqueName();
  const input = { username, password: PASSWORD, ...overrides };
  const res = await call("POST", "/register", { body: input });
  expect(res.status, res.text).toBe(201);
  return { ...res.body, input } as {
    user: { id: string; username: string; email: string | null; roles: string[]; created_at: string };
    access_token: string;
    refresh_token: string;
    input: { username: string; password: string; email?: string };
  };
}

/** Every non-2xx answer has the contract's error shape. */
export function expectError(res: ApiResponse, status: number, code: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(res.body).toMatchObject({ error: code, message: expect.any(String) });
  expect(res.text).not.toMatch(/\bat .*\.(ts|js):\d+/); // no stack trace
}

/** Gives a user the admin role directly in D1 (what `npm run admin:grant` does). */
export async function makeAdmin(userId: string) {
  await env.DB.prepare(`UPDATE users SET roles = '["user","admin"]' WHERE id = ?`).bind(userId).run();
}

/** A fresh user with the admin role and an access token that carries it (roles are read at login). */
export async function adminToken(): Promise<string> {
  const reg = await registerUser();
  await makeAdmin(reg.user.id);
  const res = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD } });
  expect(res.body.user.roles).toContain("admin");
  return res.body.access_token;
}

export function decodeJwtPart(token: string, part: 0 | 1): Record<string, unknown> {
  const segment = token.split(".")[part]!;
  return JSON.parse(atob(segment.replace(/-/g, "+").replace(/_/g, "/")));
}

export const login = (username: string, password = PASSWORD) => call("POST", "/login", { body: { username, password } });

/** Refreshes as one steady client (IP and User-Agent), the way a browser does; pass another IP to play a thief. */
export const refreshWith = (refresh_token: string, ip = "10.200.0.1") =>
  call("POST", "/refresh", { body: { refresh_token }, headers: { "cf-connecting-ip": ip, "user-agent": "TestBrowser/1.0" } });

/** KV revocation entries with their absolute expiry (Unix seconds), as KV list reports them. */
export async function revokedEntries(prefix: "sid:" | "usr:") {
  const { keys } = await env.REVOKED.list({ prefix });
  return new Map(keys.map((k) => [k.name.slice(prefix.length), k.expiration]));
}

/** Moves a session's rotation history into the past, beyond the reuse grace window. */
export async function ageRotations(seconds: number) {
  await env.DB.prepare("UPDATE rotated_refresh_tokens SET rotated_at = rotated_at - ?")
    .bind(seconds * 1000)
    .run();
}

export const sidOf = (accessToken: string) => decodeJwtPart(accessToken, 1).sid as string;

/** Wrong passwords and codes a session has sent to step-up checks (its own budget, auth/core/step-up.ts). */
export const stepUpFailures = async (accessToken: string) =>
  (await env.DB.prepare("SELECT password_failures AS n FROM sessions WHERE id = ?").bind(sidOf(accessToken)).first<{ n: number }>())!.n;

export const nowSeconds = () => Math.floor(Date.now() / 1000);
export const testJwk = () => JSON.parse(env.JWT_PRIVATE_KEY) as JWK;
const b64url = (text: string) => btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

export interface ForgeOptions {
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  key?: CryptoKey | Uint8Array;
}

/**
 * Signs a token the way an attacker or a broken issuer would, starting from claims and a header
 * that the API accepts (signed with the test key), so each test changes one thing.
 */
export async function forgeToken(opts: ForgeOptions = {}) {
  const jwk = testJwk();
  const key = opts.key ?? ((await importJWK(jwk, "ES256")) as CryptoKey);
  const claims = {
    iss: env.ISSUER,
    aud: env.AUDIENCE,
    sub: "u-1",
    jti: crypto.randomUUID(),
    iat: nowSeconds(),
    exp: nowSeconds() + 300,
    sid: "s-1",
    username: "alice",
    roles: ["user"],
    ...opts.claims,
  };
  return new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: jwk.kid, typ: "at+jwt", ...opts.header } as never).sign(key);
}

/** An unsigned token (`alg: none`), which no library should ever accept. */
export function unsignedToken(claims: Record<string, unknown>) {
  return `${b64url(JSON.stringify({ alg: "none", typ: "at+jwt", kid: testJwk().kid }))}.${b64url(JSON.stringify(claims))}.`;
}

/**
 * Wraps a binding so that the first call of `method` whose arguments match `when` runs `fault`
 * (which may call the real method) instead; every other call goes through unchanged.
 */
export function once<T extends object>(
  binding: T,
  method: string,
  fault: (real: (...args: unknown[]) => unknown, args: unknown[]) => unknown,
  when = (_args: unknown[]) => true,
): T {
  let armed = true;
  return new Proxy(binding, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      const real = (...args: unknown[]) => value.apply(target, args);
      if (prop !== method) return real;
      return (...args: unknown[]) => {
        if (!armed || !when(args)) return real(...args);
        armed = false;
        return fault(real, args);
      };
    },
  });
}

/** KV whose next put fails: nothing is written. */
export const kvPutFailsOnce = () =>
  once(env.REVOKED, "put", async () => {
    throw new Error("injected: KV put failed");
  });

/** D1 whose `n`th batch (counting from 1) is applied, but its answer is lost: the worker sees an error. */
export function d1BatchAnswerLostAt(n: number) {
  let calls = 0;
  return once(
    env.DB,
    "batch",
    async (real, args) => {
      await real(...args);
      throw new Error("injected: D1 answer lost");
    },
    () => ++calls === n,
  );
}

/** D1 whose next batch is applied, but its answer is lost: the worker sees an error. */
export const d1BatchAnswerLostOnce = () =>
  once(env.DB, "batch", async (real, args) => {
    await real(...args);
    throw new Error("injected: D1 answer lost");
  });

/**
 * D1 that runs the first single statement whose SQL matches, then loses its answer: the write is
 * applied, the worker sees an error.
 */
export const d1StatementAnswerLostOnce = (sql: RegExp) =>
  once(
    env.DB,
    "prepare",
    (real, args) => {
      const lose = (stmt: D1PreparedStatement): D1PreparedStatement =>
        new Proxy(stmt, {
          get(target, prop) {
            const value = Reflect.get(target, prop);
            if (typeof value !== "function") return value;
            if (prop === "bind") return (...params: unknown[]) => lose(value.apply(target, params));
            return async (...a: unknown[]) => {
              await value.apply(target, a);
              throw new Error("injected: D1 answer lost");
            };
          },
        });
      return lose(real(...args) as D1PreparedStatement);
    },
    ([query]) => sql.test(String(query)),
  );

/** D1 that holds every statement and batch until `release()`: what must not wait for the database, does not. */
export function d1Held() {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const hold = <T extends object>(target: T, methods: string[], wrapBound?: (v: unknown) => unknown): T =>
    new Proxy(target, {
      get(t, p) {
        const v = Reflect.get(t, p);
        if (typeof v !== "function") return v;
        if (methods.includes(String(p))) return async (...a: unknown[]) => (await gate, v.apply(t, a));
        if (p === "bind" || p === "prepare") return (...a: unknown[]) => (wrapBound ?? ((x) => x))(v.apply(t, a));
        return v.bind(t);
      },
    });
  const statement = (s: unknown): unknown => hold(s as D1PreparedStatement, ["all", "run", "raw", "first"], statement);
  return { DB: hold(env.DB, ["batch"], statement), release };
}

/**
 * D1 that runs the given statements just before its nth batch (counting from 1): another request's
 * writes landing between two steps of this one (login: batch 1 finds the account and starts its check,
 * batch 2 writes the session).
 */
export function d1WritesBefore(writes: Record<number, [string, ...unknown[]][]>) {
  let calls = 0;
  return new Proxy(env.DB, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (prop !== "batch") return typeof value === "function" ? value.bind(target) : value;
      return async (stmts: D1PreparedStatement[]) => {
        for (const [sql, ...params] of writes[++calls] ?? [])
          await target
            .prepare(sql)
            .bind(...params)
            .run();
        return target.batch(stmts);
      };
    },
  });
}

/** D1 that runs `sql` (bound to `params`) just before its `n`th batch. */
export const d1WriteBeforeBatch = (n: number, sql: string, ...params: unknown[]) => d1WritesBefore({ [n]: [[sql, ...params]] });

/**
 * A D1 binding that counts round trips (each batch, and each statement run on its own), and which of
 * them went through a D1 session (the Sessions API, which may answer from a read replica).
 */
export function countingD1() {
  const trips = { n: 0, replica: 0, sessions: [] as (string | undefined)[], statements: 0, writes: 0, sqls: [] as string[][] };
  const sqlOf = new WeakMap<object, string>();
  const ran = (sqls: string[]) => {
    trips.statements += sqls.length;
    trips.sqls.push(sqls);
    trips.writes += sqls.filter((sql) => /^\s*(insert|update|delete|replace)\b/i.test(sql)).length;
  };
  const statement = (stmt: D1PreparedStatement, viaSession: boolean, sql: string): D1PreparedStatement => {
    const proxy = new Proxy(stmt, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (typeof value !== "function") return value;
        if (prop === "bind") return (...args: unknown[]) => statement(value.apply(target, args), viaSession, sql);
        if (["all", "run", "raw", "first"].includes(String(prop))) {
          return (...args: unknown[]) => {
            trips.n++;
            if (viaSession) trips.replica++;
            ran([sql]);
            return value.apply(target, args);
          };
        }
        return value.bind(target);
      },
    });
    sqlOf.set(proxy, sql);
    return proxy;
  };
  const database = <T extends D1Database | D1DatabaseSession>(db: T, viaSession: boolean): T =>
    new Proxy(db, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (typeof value !== "function") return value;
        if (prop === "prepare") return (sql: string) => statement(value.call(target, sql), viaSession, sql);
        if (prop === "batch") {
          return (stmts: D1PreparedStatement[]) => {
            trips.n++;
            if (viaSession) trips.replica++;
            ran(stmts.map((st) => sqlOf.get(st) ?? ""));
            return value.call(target, stmts);
          };
        }
        if (prop === "withSession") {
          return (constraint?: string) => {
            trips.sessions.push(constraint);
            return database(value.call(target, constraint), true);
          };
        }
        return value.bind(target);
      },
    });
  return { DB: database(env.DB, false), trips };
}

/** One request, with what it asked of D1 (round trips, statements, writes, sessions). */
export async function d1Usage(method: string, path: string, opts: Parameters<typeof call>[2] = {}) {
  const { DB, trips } = countingD1();
  const res = await call(method, path, { ...opts, bindings: { DB, ...opts.bindings } });
  return { res, ...trips };
}

export interface SentMail {
  from: string;
  to: string;
  subject: string;
  text: string;
  html: string;
}

/** The mail queue (wrangler.toml [[queues.consumers]]). */
export const MAIL_QUEUE_NAME = "edge-auth-mail";

/** A producer binding for the mail queue that keeps the jobs it is given, for a test to deliver (deliverJobs). */
export function capturingQueue() {
  const jobs: unknown[] = [];
  const MAIL_QUEUE = {
    send: async (body: unknown) => void jobs.push(body),
    sendBatch: async (messages: { body: unknown }[]) => void jobs.push(...messages.map((m) => m.body)),
  } as unknown as Queue;
  return { jobs, MAIL_QUEUE };
}

/**
 * Delivers `jobs` to the Worker's queue handler as the queue does (one batch, at `attempts`), with
 * these bindings; the ack and retry of each message (message ids in `ids`, in order).
 */
export async function deliverJobs(jobs: unknown[], bindings: Partial<Env> = {}, attempts = 1) {
  const ids = jobs.map(() => crypto.randomUUID());
  const batch = createMessageBatch(
    MAIL_QUEUE_NAME,
    jobs.map((body, i) => ({ id: ids[i]!, timestamp: new Date(), attempts, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...bindings });
  return { ids, result: await getQueueResult(batch, ctx) };
}

/**
 * A mail binding that keeps what it is given (or fails), and requests that wait for mail sent after
 * the answer, or by the mail queue: the jobs a request queued are delivered once it answered, with
 * the same mail binding (and the request's other bindings).
 */
export function mailbox(fail = false) {
  const sent: SentMail[] = [];
  const EMAIL = {
    send: async (m: SentMail) => {
      if (fail) throw new Error("mail service down");
      sent.push(m);
      return { messageId: `m${sent.length}` };
    },
  } as unknown as SendEmail;
  const send = async (method: string, path: string, opts: CallOptions = {}) => {
    const ctx = createExecutionContext();
    const queue = capturingQueue();
    const res = await call(method, path, { ...opts, bindings: { EMAIL, MAIL_QUEUE: queue.MAIL_QUEUE, ...opts.bindings }, ctx });
    await waitOnExecutionContext(ctx);
    if (queue.jobs.length) await deliverJobs(queue.jobs, { EMAIL, ...opts.bindings });
    return res;
  };
  /** The token of the last link mailed to `to` for `action`. */
  const link = (to: string, action: string) => {
    const mail = sent.filter((m) => m.to === to).at(-1);
    const token = new RegExp(`#${action}=([A-Za-z0-9_-]{43})`).exec(mail?.text ?? "")?.[1];
    if (!token) throw new Error(`no ${action} link mailed to ${to}`);
    return token;
  };
  return { sent, send, link, binding: EMAIL };
}

// ---- Second factors ----

/** Waits until at least 2 s remain in the current 30-second step, so a code computed now is still current when it arrives. */
export async function awayFromStepEdge() {
  const left = STEP_SECONDS * 1000 - (Date.now() % (STEP_SECONDS * 1000));
  if (left < 2000) await new Promise((r) => setTimeout(r, left + 50));
}
export const codeAt = (secret: string, offsetSteps = 0) => totpCode(fromBase32(secret), new Date(Date.now() + offsetSteps * STEP_SECONDS * 1000));
/** Six digits that no step within the skew window shows. */
export async function wrongCode(secret: string) {
  const near = await Promise.all([-2, -1, 0, 1, 2].map((n) => codeAt(secret, n)));
  for (;;) {
    const code = String(crypto.getRandomValues(new Uint32Array(1))[0]! % 1_000_000).padStart(6, "0");
    if (!near.includes(code)) return code;
  }
}

/** A user with TOTP on: their secret, recovery codes and a fresh access token. */
export async function userWithTotp(email?: string) {
  const reg = await registerUser(email ? { email } : {});
  const setup = await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD } });
  expect(setup.status, setup.text).toBe(200);
  await awayFromStepEdge();
  // The code of the previous step: the one of this step stays unused for the test that follows.
  const enabled = await call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code: await codeAt(setup.body.secret, -1) } });
  expect(enabled.status, enabled.text).toBe(200);
  return { ...reg, secret: setup.body.secret as string, recoveryCodes: enabled.body.recovery_codes as string[] };
}

export const ORIGIN = "http://localhost:5173"; // CORS_ORIGINS in the tests: WEBAUTHN_ORIGINS falls back to it

export async function registerOptions(
  token: string,
  check: { current_password: string; code?: string; recovery_code?: string } = { current_password: PASSWORD },
) {
  const res = await call("POST", "/passkeys/register/options", { token, body: check });
  expect(res.status, res.text).toBe(200);
  return res.body.options as {
    challenge: string;
    user: { id: string; name: string };
    rp: { id: string; name: string };
    excludeCredentials: { id: string }[];
    authenticatorSelection: Record<string, unknown>;
  };
}

/** A user with one registered passkey. */
export async function userWithPasskey(overrides: Record<string, unknown> = {}) {
  const reg = await registerUser(overrides);
  const authenticator = new SoftAuthenticator(ORIGIN);
  const options = await registerOptions(reg.access_token);
  const res = await call("POST", "/passkeys/register/verify", {
    token: reg.access_token,
    body: { response: await authenticator.register(options), name: "Laptop" },
  });
  expect(res.status, res.text).toBe(201);
  return { ...reg, authenticator, passkey: res.body as { id: string; name: string } };
}
