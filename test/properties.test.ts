import { exports } from "cloudflare:workers";
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import { wholeApp } from "../src/app";
import { adminToken, decodeJwtPart, expectDocumented, openApiDocument, PASSWORD, randomIp, registerUser, sidOf } from "./helpers";

/**
 * Properties over arbitrary requests to every operation of GET /openapi.json (read from the document
 * the worker serves, so a new route is covered the day it is documented): never a 5xx, the error
 * shape on a non-2xx, never a stack trace, and a status (and body) the document lists for the
 * operation. Bodies and query strings come from the operation's own schemas, mostly valid so they
 * reach the handlers, mixed with hostile values, fields and encodings.
 */

type Schema = {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
};
type Parameter = { in: "path" | "query" | "header"; name: string; schema: Schema };
type Operation = { method: string; template: string; parameters: Parameter[]; body?: Schema };
type Doc = {
  paths: Record<string, Record<string, { parameters?: Parameter[]; requestBody?: { content: Record<string, { schema: Schema }> } }>>;
  components: { schemas: Record<string, Schema> };
};

const doc = (await openApiDocument()) as unknown as Doc;
const OPERATIONS: Operation[] = Object.entries(doc.paths).flatMap(([template, ops]) =>
  Object.entries(ops).map(([method, op]) => ({
    method: method.toUpperCase(),
    template,
    parameters: op.parameters ?? [],
    body: op.requestBody?.content["application/json"]?.schema,
  })),
);

// ---- Credentials, kept alive: a run may end a session (logout, a spent step-up budget, a refresh
// token replayed) or disable the user; the next run then starts from fresh ones. ----

type Credentials = { user: { access: string; refresh: string; id: string; sid: string }; admin: { access: string; id: string } };
let creds: Credentials;
// Whose real credentials (or ids) the current request carried, and whose the last runs may have spent.
let sent = new Set<keyof Credentials>();
const suspect = new Set<keyof Credentials>(["user", "admin"]);

const freshUser = async () => {
  const reg = await registerUser();
  return { access: reg.access_token, refresh: reg.refresh_token, id: reg.user.id, sid: sidOf(reg.access_token) };
};
const freshAdmin = async () => {
  const access = await adminToken();
  return { access, id: decodeJwtPart(access, 1).sub as string };
};
const alive = async (token: string | undefined) =>
  token !== undefined &&
  (await exports.default.fetch(new Request("http://localhost/protected", { headers: { authorization: `Bearer ${token}`, "cf-connecting-ip": randomIp() } })))
    .status === 200;

async function revive() {
  if (suspect.has("user") && !(await alive(creds?.user?.access))) creds = { ...creds, user: await freshUser() };
  if (suspect.has("admin") && !(await alive(creds?.admin?.access))) creds = { ...creds, admin: await freshAdmin() };
  suspect.clear();
}
beforeEach(revive);

/**
 * After an answer: a request that carried a real credential may have spent it (a logout, a refresh
 * token rotated or replayed, a step-up's wrong password, an account disabled), when it changed
 * something or was refused.
 */
function spent(method: string, status: number) {
  if ((status < 300 && method !== "GET" && method !== "HEAD" && method !== "OPTIONS") || status === 401 || status === 403) {
    for (const who of sent) suspect.add(who);
  }
  sent = new Set();
}

/** A real credential, or one edited (a character changed, cut short), resolved when the request is sent. */
class Cred {
  constructor(
    readonly of: "access" | "admin" | "refresh" | "sid" | "uid" | "aid",
    readonly edit?: { at: number; ch?: string },
  ) {}
  get value(): string {
    const c = creds;
    if (!this.edit) sent.add(this.of === "admin" || this.of === "aid" ? "admin" : "user");
    const v = { access: c.user.access, admin: c.admin.access, refresh: c.user.refresh, sid: c.user.sid, uid: c.user.id, aid: c.admin.id }[this.of];
    if (!this.edit) return v;
    const at = this.edit.at % v.length;
    return this.edit.ch === undefined ? v.slice(0, at) : v.slice(0, at) + this.edit.ch + v.slice(at + 1);
  }
  toJSON() {
    return this.value;
  }
}
const text = (v: string | Cred) => (typeof v === "string" ? v : v.value);

