import { exports } from "cloudflare:workers";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { adminToken, randomIp, registerUser } from "./helpers";

/**
 * Properties over arbitrary requests to every route: never a 5xx, always the error shape on a
 * non-2xx, never a stack trace.
 */

const ROUTES: [string, string][] = [
  ["GET", "/"],
  ["GET", "/health"],
  ["GET", "/.well-known/jwks.json"],
  ["POST", "/register"],
  ["POST", "/login"],
  ["POST", "/refresh"],
  ["POST", "/logout"],
  ["POST", "/logout/all"],
  ["POST", "/password"],
  ["GET", "/sessions"],
  ["DELETE", "/sessions/x"],
  ["GET", "/protected"],
  ["GET", "/me"],
  ["GET", "/admin/users"],
  ["GET", "/admin/audit"],
];
const FIELDS = ["username", "email", "password", "refresh_token", "current_password", "new_password", "use_cookie", "roles", "__proto__", "constructor"];

let tokens: string[] = [];

beforeAll(async () => {
  const user = await registerUser();
  tokens = [user.access_token, await adminToken(), user.refresh_token];
});

// A valid token with one character changed, or cut, or one of the real ones.
const tokenArb = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.constant(null).map(() => tokens[0]!),
  fc.constant(null).map(() => tokens[1]!),
  fc.tuple(fc.nat(), fc.constantFrom("A", "_", ".", "-", "z")).map(([i, ch]) => {
    const t = tokens[0]!;
    const at = i % t.length;
    return t.slice(0, at) + ch + t.slice(at + 1);
  }),
  fc.nat().map((i) => tokens[0]!.slice(0, i % tokens[0]!.length)),
);

const bodyArb = fc.oneof(
  fc.json(),
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.dictionary(fc.constantFrom(...FIELDS), fc.oneof(fc.string({ unit: "binary", maxLength: 140 }), fc.jsonValue(), tokenArb)).map((o) => JSON.stringify(o)),
);

const headerValue = fc.string({ maxLength: 100 }).filter((s) => /^[\x20-\x7e]*$/.test(s));
const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("application/json", "application/json; charset=utf-8") },
  { weight: 1, arbitrary: fc.constantFrom("text/plain", "application/x-www-form-urlencoded", "application/merge-patch+json") },
  { weight: 1, arbitrary: headerValue },
);
const headersArb = fc.record(
  {
    "content-type": contentType,
    authorization: fc.oneof({ weight: 3, arbitrary: tokenArb.map((t) => `Bearer ${t}`) }, { weight: 1, arbitrary: headerValue }),
    origin: fc.constantFrom("http://localhost:5173", "https://evil.example", "null"),
    cookie: tokenArb.map((t) => `refresh_token=${encodeURIComponent(t)}`),
  },
  { requiredKeys: [] },
);

const requestArb = fc.record({
  route: fc.constantFrom(...ROUTES),
  // Mostly the route's own method, so requests get past routing into validation and handlers.
  method: fc.oneof(
    { weight: 5, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD") },
  ),
  suffix: fc.option(fc.constantFrom("/", "/x", "?limit=-1", "?cursor=%00", `?user_id=${"a".repeat(100)}`, "?limit=1e9&cursor=WzFd"), { nil: undefined }),
  headers: headersArb,
  body: fc.option(bodyArb, { nil: undefined, freq: 4 }),
});

type ArbitraryRequest = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;

async function send(r: ArbitraryRequest) {
  const method = r.method ?? r.route[0];
  const hasBody = r.body !== undefined && method !== "GET" && method !== "HEAD";
  const headers = new Headers({ "cf-connecting-ip": randomIp() });
  for (const [k, v] of Object.entries(r.headers)) headers.set(k, v);
  const req = new Request(`http://localhost${r.route[1]}${r.suffix ?? ""}`, { method, headers, body: hasBody ? r.body : undefined });
  return exports.default.fetch(req);
}

/** The three properties, for any response to a request made with `method`. */
async function expectContract(res: Response, method: string) {
  expect(res.status).toBeLessThan(500);
  const text = await res.text();
  expect(text).not.toMatch(/\bat .+\.(ts|js):\d+|node_modules/);
  if (res.status >= 400 && method !== "HEAD") {
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = JSON.parse(text);
    expect(typeof body.error).toBe("string");
    expect(typeof body.message).toBe("string");
    expect(body.error).toMatch(/^[a-z_]+$/);
  }
}

// Body routes, JSON-typed, with a valid token: arbitrary JSON values and objects of the real fields.
const BODY_ROUTES = ["/register", "/login", "/refresh", "/password"];
const jsonBodyArb = fc.oneof(
  { weight: 3, arbitrary: fc.dictionary(fc.constantFrom(...FIELDS), fc.oneof(fc.string({ unit: "binary", maxLength: 140 }), fc.jsonValue(), tokenArb)) },
  { weight: 1, arbitrary: fc.jsonValue() },
);

describe("properties over arbitrary requests", () => {
  it("never a 5xx; a non-2xx is always the JSON error shape; never a stack trace", async () => {
    await fc.assert(
      fc.asyncProperty(requestArb, async (r) => expectContract(await send(r), r.method ?? r.route[0])),
      { numRuns: 400 },
    );
  });

  it("holds the same for arbitrary JSON bodies sent to every route that reads a body", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...BODY_ROUTES), jsonBodyArb, fc.boolean(), async (path, body, withToken) => {
        const headers: Record<string, string> = { "content-type": "application/json", "cf-connecting-ip": randomIp() };
        if (withToken) headers.authorization = `Bearer ${tokens[0]}`;
        const res = await exports.default.fetch(new Request(`http://localhost${path}`, { method: "POST", headers, body: JSON.stringify(body) }));
        await expectContract(res, "POST");
      }),
      { numRuns: 300 },
    );
  });
});
