/**
 * client.fetch(): the app's calls to its own backends, with the access token as a Bearer. The token
 * goes only to the origins the app names (`backends`, plus the API's own): a typo'd or injected URL
 * gets an error, never the token. A 401 whose WWW-Authenticate says `error="invalid_token"` (RFC 6750:
 * expired, revoked, or signed by a key the backend has not fetched yet) costs one refresh, shared by
 * every call that met it, and one retry; any other answer is the caller's, as fetch returns it. A
 * redirect to another origin drops the header in browsers and Node (the Fetch standard); a backend
 * that redirects elsewhere should not be listed.
 */
type Global = typeof globalThis;
type PlatformFetch = Global extends {
    fetch: infer F extends (...args: never[]) => unknown;
} ? F : MinimalFetch;
/** Without a platform's types (lib es2022 alone): the little of fetch this module uses. */
type MinimalFetch = (input: string | {
    href: string;
} | {
    url: string;
}, init?: {
    headers?: unknown;
    [key: string]: unknown;
}) => Promise<{
    ok: boolean;
    status: number;
    headers: {
        get(name: string): string | null;
    };
    json(): Promise<unknown>;
    text(): Promise<string>;
}>;
export type FetchInput = Parameters<PlatformFetch>[0];
export type FetchInit = Parameters<PlatformFetch>[1];
export type FetchResponse = Awaited<ReturnType<PlatformFetch>>;
/** Each allowed origin, normalised (https://Team.example.com:443/x -> https://team.example.com). */
export declare function originsOf(urls: readonly string[]): Set<string>;
/** RFC 6750: the token itself is what the resource server refused. */
export declare const refusedToken: (status: number, challenge: string | null) => boolean;
export interface TokenSource {
    /** The current token, refreshed first when missing or about to expire; throws when signed out. */
    fresh(): Promise<string>;
    /** One refresh for every call that met `stale` refused (single flight); then the new token. */
    renew(stale: string): Promise<string>;
}
type AnyFetch = (input: unknown, init?: unknown) => Promise<{
    status: number;
    headers: {
        get(name: string): string | null;
    };
}>;
export declare function backendFetch(allowed: Set<string>, tokens: TokenSource, doFetch: AnyFetch, originError: (origin: string) => Error): (input: FetchInput, init?: FetchInit) => Promise<FetchResponse>;
export {};
