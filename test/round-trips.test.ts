import { describe, expect, it } from "vitest";
import { exchange, exchangeForm, userWithKey } from "./api-keys-setup";
import {
  adminToken,
  awayFromStepEdge,
  call,
  codeAt,
  decodeJwtPart,
  PASSWORD,
  randomIp,
  registerUser,
  d1Usage as tripsOf,
  uniqueName,
  userWithPasskey,
  userWithTotp,
} from "./helpers";
import { approvedCode, codeForm, createTestClient } from "./oauth";
import { createOrg } from "./orgs";

/**
 * D1 round trips per endpoint: at the edge each one goes to the database's primary, maybe on another
 * continent, so they are the latency a user feels. A batch is one round trip. These pin today's
 * counts, so none can change unnoticed.
 */

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

describe("D1 round trips of second factors", () => {
  it("POST /login with TOTP on: two (the account with its check, then the challenge with its audit row)", async () => {
    const u = await userWithTotp();
    const { res, n } = await tripsOf("POST", "/login", { body: { username: u.input.username, password: PASSWORD } });
    expect(res.body.mfa_required, res.text).toBe(true);
    expect(n).toBe(2);
  });

  it("POST /login/mfa: two (the check with the challenge's account, one batch for the session), with a code or a recovery code", async () => {
    const u = await userWithTotp();
    const { body } = await call("POST", "/login", { body: { username: u.input.username, password: PASSWORD } });
    await awayFromStepEdge();
    const { res, n } = await tripsOf("POST", "/login/mfa", { body: { challenge: body.challenge, code: await codeAt(u.secret) } });
    expect(res.status, res.text).toBe(200);
    expect(n).toBe(2);
    const again = await call("POST", "/login", { body: { username: u.input.username, password: PASSWORD } });
    const recovered = await tripsOf("POST", "/login/mfa", { body: { challenge: again.body.challenge, recovery_code: u.recoveryCodes[0] } });
    expect(recovered.res.status, recovered.res.text).toBe(200);
    expect(recovered.n).toBe(2);
  });

  it("passkey sign-in: one for the options, two for the verify (the challenge with the passkey, then the session)", async () => {
    const u = await userWithPasskey();
    const options = await tripsOf("POST", "/passkeys/login/options");
    expect(options.n).toBe(1);
    const { res, n } = await tripsOf("POST", "/passkeys/login/verify", { body: { response: await u.authenticator.assert(options.res.body.options) } });
    expect(res.status, res.text).toBe(200);
    expect(n).toBe(2);
  });

  it("GET /me: one (the user and a count of passkeys in a batch)", async () => {
    const reg = await registerUser();
    const { res, n } = await tripsOf("GET", "/me", { token: reg.access_token });
    expect(res.status).toBe(200);
    expect(n).toBe(1);
  });
});

describe("D1 round trips of step-ups and the ways-in view", () => {
  it("GET /me/security: one (the user and their passkeys in a batch)", async () => {
    const reg = await registerUser();
    const { res, n } = await tripsOf("GET", "/me/security", { token: reg.access_token });
    expect(res.status, res.text).toBe(200);
    expect(n).toBe(1);
  });

  it("POST /password: five, as before the step-up table (its start with the user, its pass, the change with the revocations, the epoch read back after the KV write, the audit row); with a code the same", async () => {
    const reg = await registerUser();
    const plain = await tripsOf("POST", "/password", { token: reg.access_token, body: { current_password: PASSWORD, new_password: "battery staple 43" } });
    expect(plain.res.status, plain.res.text).toBe(200);
    expect(plain.n).toBe(5);
    const u = await userWithTotp();
    const coded = await tripsOf("POST", "/password", {
      token: u.access_token,
      body: { current_password: PASSWORD, new_password: "battery staple 43", recovery_code: u.recoveryCodes[0] },
    });
    expect(coded.res.status, coded.res.text).toBe(200);
    expect(coded.n).toBe(5);
  });
});

