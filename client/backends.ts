/**
 * client.fetch(): the app's calls to its own backends, with the access token as a Bearer. The token
 * goes only to the origins the app names (`backends`, plus the API's own): a typo'd or injected URL
 * gets an error, never the token. A 401 whose WWW-Authenticate says `error="invalid_token"` (RFC 6750:
 * expired, revoked, or signed by a key the backend has not fetched yet) costs one refresh, shared by
 * every call that met it, and one retry; any other answer is the caller's, as fetch returns it. A
 * redirect to another origin drops the header in browsers and Node (the Fetch standard); a backend
 * that redirects elsewhere should not be listed.
 */

// The platform's own fetch types where the app has them (DOM, @cloudflare/workers-types, @types/node):
// evaluated in the app's program, so client.fetch() takes and returns exactly what fetch() does there.
type Global = typeof globalThis;
type PlatformFetch = Global extends { fetch: infer F extends (...args: never[]) => unknown } ? F : MinimalFetch;
/** Without a platform's types (lib es2022 alone): the little of fetch this module uses. */
type MinimalFetch = (
  input: string | { href: string } | { url: string },
  init?: { headers?: unknown; [key: string]: unknown },
) => Promise<{ ok: boolean; status: number; headers: { get(name: string): string | null }; json(): Promise<unknown>; text(): Promise<string> }>;
export type FetchInput = Parameters<PlatformFetch>[0];
export type FetchInit = Parameters<PlatformFetch>[1];
export type FetchResponse = Awaited<ReturnType<PlatformFetch>>;

interface HeadersLike {
  set(name: string, value: string): void;
}
interface RequestLike {
  url: string;
  headers: unknown;
  clone(): RequestLike;
}
interface Platform {
  Headers: new (init?: unknown) => HeadersLike;
  Request: new (input: RequestLike, init: object) => RequestLike;
  URL: new (url: string, base?: string) => { origin: string; href: string };
  location?: { href: string };
}

/** Each allowed origin, normalised (https://Team.example.com:443/x -> https://team.example.com). */
export function originsOf(urls: readonly string[]): Set<string> {
  const { URL } = globalThis as unknown as Platform;
  return new Set(urls.map((u) => new URL(u).origin));
}

/** RFC 6750: the token itself is what the resource server refused. */
export const refusedToken = (status: number, challenge: string | null) =>
  status === 401 && /^\s*Bearer\b/i.test(challenge ?? "") && /\berror\s*=\s*"?invalid_token"?/i.test(challenge ?? "");

export interface TokenSource {
  /** The current token, refreshed first when missing or about to expire; throws when signed out. */
  fresh(): Promise<string>;
  /** One refresh for every call that met `stale` refused (single flight); then the new token. */
  renew(stale: string): Promise<string>;
}

type AnyFetch = (input: unknown, init?: unknown) => Promise<{ status: number; headers: { get(name: string): string | null } }>;

export function backendFetch(allowed: Set<string>, tokens: TokenSource, doFetch: AnyFetch, originError: (origin: string) => Error) {
  const platform = globalThis as unknown as Platform;
  return async function authFetch(input: FetchInput, init?: FetchInit): Promise<FetchResponse> {
    const given = typeof input === "object" && input !== null && "clone" in input ? (input as unknown as RequestLike) : undefined;
    // fetch(request, init): init's method, body, headers and signal win over the request's, as in fetch itself.
    const request = given && init ? new platform.Request(given, init as object) : given;
    const href = request ? request.url : typeof input === "string" ? input : (input as { href: string }).href;
    // A relative URL is the page's own origin: allowed only if the app lists it.
    const origin = new platform.URL(href, platform.location?.href).origin;
    if (!allowed.has(origin)) throw originError(origin);
    const send = (token: string) => {
      if (request) {
        // Each try sends its own copy: a request body can be read once.
        const copy = request.clone();
        const headers = new platform.Headers(copy.headers);
        headers.set("authorization", `Bearer ${token}`);
        return doFetch(new platform.Request(copy, { headers }));
      }
      const headers = new platform.Headers((init as { headers?: unknown } | undefined)?.headers);
      headers.set("authorization", `Bearer ${token}`);
      return doFetch(input, { ...(init as object | undefined), headers });
    };
    const token = await tokens.fresh();
    const res = await send(token);
    if (!refusedToken(res.status, res.headers.get("www-authenticate"))) return res as FetchResponse;
    return (await send(await tokens.renew(token))) as FetchResponse;
  };
}
