// Clients stay inside the API's rate limits (wrangler.toml), so a limit never answers instead of the
// behaviour under test: a client waits before its next request of a kind while it has spent its
// budget for the last minute. Budgets are one under each limit, and pace() keeps a reserve of each (up
// to 3) for the retries of 503s, sent again unpaced (D1's overload window makes up to 3 a request).
import { sleep } from "./client.mjs";

const reserve = (perMinute) => Math.min(3, Math.floor(perMinute / 3));

/** Waits until `holder` (a client or an account) has made fewer than `perMinute` `kind` requests in the last 60 s. */
export async function pace(holder, kind, perMinute) {
  holder.paced ??= {};
  const times = (holder.paced[kind] ??= []);
  for (;;) {
    const now = Date.now();
    while (times.length && times[0] <= now - 61_000) times.shift();
    if (times.length < perMinute - reserve(perMinute)) break;
    await sleep(times[0] + 61_000 - now);
  }
  times.push(Date.now());
}

/** A request the client sent again (a 503 with Retry-After) spent the limit once per attempt: counted. */
export function charge(holder, kind, answer) {
  const times = (holder.paced ??= {})[kind] ?? (holder.paced[kind] = []);
  for (let k = 1; k < (answer.attempts ?? 1); k++) times.push(Date.now());
  return answer;
}