describe("reads that may come from a read replica", () => {
  // Lists a person looks at may lag the primary by a moment; each is one statement through a D1
  // session that may start on a replica.
  it("GET /sessions, GET /passkeys, GET /admin/users and GET /admin/audit: one round trip, through a first-unconstrained session", async () => {
    const reg = await registerUser();
    const admin = await adminToken();
    for (const [path, token] of [
      ["/sessions", reg.access_token],
      ["/passkeys", reg.access_token],
      ["/admin/users", admin],
      ["/admin/audit", admin],
    ] as const) {
      const { res, n, replica, sessions } = await tripsOf("GET", path, { token });
      expect(res.status, res.text).toBe(200);
      expect({ path, n, replica, sessions }).toEqual({ path, n: 1, replica: 1, sessions: ["first-unconstrained"] });
    }
  });

  it("everything that writes, or reads what it just wrote, stays on the primary", async () => {
    const reg = await registerUser();
    const admin = await adminToken();
    const calls = [
      await tripsOf("POST", "/login", { body: { username: reg.input.username, password: PASSWORD } }),
      await tripsOf("POST", "/refresh", { body: { refresh_token: reg.refresh_token }, headers: { "cf-connecting-ip": randomIp() } }),
      await tripsOf("GET", "/me", { token: reg.access_token }),
      await tripsOf("GET", `/admin/users/${reg.user.id}`, { token: admin }),
      await tripsOf("POST", "/register", { body: { username: uniqueName(), password: PASSWORD } }),
      await tripsOf("DELETE", "/me", { token: (await registerUser()).access_token, body: { current_password: PASSWORD } }),
    ];
    for (const { res, n, sessions } of calls) {
      expect(res.status, res.text).toBeLessThan(300);
      expect(n).toBeGreaterThan(0);
      expect(sessions).toEqual([]);
    }
  });
});

describe("D1 statements per endpoint (docs/performance.md's capacity model)", () => {
  // D1 runs one statement at a time per database, so statements, and writes among them, are what a
  // database's throughput is spent on. Pinned so docs/performance.md's numbers stay true.
  it("counts statements and writes on the success path of each endpoint", async () => {
    const reg = await registerUser();
    const other = await registerUser();
    const counted = async (p: ReturnType<typeof tripsOf>) => {
      const { res, statements, writes } = await p;
      expect(res.status, res.text).toBeLessThan(300);
      return [statements, writes];
    };
    expect({
      register: await counted(tripsOf("POST", "/register", { body: { username: uniqueName(), password: PASSWORD } })),
      login: await counted(tripsOf("POST", "/login", { body: { username: reg.input.username, password: PASSWORD } })),
      refresh: await counted(tripsOf("POST", "/refresh", { body: { refresh_token: reg.refresh_token }, headers: { "cf-connecting-ip": randomIp() } })),
      protected: await counted(tripsOf("GET", "/protected", { token: reg.access_token })),
      sessions: await counted(tripsOf("GET", "/sessions", { token: reg.access_token })),
      logout: await counted(tripsOf("POST", "/logout", { token: other.access_token })),
    }).toEqual({ register: [4, 3], login: [5, 4], refresh: [3, 2], protected: [0, 0], sessions: [1, 0], logout: [2, 2] });
  });

  it("counts statements and writes of the second factors' sign-ins", async () => {
    const u = await userWithTotp();
    const pk = await userWithPasskey();
    const counted = async (p: ReturnType<typeof tripsOf>) => {
      const { res, statements, writes } = await p;
      expect(res.status, res.text).toBe(200);
      return [statements, writes];
    };
    const challenge = (await call("POST", "/login", { body: { username: u.input.username, password: PASSWORD } })).body.challenge;
    const another = (await call("POST", "/login", { body: { username: u.input.username, password: PASSWORD } })).body.challenge;
    await awayFromStepEdge();
    const options = (await call("POST", "/passkeys/login/options")).body.options;
    expect({
      loginTotpOn: await counted(tripsOf("POST", "/login", { body: { username: u.input.username, password: PASSWORD } })),
      loginMfa: await counted(tripsOf("POST", "/login/mfa", { body: { challenge, code: await codeAt(u.secret) } })),
      loginMfaRecovery: await counted(tripsOf("POST", "/login/mfa", { body: { challenge: another, recovery_code: u.recoveryCodes[0] } })),
      passkeyOptions: await counted(tripsOf("POST", "/passkeys/login/options")),
      passkeyVerify: await counted(tripsOf("POST", "/passkeys/login/verify", { body: { response: await pk.authenticator.assert(options) } })),
    }).toEqual({ loginTotpOn: [5, 4], loginMfa: [7, 6], loginMfaRecovery: [7, 6], passkeyOptions: [1, 1], passkeyVerify: [5, 4] });
  });

  it("a wrong password costs as many statements for a known account as for an unknown one", async () => {
    const reg = await registerUser();
    const wrong = { password: "wrong password 9" };
    const known = await tripsOf("POST", "/login", { body: { username: reg.input.username, ...wrong } });
    const unknown = await tripsOf("POST", "/login", { body: { username: uniqueName(), ...wrong } });
    expect([known.res.status, unknown.res.status]).toEqual([401, 401]);
    expect([known.n, known.statements, known.writes]).toEqual([2, 5, 4]);
    expect([unknown.n, unknown.statements, unknown.writes]).toEqual([2, 5, 4]);
  });

  it("a login after a failure costs one statement more: the lock's reset, left out when the account's first read shows nothing to reset", async () => {
    const reg = await registerUser();
    await call("POST", "/login", { body: { username: reg.input.username, password: "wrong password 9" } });
    const after = await tripsOf("POST", "/login", { body: { username: reg.input.username, password: PASSWORD } });
    expect(after.res.status, after.res.text).toBe(200);
    expect([after.n, after.statements, after.writes]).toEqual([2, 6, 5]);
    const clean = await tripsOf("POST", "/login", { body: { username: reg.input.username, password: PASSWORD } });
    expect([clean.n, clean.statements, clean.writes]).toEqual([2, 5, 4]);
  });
});

