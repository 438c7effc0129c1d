// The API key exchange's row of `npm run bench` (scripts/bench.mjs calls keyRows): POST /oauth2/token
// with grant_type token-exchange (docs/api-keys.md). A key may be exchanged 60 times a minute
// (API_KEY_LIMITER), so each round prepares COUNT + CONCURRENCY keys, none of it measured: fresh users,
// each creating up to KEYS_PER_USER keys (a step-up each: a password hash), and a first exchange of
// every key, which records its last use; the measured exchange of each key then comes within the
// minute, as a service's steady use does: one D1 read, a SHA-256 and an ES256 signature, no write.

// [row, its floor, label, floor label], as SECOND in bench.mjs.
export const KEYS = [["key-exchange", "sign", "POST /oauth2/token (API key exchange)", "ES256 sign + 1 D1 write"]];

const KEYS_PER_USER = 20;
const exchangeForm = (key) => ({
  grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
  subject_token: key,
  subject_token_type: "urn:edge-auth:params:oauth:token-type:api-key",
});

/** The rows of KEYS that were asked for. `b` is bench.mjs's kit, as for scripts/bench-oauth.mjs's oauthRows. */
export async function keyRows(b) {
  const asked = KEYS.map(([key]) => key).filter(b.selected);
  if (!asked.length) return {};
  const runs = { api: [], floor: [], same: [] };
  let made = 0;
  for (let round = 0; round < b.ROUNDS; round++) {
    const count = b.COUNT + b.CONCURRENCY;
    const users = await b.inParallel(
      Array.from({ length: Math.ceil(count / KEYS_PER_USER) }, () => ({})),
      async (u) => {
        const username = `bench_key_${made++}_${Math.random().toString(36).slice(2, 8)}`;
        u.token = (await b.send(b.port, "POST", "/register", { body: { username, password: b.PASSWORD } })).access_token;
        b.renew(u.token);
      },
    );
    const keys = Array.from({ length: count }, (_, i) => ({ user: users[Math.floor(i / KEYS_PER_USER)] }));
    // One user's keys one after another: a session's step-ups in flight at once are refused (429).
    await b.inParallel(users, async (u) => {
      for (const k of keys.filter((k) => k.user === u)) {
        const body = { name: "bench", scopes: ["user"], current_password: b.PASSWORD };
        k.secret = (await b.send(b.port, "POST", "/keys", { token: u.token, body })).secret;
        await b.send(b.port, "POST", "/oauth2/token", { form: exchangeForm(k.secret) }); // records the last use
      }
    });
    runs.api.push(
      await b.measureEach(b.apiPid, keys, async (k) => {
        const answer = await b.send(b.port, "POST", "/oauth2/token", { form: exchangeForm(k.secret) });
        if (!answer?.access_token) throw new Error(`the key's exchange answered no token: ${JSON.stringify(answer).slice(0, 200)}`);
      }),
    );
    runs.floor.push(await b.measure(b.floorPid, b.floor.sign));
  }
  return { "key-exchange": b.summarize(runs) };
}
