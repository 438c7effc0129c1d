import type { MiddlewareHandler } from "hono";
import { getConfig, LOOPBACK } from "./config";
import type { AppEnv } from "./env";

/**
 * Faults on demand, for local dev only (the soak, scripts/soak/faults.mjs; docs/development.md):
 * with DEV_FAULTS "on" (config.ts refuses it unless ISSUER is an http URL on a loopback host), the
 * request's D1 and KV bindings are wrapped, and POST /dev/faults switches:
 *   {"d1_overloaded_ms": n}   every D1 query and batch for the next n ms fails as D1 does when its
 *                             queue is full ("D1 DB is overloaded"): nothing runs;
 *   {"kv_write_failures": n}  the next n KV writes (put, delete) fail: nothing is written.
 * It answers the faults now armed. With DEV_FAULTS "off" nothing is wrapped and the path is a 404.
 * The state is this isolate's (wrangler dev runs one).
 */

const faults = { d1Until: 0, kvWrites: 0 };

const overloaded = () => new Error("D1_ERROR: D1 DB is overloaded. Too many requests queued. (injected: DEV_FAULTS)");
const d1Down = () => Date.now() < faults.d1Until;

// Only while D1 is "overloaded": a statement that fails when it runs, as D1's own would (drizzle binds
// then runs it). Outside the window prepare() hands out D1's real statements, which batch() needs.
const failing = (): D1PreparedStatement => {
  const fail = () => Promise.reject(overloaded());
  const stmt = { bind: () => stmt, all: fail, run: fail, first: fail, raw: fail };
  return stmt as unknown as D1PreparedStatement;
};

// One wrapper per binding (and per D1 session), so getDb's per-binding cache keeps working.
const wrapped = new WeakMap<object, object>();
function cached<T extends object>(real: T, make: (real: T) => T): T {
  const seen = wrapped.get(real) as T | undefined;
  if (seen) return seen;
  const w = make(real);
  wrapped.set(real, w);
  return w;
}

/** Calls through to the real binding, except the methods `over` replaces. */
function delegate<T extends object>(real: T, over: Record<string, (...args: never[]) => unknown>): T {
  return new Proxy(real, {
    get(target, prop) {
      if (typeof prop === "string" && Object.hasOwn(over, prop)) return over[prop];
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function faultyD1<T extends D1Database | D1DatabaseSession>(d1: T): T {
  return cached(d1, (real) =>
    delegate(real, {
      prepare: (query: string) => (d1Down() ? failing() : real.prepare(query)),
      batch: (statements: D1PreparedStatement[]) => (d1Down() ? Promise.reject(overloaded()) : real.batch(statements)),
      exec: (query: string) => (d1Down() ? Promise.reject(overloaded()) : (real as D1Database).exec(query)),
      withSession: (constraint: D1SessionConstraint) => faultyD1((real as D1Database).withSession(constraint)),
    }),
  );
}

function faultyKv(kv: KVNamespace): KVNamespace {
  const write =
    (method: "put" | "delete") =>
    (...args: never[]) => {
      if (faults.kvWrites > 0) {
        faults.kvWrites--;
        return Promise.reject(new Error(`KV ${method.toUpperCase()} failed: 500 Internal Server Error (injected: DEV_FAULTS)`));
      }
      return (kv[method] as (...a: never[]) => Promise<void>)(...args);
    };
  return cached(kv, (real) => delegate(real, { put: write("put"), delete: write("delete") }));
}

const faultyEnv = (env: Env) => cached(env, (e) => ({ ...e, DB: faultyD1(e.DB), REVOKED: faultyKv(e.REVOKED) }));

const count = (v: unknown, max: number) => (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max ? (v as number) : undefined);

/** First middleware after the request id: with DEV_FAULTS "on", wraps the bindings and answers POST /dev/faults. */
export const devFaults: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.env.DEV_FAULTS !== "on") return next();
  getConfig(c.env); // a ConfigError (500, config_invalid) unless ISSUER is loopback http
  c.env = faultyEnv(c.env);
  if (c.req.path !== "/dev/faults" || c.req.method !== "POST") return next();
  // The switch only on the loopback name the request came to as well (whatever ISSUER says).
  if (!LOOPBACK.test(new URL(c.req.url).hostname)) return next();
  const body = (await c.req.json().catch(() => ({}))) as Record<string, unknown>;
  const ms = count(body.d1_overloaded_ms, 600_000);
  const kv = count(body.kv_write_failures, 100);
  if (ms !== undefined) faults.d1Until = Date.now() + ms;
  if (kv !== undefined) faults.kvWrites = kv;
  return c.json({ d1_overloaded_ms: Math.max(0, faults.d1Until - Date.now()), kv_write_failures: faults.kvWrites });
};