// ---- Arbitraries ----

const credArb = fc.oneof(
  fc.constantFrom("access", "admin", "refresh").map((of) => new Cred(of)),
  fc.tuple(fc.nat(), fc.constantFrom("A", "_", ".", "-", "z")).map(([at, ch]) => new Cred("access", { at, ch })),
  fc.nat().map((at) => new Cred("access", { at })),
);
const tokenArb = fc.oneof(credArb, fc.string({ maxLength: 200 }));

const hostileString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 140 }),
  fc.constantFrom("", " ", "\u0000", "%00", "%ZZ", "../..", "a".repeat(5000), "\u202e\u200b", "null", "[]", "{}", "1e999"),
);
const hostileValue = fc.oneof(hostileString, fc.jsonValue({ maxDepth: 3 }), credArb, fc.constant(PASSWORD));

const resolve = (schema: Schema): Schema => (schema.$ref ? resolve(doc.components.schemas[schema.$ref.replace("#/components/schemas/", "")]!) : schema);

/** Values a schema accepts (mostly), with hostile ones mixed in at every field. */
function valuesOf(s: Schema, depth = 0): fc.Arbitrary<unknown> {
  if (depth > 3) return hostileValue;
  return fc.oneof({ weight: 4, arbitrary: acceptedBy(resolve(s), depth) }, { weight: 1, arbitrary: hostileValue });
}
function acceptedBy(schema: Schema, depth: number): fc.Arbitrary<unknown> {
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) return fc.oneof(...alternatives.map((a) => valuesOf(a, depth + 1)));
  if (schema.allOf) return valuesOf({ type: "object", properties: Object.assign({}, ...schema.allOf.map((a) => resolve(a).properties)) }, depth + 1);
  const type = Array.isArray(schema.type) ? schema.type : [schema.type];
  const byType = type.map((t): fc.Arbitrary<unknown> => {
    switch (t) {
      case "string":
        if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern));
        if (schema.format === "email") return fc.emailAddress();
        return fc.oneof(fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 64, 64) }), fc.constant(PASSWORD), credArb);
      case "integer":
      case "number":
        return fc.integer({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e6 });
      case "boolean":
        return fc.boolean();
      case "null":
        return fc.constant(null);
      case "array":
        return fc.array(schema.items ? valuesOf(schema.items, depth + 1) : fc.jsonValue(), { maxLength: 3 });
      case "object":
        return objectOf(schema, depth);
      default:
        return fc.jsonValue({ maxDepth: 2 });
    }
  });
  return fc.oneof(...byType);
}
function objectOf(schema: Schema, depth: number) {
  const props = Object.entries(schema.properties ?? {});
  const fields = fc.record(Object.fromEntries(props.map(([k, v]) => [k, valuesOf(v, depth + 1)])), { requiredKeys: [] });
  // Mass assignment and prototype keys beside the real fields.
  const extra = fc.dictionary(fc.constantFrom("__proto__", "constructor", "roles", "id", "user_id", "failed_logins"), hostileValue, { maxKeys: 2 });
  return fc.tuple(fields, extra).map(([f, x]) => Object.fromEntries([...Object.entries(x), ...Object.entries(f)]));
}

/** A body for the operation: its schema's object (mostly valid), any JSON value, or bytes that are no JSON. */
const bodyArb = (op: Operation) =>
  fc.oneof(
    { weight: op.body ? 4 : 1, arbitrary: (op.body ? valuesOf(op.body) : objectOf({}, 0)).map((json) => ({ json })) },
    { weight: 1, arbitrary: fc.jsonValue().map((json) => ({ json })) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 300 }).map((raw) => ({ raw })) },
  );

