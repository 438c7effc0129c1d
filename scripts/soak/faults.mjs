// The soak's faults, injected one after another while the flows run: a forced signing-key rotation,
// D1 answering "overloaded" for a few seconds, a KV write failing once, an emergency retirement of
// the key the rotation stopped signing with, and the identity provider going down and coming back.
// D1 and KV go through the API's own DEV_FAULTS switch (POST /dev/faults, local dev only). Checks:
// the retired key's tokens are refused once the documented bound (KEY_PROPAGATION) has passed, and
// their sessions still refresh, to a token of another key. The clients (soak/client.mjs) check the
// rest: every 503 came with Retry-After and a retry completed it.
import { call, claims, expect, fail, header, newClient, retiredKids, runId, sleep } from "./client.mjs";
import { callbackWhileDown } from "./flows/social.mjs";
import { d1, idpDown, idpUp } from "./server.mjs";
import { last, liveSessions, refresh, session } from "./sessions.mjs";

/** The server's vars for this schedule: a ring that may turn within seconds, and DEV_FAULTS. */
export const KEY_PROPAGATION = 4;
export const VARS = { SIGNING_KEYS: "rotating", JWKS_MAX_AGE: "2", KEY_PROPAGATION: String(KEY_PROPAGATION), DEV_FAULTS: "on" };
const D1_WINDOW_MS = 3000;
const IDP_DOWN_MS = 4000;
const GAP_MS = 2000;

export const injected = []; // { what, at_s, for_s, detail }
export const tally = { retired_tokens: 0, refused_after_bound: 0, sessions_refreshed_to_new_key: 0, kv_write_failed: false };
let done = false;
export const faultsDone = () => done;

const c = newClient("faults", "operator");
const password = "Operator key 7 turning";
const at = (t0) => +((performance.now() - t0) / 1000).toFixed(1);

async function record(t0, what, detail, fn) {
  const start = performance.now();
  const out = await fn();
  injected.push({ what, at_s: at(t0), for_s: +((performance.now() - start) / 1000).toFixed(1), detail: typeof detail === "function" ? detail(out) : detail });
  return out;
}
const devFaults = (body) => call(c, "POST", "/dev/faults", { body, retries: 0 }).then((r) => expect(r, 200, "POST /dev/faults"));

/** An admin (the role granted in D1, as scripts/admin-grant.mjs does) and a few sessions of its own held for the key checks. */
async function setUp() {
  const admin = { username: `soakadm_${runId}`, password };
  expect(await call(c, "POST", "/register", { body: admin }), 201, "faults: register the admin");
  d1(`UPDATE users SET roles = json_insert(roles, '$[#]', 'admin') WHERE username = '${admin.username}'`);
  const token = expect(await call(c, "POST", "/login", { body: admin }), 200, "faults: admin login").access_token;
  const held = [];
  for (let k = 0; k < 3; k++) {
    const holder = newClient("faults", `holder${k}`);
    const body = { username: `soakkey_${runId}_${k}`, password };
    held.push(session(holder, expect(await call(holder, "POST", "/register", { body }), 201, "faults: register a key holder")));
  }
  return { token, held };
}

/** Forced rotation: refused (409 key_not_ready) until the next key has been published JWKS_MAX_AGE + KEY_PROPAGATION. */
async function rotate(token) {
  for (let i = 0; ; i++) {
    const r = await call(c, "POST", "/admin/keys/rotate", { token, body: { current_password: password } });
    if (r.status === 200) return r.json.rotated;
    if (r.status !== 409 || r.json?.error !== "key_not_ready" || i === 30) throw new Error(`forced rotation: ${r.status} ${r.json?.error ?? ""}`);
    await sleep(1000);
  }
}

