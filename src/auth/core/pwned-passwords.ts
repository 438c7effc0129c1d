import type { Config } from "../../config";
import { log } from "../../log";

/**
 * Pwned Passwords by k-anonymity (ASVS 6.2.12): only the first five hex characters of the
 * password's SHA-1 leave the worker, with `Add-Padding: true` so the answer's size does not tell
 * which prefix was asked either; the suffixes come back, and the match is found here. Padding lines
 * carry a count of 0 and are ignored. Any failure (an error status, the network, a timeout of
 * PWNED_PASSWORDS_TIMEOUT_MS, an unreadable answer) fails open: null, and one log line
 * `pwned_check_failed` with the reason, never the password or any of its hash. docs/passwords.md.
 */

const RANGE_LINE = /^([0-9A-F]{35}):(\d+)$/;

/** A failure this module names itself; any other is logged by its name alone (its message may hold the URL). */
class RangeFailure extends Error {}

async function sha1Hex(password: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(password.normalize("NFC")));
  return [...new Uint8Array(digest)]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("")
    .toUpperCase();
}

/** How often the password appears in the breach corpus (0: never), or null when the range API could not say. */
export async function breachCount(
  config: Pick<Config, "PWNED_PASSWORDS_URL" | "PWNED_PASSWORDS_TIMEOUT_MS">,
  password: string,
  requestId?: string,
): Promise<number | null> {
  const hash = await sha1Hex(password);
  const prefix = hash.slice(0, 5);
  const suffix = hash.slice(5);
  const started = Date.now();
  try {
    const res = await fetch(`${config.PWNED_PASSWORDS_URL}${prefix}`, {
      headers: { "Add-Padding": "true" },
      signal: AbortSignal.timeout(config.PWNED_PASSWORDS_TIMEOUT_MS),
    });
    if (!res.ok) {
      await res.body?.cancel();
      throw new RangeFailure(`status ${res.status}`);
    }
    let count = 0;
    let lines = 0;
    for (const line of (await res.text()).split("\n")) {
      const m = RANGE_LINE.exec(line.trim().toUpperCase());
      if (!m) continue;
      lines++;
      if (m[1] === suffix) count = Number(m[2]);
    }
    // A range always lists hundreds of suffixes: an answer with none is no range (a captive portal, a wrong URL).
    if (lines === 0) throw new RangeFailure("no range in the answer");
    return count;
  } catch (err) {
    const reason = err instanceof RangeFailure ? err.message : err instanceof Error ? err.name : "unknown";
    log("pwned_check_failed", { request_id: requestId, reason, ms: Date.now() - started }, "warn");
    return null;
  }
}