describe("D1 round trips of organizations", () => {
  it("a refresh with an active organization costs what one without does (the organization is joined into the rotation's own read); the switch is one batch", async () => {
    const reg = await registerUser();
    const orgId = await createOrg(reg.access_token);
    const plain = await registerUser();
    const without = await tripsOf("POST", "/refresh", { body: { refresh_token: plain.refresh_token }, headers: { "cf-connecting-ip": randomIp() } });
    const switched = await tripsOf("POST", "/orgs/switch", { token: reg.access_token, body: { org_id: orgId } });
    expect(switched.res.status, switched.res.text).toBe(200);
    expect([switched.n, switched.statements, switched.writes]).toEqual([1, 4, 1]); // the session's update, whether this token switched already, the claims, the organization's name
    const withOrg = await tripsOf("POST", "/refresh", { body: { refresh_token: reg.refresh_token }, headers: { "cf-connecting-ip": randomIp() } });
    expect(withOrg.res.status, withOrg.res.text).toBe(200);
    expect(decodeJwtPart(withOrg.res.body.access_token, 1).org_id).toBe(orgId);
    expect([withOrg.n, withOrg.statements, withOrg.writes]).toEqual([without.n, without.statements, without.writes]);
    expect([withOrg.n, withOrg.statements, withOrg.writes]).toEqual([1, 3, 2]);
  });
});

describe("D1 round trips of the authorization server", () => {
  const form = (fields: Record<string, string>) => ({
    body: new URLSearchParams(fields).toString(),
    headers: { "content-type": "application/x-www-form-urlencoded", "cf-connecting-ip": "10.91.0.1", "user-agent": "TestApp/1.0" },
  });

  it("a code's exchange: two (the client, then one batch: the code, the grant, its owner, the client's first use, the audit row); a refresh: two; userinfo: one", async () => {
    const client = await createTestClient();
    const code = await approvedCode(client, await registerUser(), { scope: "openid offline_access" });
    const exchange = await tripsOf("POST", "/oauth2/token", form(codeForm(client, code)));
    expect(exchange.res.status, exchange.res.text).toBe(200);
    expect([exchange.n, exchange.statements, exchange.writes]).toEqual([2, 6, 4]);
    const refresh = await tripsOf(
      "POST",
      "/oauth2/token",
      form({ grant_type: "refresh_token", refresh_token: exchange.res.body.refresh_token, client_id: client.id }),
    );
    expect(refresh.res.status, refresh.res.text).toBe(200);
    expect([refresh.n, refresh.statements, refresh.writes]).toEqual([2, 4, 2]);
    const info = await tripsOf("GET", "/oauth2/userinfo", { token: refresh.res.body.access_token });
    expect(info.res.status, info.res.text).toBe(200);
    expect(info.n).toBe(1);
  });
});

describe("D1 round trips of an API key's exchange (docs/api-keys.md)", () => {
  it("one: the key with its owner's standing, one statement, no write (the last use, once a minute, is written after the answer)", async () => {
    const { secret } = await userWithKey();
    const form = { body: new URLSearchParams(exchangeForm(secret)).toString(), headers: { "content-type": "application/x-www-form-urlencoded" } };
    // The first use records itself after the answer; within the minute nothing more is written.
    expect((await exchange(secret)).status).toBe(200);
    const { res, n, statements, writes } = await tripsOf("POST", "/oauth2/token", form);
    expect(res.status, res.text).toBe(200);
    expect([n, statements, writes]).toEqual([1, 1, 0]);
  });
});