/** The whole schedule, once; `t0` is the run's start (times in the report count from it). */
export async function runFaults(t0) {
  try {
    await sleep(3000); // the flows are under way
    const { token, held } = await setUp();
    const rotated = await record(
      t0,
      "signing key: forced rotation",
      (r) => `${r.from} -> ${r.to}`,
      () => rotate(token),
    );
    await sleep(GAP_MS);
    await record(t0, "D1 overloaded", `every query and batch for ${D1_WINDOW_MS} ms`, async () => {
      await devFaults({ d1_overloaded_ms: D1_WINDOW_MS });
      await sleep(D1_WINDOW_MS);
    });
    await sleep(GAP_MS);
    await record(
      t0,
      "KV write fails once",
      (who) => `the next put or delete: ${who}`,
      async () => {
        await devFaults({ kv_write_failures: 1 });
        for (let i = 0; i < 40; i++) {
          if ((await devFaults({})).kv_write_failures === 0) return `a flow's, within ${i / 4} s`;
          await sleep(250);
        }
        // No flow wrote KV meanwhile: a logout of the soak's own does (503, then 200 on the retry).
        const own = newClient("faults", "kv");
        const s = expect(await call(own, "POST", "/register", { body: { username: `soakkv_${runId}`, password } }), 201, "faults: register");
        const out = await call(own, "POST", "/logout", { token: s.access_token });
        expect(out, 200, "faults: logout through a failed KV write");
        if (out.attempts !== 2 && (await devFaults({})).kv_write_failures !== 0)
          fail(`faults: the logout through a failed KV write took ${out.attempts} attempts (expected a 503, then 200)`, "faults");
        return `none within 10 s; the soak's own logout: 503 with Retry-After, then 200`;
      },
    );
    tally.kv_write_failed = true;
    await sleep(GAP_MS);
    // The emergency: the key the rotation stopped signing with. Its tokens, collected first.
    const kid = rotated.from;
    const signed = [...new Set([...held, ...liveSessions()].flatMap((s) => s.access.filter((t) => header(t).kid === kid)))];
    await record(t0, "signing key: emergency retirement", `${kid} (${signed.length} access tokens signed by it held)`, async () => {
      expect(await call(c, "POST", `/admin/keys/${kid}/retire`, { token, body: { current_password: password } }), 200, "faults: retire");
      retiredKids.add(kid);
    });
    await checkRetired(kid, signed, held);
    await sleep(GAP_MS);
    await record(
      t0,
      "identity provider down",
      (landed) => `${IDP_DOWN_MS} ms, then back; a callback meanwhile landed with ${landed}`,
      async () => {
        const landed = await callbackWhileDown(idpDown);
        tally.idp_down_callback = landed;
        if (landed !== "provider_unreachable")
          fail(`faults: a callback while the provider was down answered ${landed} (expected #oauth_error=provider_unreachable)`, "faults");
        await sleep(IDP_DOWN_MS);
        await idpUp();
        return landed;
      },
    );
  } catch (e) {
    fail(`faults: ${e.message}`, "faults");
  } finally {
    done = true;
  }
}

/** After KEY_PROPAGATION: every token the key signed is refused; the held sessions refresh to a token of another key, which works. */
async function checkRetired(kid, signed, held) {
  await sleep(KEY_PROPAGATION * 1000 + 500);
  tally.retired_tokens = signed.length;
  const checker = newClient("faults", "checker");
  const queue = [...signed];
  const worker = async () => {
    for (let t; (t = queue.pop()); ) {
      const r = await call(checker, "GET", "/protected", { route: "GET /protected (retired key)", token: t, retries: 0, renewing: false });
      if (r.status === 401) tally.refused_after_bound++;
      else fail(`a token of the retired key ${kid} answered ${r.status} after KEY_PROPAGATION (expected 401)`, `sid ${claims(t).sid}`);
    }
  };
  await Promise.all(Array.from({ length: 10 }, worker)); // ten at a time: the check, not the load, is the point
  for (const s of held) {
    const r = expect(await refresh(s.client, last(s.refresh)), 200, "a session whose token the retired key signed refreshes");
    s.access.push(r.access_token);
    s.refresh.push(r.refresh_token);
    if (header(r.access_token).kid === kid) fail(`a refresh after the retirement was signed by the retired key ${kid}`, s.client.where);
    expect(await call(s.client, "GET", "/protected", { token: r.access_token }), 200, "GET /protected with the new key's token");
    tally.sessions_refreshed_to_new_key++;
  }
}
