import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { PASSWORD, call, randomIp, registerUser, uniqueName } from "./helpers";

/**
 * D1 round trips per endpoint: at the edge each one goes to the database's primary, maybe on another
 * continent, so they are the latency a user feels. A batch is one round trip. These pin today's
 * counts, so none can change unnoticed.
 */

/** A D1 binding that counts round trips: each batch, and each statement run on its own. */
function counting() {
  const trips = { n: 0 };
  const statement = (stmt: D1PreparedStatement): D1PreparedStatement =>
    new Proxy(stmt, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (typeof value !== "function") return value;
        if (prop === "bind") return (...args: unknown[]) => statement(value.apply(target, args));
        if (["all", "run", "raw", "first"].includes(String(prop))) {
          return (...args: unknown[]) => {
            trips.n++;
            return value.apply(target, args);
          };
        }
        return value.bind(target);
      },
    });
  const DB = new Proxy(env.DB, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      if (prop === "prepare") return (sql: string) => statement(value.call(target, sql));
      if (prop === "batch") {
        return (stmts: D1PreparedStatement[]) => {
          trips.n++;
          return value.call(target, stmts);
        };
      }
      return value.bind(target);
    },
  });
  return { DB, trips };
}

async function tripsOf(method: string, path: string, opts: Parameters<typeof call>[2] = {}) {
  const { DB, trips } = counting();
  const res = await call(method, path, { ...opts, bindings: { DB, ...opts.bindings } });
  return { res, n: trips.n };
}

describe("D1 round trips per endpoint", () => {
  it("GET /protected: none", async () => {
    const reg = await registerUser();
    const { res, n } = await tripsOf("GET", "/protected", { token: reg.access_token });
    expect(res.status).toBe(200);
    expect(n).toBe(0);
  });

  it("POST /refresh: one on success", async () => {
    const reg = await registerUser();
    const { res, n } = await tripsOf("POST", "/refresh", { body: { refresh_token: reg.refresh_token }, headers: { "cf-connecting-ip": randomIp() } });
    expect(res.status, res.text).toBe(200);
    expect(n).toBe(1);
  });

  it("POST /login: two (the account with the start of its check, then one batch)", async () => {
    const reg = await registerUser();
    const { res, n } = await tripsOf("POST", "/login", { body: { username: reg.input.username, password: PASSWORD } });
    expect(res.status, res.text).toBe(200);
    expect(n).toBe(2);
  });

  it("POST /register: two (taken check, one batch with the audit row)", async () => {
    const { res, n } = await tripsOf("POST", "/register", { body: { username: uniqueName(), password: PASSWORD } });
    expect(res.status, res.text).toBe(201);
    expect(n).toBe(2);
  });

  it("POST /logout: one (the revocation with its audit row), plus the KV write", async () => {
    const reg = await registerUser();
    const { res, n } = await tripsOf("POST", "/logout", { token: reg.access_token });
    expect(res.status, res.text).toBe(200);
    expect(n).toBe(1);
  });
});