const segment = (s: string) => encodeURIComponent(s);
const PLAUSIBLE: Record<string, fc.Arbitrary<string | Cred>> = {
  id: fc.oneof(
    fc.constantFrom("sid", "uid", "aid").map((of) => new Cred(of)),
    fc.uuid().map(String),
  ),
  provider: fc.constantFrom("local", "crafted", "github", "down", "deaf", "google"),
  kid: fc.constantFrom("test-key-1", "k1"),
};
/** A path parameter's value, ready for the URL: a real id (encoded when sent), a plausible one, or a hostile segment. */
const pathValueArb = (p: Parameter) =>
  fc.oneof(
    { weight: 3, arbitrary: PLAUSIBLE[p.name] ?? fc.string({ minLength: 1, maxLength: 20 }).map(segment) },
    { weight: 1, arbitrary: hostileString.filter((s) => s !== "").map(segment) },
    { weight: 1, arbitrary: fc.constantFrom("%ZZ", "%00", "..", "%2F", "%2e%2e", "a".repeat(2000)) },
  );

/** The operation's own query parameters (valid or hostile values), junk ones, or a malformed query. */
const queryArb = (op: Operation) => {
  const own = op.parameters.filter((p) => p.in === "query");
  const named = fc.record(
    Object.fromEntries(
      own.map((p) => [
        p.name,
        fc.oneof(
          valuesOf(p.schema).map((v) => (typeof v === "string" ? v : JSON.stringify(v))),
          hostileString,
        ),
      ]),
    ),
    {
      requiredKeys: [],
    },
  );
  const junk = fc.dictionary(fc.constantFrom("limit", "cursor", "x", "__proto__", "return_to", "state", "code"), hostileString, { maxKeys: 2 });
  return fc.oneof(
    { weight: 4, arbitrary: fc.tuple(named, junk).map(([n, j]) => new URLSearchParams({ ...j, ...n } as Record<string, string>).toString()) },
    { weight: 1, arbitrary: fc.constantFrom("%", "a=%ZZ", "limit=1&limit=2", "cursor=%00", "limit=1e9&cursor=WzFd", "=", "&&&") },
  );
};

const headerValue = fc.string({ maxLength: 100 }).filter((s) => /^[\x20-\x7e]*$/.test(s));
const headersArb = fc.record(
  {
    "content-type": fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom("application/json", "application/json; charset=utf-8") },
      { weight: 1, arbitrary: fc.constantFrom("text/plain", "application/x-www-form-urlencoded", "application/merge-patch+json") },
      { weight: 1, arbitrary: headerValue },
    ),
    authorization: fc.oneof({ weight: 3, arbitrary: tokenArb.map((t) => ({ bearer: t })) }, { weight: 1, arbitrary: headerValue }),
    origin: fc.constantFrom("http://localhost:5173", "https://evil.example", "null"),
    cookie: tokenArb.map((t) => ({ cookie: t })),
  },
  { requiredKeys: [] },
);

const requestArb = (op: Operation) =>
  fc.record({
    // Mostly the operation's own method, so requests get past routing into validation and handlers.
    method: fc.oneof(
      { weight: 6, arbitrary: fc.constant(op.method) },
      { weight: 1, arbitrary: fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD") },
    ),
    path: fc.record(Object.fromEntries(op.parameters.filter((p) => p.in === "path").map((p) => [p.name, pathValueArb(p)]))),
    suffix: fc.oneof({ weight: 8, arbitrary: fc.constant("") }, { weight: 1, arbitrary: fc.constantFrom("/", "/x") }),
    query: fc.option(queryArb(op), { freq: 2, nil: undefined }),
    headers: headersArb,
    body: fc.option(bodyArb(op), { nil: undefined, freq: 4 }),
  });
type ArbitraryRequest = typeof requestArb extends (op: Operation) => fc.Arbitrary<infer T> ? T : never;

function pathOf(op: Operation, values: Record<string, string | Cred>) {
  return op.template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const v = values[name]!;
    return typeof v === "string" ? v : segment(v.value);
  });
}

