import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { type ApiResponse, call } from "./helpers";

/**
 * Social sign-in from a test's side: the browser's part (the flow cookie, the provider's pages, the
 * way back) done over plain HTTP. The providers are real servers on loopback, started by
 * test/vitest.config.ts from scripts/local-idp.mjs: oidc-provider ("local"), a crafted OpenID issuer
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
export async function atLocalIdp(authorizeUrl: URL, login: string): Promise<URLSearchParams> {
  const jar = new Map<string, string>();
  let url = authorizeUrl.href;
  let init: RequestInit = {};
  for (let hop = 0; hop < 20; hop++) {
    const headers = new Headers(init.headers);
    headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
    const res = await fetch(url, { ...init, headers, redirect: "manual" });
    for (const c of res.headers.getSetCookie()) {
      const [pair = ""] = c.split(";");
      const at = pair.indexOf("=");
      jar.set(pair.slice(0, at).trim(), pair.slice(at + 1));
    }
    const location = res.headers.get("location");
    if (location) {
      const next = new URL(location, url);
      if (next.pathname.endsWith("/callback")) return next.searchParams;
      url = next.href;
      init = {};
      continue;
    }
    const html = await res.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    if (!action) throw new Error(`the IdP answered ${res.status} without a form: ${html.slice(0, 300)}`);
    const form = new URLSearchParams();
    for (const m of html.matchAll(/<input[^>]*>/g)) {
      const name = /name="([^"]+)"/.exec(m[0])?.[1];
      const value = /value="([^"]*)"/.exec(m[0])?.[1];
      if (name && value !== undefined) form.set(name, value);
    }
    if (/name="login"/.test(html)) {
      form.set("login", login);
      form.set("password", "anything");
    }
    url = new URL(action.replace(/&amp;/g, "&"), url).href;
    init = { method: "POST", body: form.toString(), headers: { "content-type": "application/x-www-form-urlencoded" } };
  }
  throw new Error("the IdP never redirected back");
}

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

/** A crafted issuer's answer for `scenario` (scripts/local-idp.mjs), sent to our callback with the trip's state. */
export async function craftedCallback(scenario: string) {
  const trip = await start("crafted");
  return callback("crafted", { code: `${scenario}.${trip.nonce}`, state: trip.state }, trip.cookie);
}
