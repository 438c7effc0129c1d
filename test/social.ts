import { env } from "cloudflare:workers";
import { expect } from "vitest";
// @ts-expect-error: a plain ES module shared with `npm run docs:check`
import { signInAtLocalIdp } from "../scripts/idp-login.mjs";
import { type ApiResponse, call } from "./helpers";

/**
 * Social sign-in from a test's side: the browser's part (the flow cookie, the provider's pages, the
 * way back) done over plain HTTP. The providers are real servers on loopback, started by
 * test/vitest.config.ts from scripts/identity-providers.mjs: oidc-provider ("local"), a crafted OpenID issuer
 * ("crafted") and a GitHub stand-in ("github").
 */

interface ProviderEntry {
  id: string;
  issuer?: string;
  server?: string;
}
export const providers = () => JSON.parse(env.OAUTH_PROVIDERS) as ProviderEntry[];
export const issuerOf = (id: string) => providers().find((p) => p.id === id)?.issuer ?? "";

/** A browser's start: the provider's URL (with its state and nonce) and the flow cookie it was given. */
export interface Trip {
  res: ApiResponse;
  to: URL;
  state: string;
  nonce: string | null;
  cookie: string;
}

export async function start(provider: string, query: Record<string, string> = {}, ip?: string): Promise<Trip> {
  const res = await call("GET", `/oauth/${provider}/start?${new URLSearchParams(query)}`, ip ? { headers: { "cf-connecting-ip": ip } } : {});
  expect(res.status, res.text).toBe(302);
  const to = new URL(res.headers.get("location") ?? "");
  const cookie = /oauth_flow=([^;]+)/.exec(res.headers.get("set-cookie") ?? "")?.[1];
  expect(cookie).toBeTruthy();
  return { res, to, state: to.searchParams.get("state") ?? "", nonce: to.searchParams.get("nonce"), cookie: cookie! };
}

/** The cookie a callback left for the exchange of each sign-in code (oauth_grant): what that browser will send. */
const grants = new Map<string, string>();
export const grantCookieOf = (res: { headers: Headers }) => /oauth_grant=([^;]+)/.exec(res.headers.get("set-cookie") ?? "")?.[1];

/** Where a callback answer sends the browser; the exchange cookie it set is kept for exchange(). */
export function landingOf(res: ApiResponse) {
  expect(res.status, res.text).toBe(303);
  const to = new URL(res.headers.get("location") ?? "");
  const fragment = new URLSearchParams(to.hash.slice(1));
  const code = fragment.get("oauth_code");
  const grant = grantCookieOf(res);
  if (code && grant) grants.set(code, grant);
  return { res, to, fragment, grant };
}

/** The provider's redirect back to the API, as the browser sends it (with the flow cookie, unless another browser). */
export async function callback(provider: string, params: Record<string, string> | URLSearchParams, cookie?: string, bindings?: Partial<Env>) {
  const query = new URLSearchParams(params);
  const res = await call("GET", `/oauth/${provider}/callback?${query}`, { ...(cookie ? { headers: { cookie: `oauth_flow=${cookie}` } } : {}), bindings });
  return landingOf(res);
}

/**
 * Signs in at the local oidc-provider as `login` (any name: the dev login page takes it as the
 * account; names starting with "unverified" have an unproved address), submitting its login and
 * consent forms with a cookie jar, and returns the redirect to our callback.
 */
export const atLocalIdp = (authorizeUrl: URL, login: string): Promise<URLSearchParams> => signInAtLocalIdp(authorizeUrl, login);

/** The whole trip through the local IdP: start, sign in there, come back. */
export async function signInLocally(login: string, query: Record<string, string> = {}) {
  const trip = await start("local", query);
  const back = await atLocalIdp(trip.to, login);
  return { trip, ...(await callback("local", back, trip.cookie)) };
}

/**
 * POST /oauth/exchange with the code the landing carried, from the browser that started the flow:
 * with the oauth_grant cookie its callback set, unless `browser` names another cookie (null: none).
 */
export const exchange = (code: string, opts: { token?: string; use_cookie?: boolean; browser?: string | null; code_verifier?: string } = {}) => {
  const browser = opts.browser === undefined ? grants.get(code) : opts.browser;
  const headers: Record<string, string> = opts.use_cookie ? { origin: "http://localhost:5173" } : {};
  if (browser) headers.cookie = `oauth_grant=${browser}`;
  return call("POST", "/oauth/exchange", {
    body: { code, ...(opts.code_verifier ? { code_verifier: opts.code_verifier } : {}), ...(opts.use_cookie ? { use_cookie: true } : {}) },
    token: opts.token,
    headers,
  });
};

/** A social sign-in in bearer mode, finished: the exchange's answer. */
export async function socialSignIn(login: string) {
  const landing = await signInLocally(login);
  const code = landing.fragment.get("oauth_code");
  expect(code, landing.to.hash).toBeTruthy();
  const res = await exchange(code!);
  expect(res.status, res.text).toBe(200);
  return res.body as { user: { id: string; username: string; email: string | null }; access_token: string; refresh_token: string };
}

/**
 * A crafted issuer's answer for `scenario` (scripts/identity-providers.mjs), sent to our callback
 * with the trip's state; `provider`: "crafted" or its twin "lax"; `extra`: more of the answer (`iss`).
 */
export async function craftedCallback(scenario: string, provider = "crafted", extra: Record<string, string> = {}, bindings?: Partial<Env>) {
  const trip = await start(provider);
  return callback(provider, { code: `${scenario}.${trip.nonce}`, state: trip.state, ...extra }, trip.cookie, bindings);
}