async function send(op: Operation, r: ArbitraryRequest) {
  const hasBody = r.body !== undefined && r.method !== "GET" && r.method !== "HEAD";
  const headers = new Headers({ "cf-connecting-ip": randomIp() });
  for (const [k, v] of Object.entries(r.headers)) {
    if (typeof v === "string") headers.set(k, v);
    else if ("bearer" in v) headers.set(k, `Bearer ${text(v.bearer)}`);
    else headers.set(k, `refresh_token=${encodeURIComponent(text(v.cookie))}`);
  }
  const url = `${pathOf(op, r.path)}${r.suffix}${r.query === undefined ? "" : `?${r.query}`}`;
  const body = !hasBody ? undefined : "raw" in r.body! ? r.body.raw : JSON.stringify(r.body!.json);
  const res = await exports.default.fetch(new Request(`http://localhost${url}`, { method: r.method, headers, body, redirect: "manual" }));
  spent(r.method, res.status);
  return { res, url };
}

/**
 * The properties, for any answer to `method` `url`: never a 5xx; never a stack; on a non-2xx the
 * JSON error shape (a 429 says when to retry); and a status, and a body, that /openapi.json lists for
 * the operation the URL and method name (helpers.ts's check, which every other test runs too).
 */
async function expectContract(res: Response, method: string, url: string) {
  expect(res.status).toBeLessThan(500);
  const body = await res.text();
  expect(body).not.toMatch(/\bat .+\.(ts|js):\d+|node_modules/);
  let parsed: unknown;
  if (res.status >= 400 && method !== "HEAD") {
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    parsed = JSON.parse(body);
    const { error, message } = parsed as { error: unknown; message: unknown };
    expect(typeof message).toBe("string");
    expect(error).toMatch(/^[a-z_]+$/);
    if (res.status === 429) expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
  } else if (method !== "HEAD" && res.headers.get("content-type")?.startsWith("application/json")) {
    parsed = JSON.parse(body);
  }
  await expectDocumented(method, `http://localhost${url}`, res, parsed);
}

// Per operation, each run is one request: enough runs that every operation meets its hostile cases
// within the time the file had when it drew from a hand list of 15 routes.
const RUNS = { arbitrary: 10, json: 8 };

describe("the operations under test", () => {
  it("are every operation of /openapi.json, which are every route the app serves", async () => {
    const served = (await wholeApp()).routes
      .filter((r) => r.method !== "ALL" && !r.path.includes("*"))
      .map((r) => `${r.method} ${r.path.replace(/:([^/]+)/g, "{$1}")}`);
    expect(OPERATIONS.map((op) => `${op.method} ${op.template}`).sort()).toEqual([...new Set(served)].sort());
    expect(OPERATIONS.length).toBeGreaterThan(40);
    expect(OPERATIONS.filter((op) => op.body).length).toBeGreaterThan(20);
  });
});

describe("properties over arbitrary requests to every operation", () => {
  for (const op of OPERATIONS) {
    it(`${op.method} ${op.template}: never a 5xx, always the error shape and a documented answer, never a stack`, async () => {
      await fc.assert(
        fc
          .asyncProperty(requestArb(op), async (r) => {
            const { res, url } = await send(op, r);
            await expectContract(res, r.method, url);
          })
          .beforeEach(revive),
        { numRuns: RUNS.arbitrary },
      );
      if (op.method === "GET") return;
      // JSON of the operation's own fields, with the credential it asks for: past the parsers, into the handler.
      const token = op.template.startsWith("/admin") ? new Cred("admin") : new Cred("access");
      await fc.assert(
        fc
          .asyncProperty(
            fc.record(Object.fromEntries(op.parameters.filter((p) => p.in === "path").map((p) => [p.name, pathValueArb(p)]))),
            op.body ? valuesOf(op.body) : objectOf({}, 0),
            fc.boolean(),
            async (path, body, withToken) => {
              const headers: Record<string, string> = { "content-type": "application/json", "cf-connecting-ip": randomIp() };
              if (withToken) headers.authorization = `Bearer ${token.value}`;
              const url = pathOf(op, path);
              const res = await exports.default.fetch(
                new Request(`http://localhost${url}`, { method: op.method, headers, body: JSON.stringify(body), redirect: "manual" }),
              );
              spent(op.method, res.status);
              await expectContract(res, op.method, url);
            },
          )
          .beforeEach(revive),
        { numRuns: RUNS.json },
      );
    });
  }
});
