// The mail the API would have sent: wrangler dev prints each message (From, To, Subject, and the path
// of its text body) to its log, which the soak's server keeps.
import { readFileSync } from "node:fs";
import { sleep } from "./client.mjs";

let log;
export const setLog = (path) => (log = path);

/** Every message so far, oldest first: { to, subject, text }. */
export function mails() {
  const all = readFileSync(log, "utf8");
  return [...all.matchAll(/^To: (.+)\nSubject: (.+)\n\nText: (.+)$/gm)].map((m) => ({ to: m[1].trim(), subject: m[2].trim(), path: m[3].trim() }));
}

/**
 * Waits (up to 30 s) for a message to `to` whose subject matches `subject` beyond the first `after`
 * such messages; answers its text. Queued mail (reset, mail sign-in) arrives through the local queue.
 */
export async function mailTo(to, subject, after = 0) {
  for (const end = Date.now() + 30_000; Date.now() < end; await sleep(250)) {
    const found = mails().filter((m) => m.to === to && subject.test(m.subject));
    if (found.length > after) return readFileSync(found[after].path, "utf8");
  }
  throw new Error(`no mail "${subject.source}" to ${to} within 30 s`);
}
/** How many messages to `to` match `subject` so far (to wait for the next one). */
export const mailCount = (to, subject) => mails().filter((m) => m.to === to && subject.test(m.subject)).length;
