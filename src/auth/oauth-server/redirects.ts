/**
 * Where a browser may be sent back: only to a redirect_uri registered for the client, compared as
 * exact strings (RFC 9700 2.1), except that a native app's loopback redirect may use any port
 * (RFC 8252 7.3): http://127.0.0.1 or http://[::1] (and, as many CLIs register it, http://localhost).
 */

export const LOOPBACK_HOSTS = new Set(["127.0.0.1", "[::1]", "localhost"]);

function loopback(uri: string): URL | null {
  if (!URL.canParse(uri)) return null;
  const url = new URL(uri);
  return url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname) ? url : null;
}

/** Whether `given` is one of the client's registered redirect URIs. */
export function redirectUriRegistered(registered: string[], given: string): boolean {
  if (registered.includes(given)) return true;
  const asked = loopback(given);
  if (!asked) return false;
  return registered.some((r) => {
    const reg = loopback(r);
    // Everything but the port must match, as written: host, path and query.
    return (
      reg !== null &&
      reg.hostname === asked.hostname &&
      reg.pathname === asked.pathname &&
      reg.search === asked.search &&
      !asked.hash &&
      !asked.username &&
      !asked.password
    );
  });
}

/** `base` with `params` added to its query (keeping any it has): the answer to a verified redirect_uri. */
export function withParams(base: string, params: Record<string, string | null | undefined>): string {
  const url = new URL(base);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) url.searchParams.set(k, v);
  return url.href;
}
