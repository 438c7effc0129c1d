import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from "@modelcontextprotocol/sdk/shared/auth.js";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API, APP, MCP_SCOPE, MCP_SCOPE_WORDS, MCP_URL } from "./global-setup";

/**
 * Other apps asking for a person's consent, in Chromium through the demo's consent page
 * (docs/oauth-server.md): an app with a loopback redirect_uri, and the MCP SDK's client that starts
 * from the example MCP server's URL alone. The person signs in on the demo and clicks Approve (or
 * Deny); the browser lands on the app's redirect_uri, a local HTTP server the test runs.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = "test/e2e/screenshots";
const PASSWORD = "correct horse 42";

let browser: Browser;
beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});
afterAll(() => browser?.close());

/** A loopback server standing in for an app's redirect_uri (RFC 8252): each hit's query, in order. */
async function loopback() {
  const hits: URLSearchParams[] = [];
  let taken = 0; // landings handed out by next()
  const waiting: ((q: URLSearchParams) => void)[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    res.writeHead(200, { "content-type": "text/plain" }).end("Back in the app");
    if (url.pathname !== "/callback") return;
    hits.push(url.searchParams);
    waiting.shift()?.(url.searchParams);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`;
  return {
    uri,
    /** Landings nobody took yet. */
    unseen: () => hits.length - taken,
    /** The next landing (or one that came already and was not taken). */
    next: (): Promise<URLSearchParams> =>
      new Promise((resolve) => (hits.length > taken ? resolve(hits[taken++]!) : waiting.push((q) => (taken++, resolve(q))))),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/**
 * A setup call to the API. Sign-ups and registrations are rate limited per address, and every test
 * here (and the browser journeys before them) comes from this machine's: a 429 waits its Retry-After.
 */
async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${API}${path}`, {
      method,
      headers: body ? { "content-type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const wait = Number(res.headers.get("retry-after") ?? 0);
    if (res.status === 429 && attempt < 2 && wait <= 60) {
      await new Promise((r) => setTimeout(r, (wait + 1) * 1000));
      continue;
    }
    return { status: res.status, body: (await res.json().catch(() => null)) as any };
  }
}
const form = (path: string, fields: Record<string, string>) =>
  fetch(`${API}${path}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields) }).then(
    async (r) => ({ status: r.status, body: (await r.json()) as any }),
  );

/** A person with an account (made through the API; the journey is the consent, not the sign-up). */
async function person(prefix: string) {
  const username = `${prefix}_${randomBytes(4).toString("hex")}`;
  const reg = await api("POST", "/register", { username, password: PASSWORD });
  expect(reg.status, JSON.stringify(reg.body)).toBe(201);
  return { username, id: reg.body.user.id as string };
}

async function newPage(ctx: BrowserContext) {
  const page = await ctx.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  return page;
}

/** The demo's sign-in form, as the person fills it. */
async function signIn(page: Page, username: string) {
  const form = page.getByTestId("login");
  await form.getByLabel("Username or email").fill(username);
  await form.getByLabel("Password").fill(PASSWORD);
  await form.getByRole("button", { name: "Sign in", exact: true }).click();
}

/** The consent page, on screen for `appName`, with the person it is for in the header. */
async function consentShown(page: Page, appName: string, username?: string) {
  await expect.poll(() => page.getByTestId("consent").isVisible(), { timeout: 15_000 }).toBe(true);
  expect(await page.getByTestId("consent-client").textContent()).toBe(appName);
  // Every app here registered itself: the page says its name and site are its own claims.
  expect(await page.getByTestId("consent-unverified").isVisible()).toBe(true);
  if (username) expect(await page.getByTestId("status").textContent()).toBe(`Signed in as ${username}`);
  expect(await page.getByTestId("profile").isVisible()).toBe(false);
}

/** The browser's arrival at the app's redirect_uri: the loopback's landing, once the page shows it. */
async function landed(page: Page, app: Awaited<ReturnType<typeof loopback>>) {
  const back = await app.next();
  await page.waitForURL((u) => u.href.startsWith(app.uri));
  return back;
}

const authorizeUrl = (params: Record<string, string>) => `${API}/oauth2/authorize?${new URLSearchParams(params)}`;
function pkce() {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

// Long enough for a 429's wait in api() (the sign-up limit is 10 a minute per address).
const SLOW = { timeout: 150_000 };

describe("an app asks for consent on the demo's page", SLOW, () => {
  it("signs in, shows who asks, Approve lands on the redirect_uri with a code; Connected apps lists it; Disconnect ends the grant", async () => {
    const app = await loopback();
    try {
      const reg = await api("POST", "/oauth2/register", {
        client_name: "Loopback Notes",
        client_uri: "https://notes.example/",
        redirect_uris: [app.uri],
        grant_types: ["authorization_code", "refresh_token"],
        token_endpoint_auth_method: "none",
        scope: "openid profile offline_access",
      });
      expect(reg.status, JSON.stringify(reg.body)).toBe(201);
      const clientId = reg.body.client_id as string;
      const who = await person("consent");
      const ctx = await browser.newContext();
      const page = await newPage(ctx);
      const { verifier, challenge } = pkce();
      const state = randomBytes(8).toString("hex");
      const ask = {
        response_type: "code",
        client_id: clientId,
        redirect_uri: app.uri,
        scope: "openid profile offline_access",
        code_challenge: challenge,
        code_challenge_method: "S256",
      };
      await page.goto(authorizeUrl({ ...ask, state }));

      // Signed out: the sign-in, with a line saying an app waits; the request id has left the address bar.
      await expect.poll(() => page.getByTestId("consent-signin").isVisible(), { timeout: 15_000 }).toBe(true);
      expect(page.url()).toBe(`${APP}/`);
      await signIn(page, who.username);
      await consentShown(page, "Loopback Notes", who.username);
      // A self-registered app's claimed site is shown only where its codes go (an https redirect): this
      // one's redirect is a loopback, so no site is shown, only where the browser goes back to.
      expect(await page.locator("#consent-site-line").isVisible()).toBe(false);
      expect(await page.getByTestId("consent-redirect").textContent()).toBe(`http://127.0.0.1:${new URL(app.uri).port}`);
      const scopes = await page.getByTestId("consent-scope").allTextContents();
      expect(scopes).toHaveLength(3);
      for (const s of scopes) expect(s).not.toMatch(/^(openid|profile|offline_access)$/); // plain words, not the names
      // For how long (offline_access: a refresh token): until disconnected, with the lifetimes in words.
      expect(await page.getByTestId("consent-lifetime").textContent()).toMatch(/^Until you disconnect the app, for at most 30 days; .*Connected apps/);
      await page.screenshot({ path: `${SHOTS}/consent.png`, fullPage: true });

      await page.getByTestId("consent-approve").click();
      const back = await landed(page, app);
      expect(back.get("state")).toBe(state);
      expect(back.get("iss")).toBe(API);
      const tokens = await form("/oauth2/token", {
        grant_type: "authorization_code",
        code: back.get("code")!,
        redirect_uri: app.uri,
        code_verifier: verifier,
        client_id: clientId,
      });
      expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
      expect(tokens.body.refresh_token).toBeTruthy();

      // A public app on a loopback redirect is asked every time (RFC 8252 8.6: any app on the device
      // could claim its id): prompt=none comes straight back with consent_required, no buttons...
      const silent = pkce();
      await page.goto(authorizeUrl({ ...ask, state: "quiet", prompt: "none", code_challenge: silent.challenge }));
      const quiet = await landed(page, app);
      expect(quiet.get("state")).toBe("quiet");
      expect([quiet.get("error"), quiet.get("code")]).toEqual(["consent_required", null]);

      // ...and without it the page asks again.
      await page.goto(authorizeUrl({ ...ask, state: "again", code_challenge: pkce().challenge }));
      await consentShown(page, "Loopback Notes", who.username);
      await page.getByTestId("consent-approve").click();
      const again = await landed(page, app);
      expect([again.get("state"), again.get("error")]).toEqual(["again", null]);
      expect(again.get("code")).toBeTruthy();

      // The account's page: the app is connected; Disconnect ends its grants.
      await page.goto(APP);
      await expect.poll(() => page.getByTestId("connected-app").count(), { timeout: 15_000 }).toBe(1);
      const entry = page.getByTestId("connected-app");
      expect(await entry.textContent()).toMatch(/^Loopback Notes: openid profile offline_access\. Connected .+, last used .+\. Disconnect$/);
      await page.screenshot({ path: `${SHOTS}/connected-apps.png`, fullPage: true });
      await entry.getByRole("button", { name: "Disconnect" }).click();
      await expect.poll(() => page.getByTestId("connected-apps").textContent()).toBe("None");
      const refused = await form("/oauth2/token", { grant_type: "refresh_token", refresh_token: tokens.body.refresh_token, client_id: clientId });
      expect(refused.status).toBe(400);
      expect(refused.body.error).toBe("invalid_grant");
      await ctx.close();
    } finally {
      await app.close();
    }
  });

  it("Deny sends the browser back with access_denied; Cancel before signing in too; prompt=none without a consent: consent_required", async () => {
    const app = await loopback();
    try {
      const reg = await api("POST", "/oauth2/register", {
        client_name: "Loopback Denied",
        redirect_uris: [app.uri],
        token_endpoint_auth_method: "none",
        scope: "openid profile",
      });
      expect(reg.status, JSON.stringify(reg.body)).toBe(201);
      const who = await person("deny");
      const ctx = await browser.newContext();
      const page = await newPage(ctx);
      const ask = { response_type: "code", client_id: reg.body.client_id, redirect_uri: app.uri, scope: "openid profile", code_challenge_method: "S256" };
      // Signed out, the person cancels: the app hears access_denied.
      await page.goto(authorizeUrl({ ...ask, state: "cancelled", code_challenge: pkce().challenge }));
      await expect.poll(() => page.getByTestId("consent-signin").isVisible(), { timeout: 15_000 }).toBe(true);
      await page.getByTestId("consent-cancel").click();
      const cancelled = await landed(page, app);
      expect([cancelled.get("error"), cancelled.get("state"), cancelled.get("code")]).toEqual(["access_denied", "cancelled", null]);
      // Signed in, the person reads the request and denies it.
      await page.goto(authorizeUrl({ ...ask, state: "denied", code_challenge: pkce().challenge }));
      await expect.poll(() => page.getByTestId("login").isVisible(), { timeout: 15_000 }).toBe(true);
      await signIn(page, who.username);
      await consentShown(page, "Loopback Denied");
      expect(await page.getByTestId("consent-site").isVisible()).toBe(false); // no client_uri given
      await page.getByTestId("consent-deny").click();
      const denied = await landed(page, app);
      expect([denied.get("error"), denied.get("state"), denied.get("iss"), denied.get("code")]).toEqual(["access_denied", "denied", API, null]);
      // prompt=none, signed in but never agreed: no page, straight back with consent_required.
      await page.goto(authorizeUrl({ ...ask, state: "silent", prompt: "none", code_challenge: pkce().challenge }));
      const silent = await landed(page, app);
      expect([silent.get("error"), silent.get("state"), silent.get("code")]).toEqual(["consent_required", "silent", null]);
      // Nothing connected.
      await page.goto(APP);
      await expect.poll(() => page.getByTestId("connected-apps").textContent(), { timeout: 15_000 }).toBe("None");
      await ctx.close();
    } finally {
      await app.close();
    }
  });

  it("a social sign-in leaves the page for the provider and comes back to the consent", async () => {
    const app = await loopback();
    try {
      const reg = await api("POST", "/oauth2/register", {
        client_name: "Loopback Social",
        redirect_uris: [app.uri],
        token_endpoint_auth_method: "none",
        scope: "openid profile",
      });
      const ctx = await browser.newContext();
      const page = await newPage(ctx);
      const ask = { response_type: "code", client_id: reg.body.client_id, redirect_uri: app.uri, scope: "openid profile", code_challenge_method: "S256" };
      await page.goto(authorizeUrl({ ...ask, state: "social", code_challenge: pkce().challenge }));
      await expect.poll(() => page.getByTestId("consent-signin").isVisible(), { timeout: 15_000 }).toBe(true);
      await page.getByTestId("sign-in-with-local").click();
      // The provider's pages: its login form, then its consent form, until the demo is back.
      const name = `social_${randomBytes(4).toString("hex")}`;
      for (let step = 0; step < 6 && !page.url().startsWith(APP); step++) {
        await page.waitForLoadState();
        if (page.url().startsWith(APP)) break;
        if (await page.locator("input[name=login]").count()) {
          await page.fill("input[name=login]", name);
          await page.fill("input[name=password]", "anything");
        }
        await Promise.all([page.waitForNavigation(), page.locator("button[type=submit]").first().click()]);
      }
      await consentShown(page, "Loopback Social", name);
      await page.getByTestId("consent-approve").click();
      const back = await landed(page, app);
      expect([back.get("state"), back.get("error")]).toEqual(["social", null]);
      expect(back.get("code")).toBeTruthy();
      await ctx.close();
    } finally {
      await app.close();
    }
  });

  it("prompt=login: the page asks the signed-in person to sign in again, then approves", async () => {
    const app = await loopback();
    try {
      const reg = await api("POST", "/oauth2/register", {
        client_name: "Loopback Strict",
        redirect_uris: [app.uri],
        token_endpoint_auth_method: "none",
        scope: "openid",
      });
      const who = await person("relogin");
      const ctx = await browser.newContext();
      const page = await newPage(ctx);
      await page.goto(APP);
      await signIn(page, who.username);
      await expect.poll(() => page.getByTestId("profile").isVisible(), { timeout: 15_000 }).toBe(true);
      await new Promise((r) => setTimeout(r, 1100)); // the sign-in is older than the request
      const ask = { response_type: "code", client_id: reg.body.client_id, redirect_uri: app.uri, scope: "openid", code_challenge_method: "S256" };
      await page.goto(authorizeUrl({ ...ask, state: "again", prompt: "login", code_challenge: pkce().challenge }));
      await consentShown(page, "Loopback Strict", who.username);
      expect(await page.getByTestId("consent-relogin").isVisible()).toBe(true);
      await page.getByTestId("consent-approve").click();
      // Approval refused (401 reauthentication_required): the sign-in forms, saying why.
      await expect.poll(() => page.getByTestId("consent-signin").textContent(), { timeout: 15_000 }).toContain("asks you to sign in again");
      expect(app.unseen()).toBe(0); // the browser did not go to the app
      await signIn(page, who.username);
      await consentShown(page, "Loopback Strict");
      expect(await page.getByTestId("consent-relogin").isVisible()).toBe(false);
      await page.getByTestId("consent-approve").click();
      const back = await landed(page, app);
      expect([back.get("state"), back.get("error")]).toEqual(["again", null]);
      expect(back.get("code")).toBeTruthy();
      await ctx.close();
    } finally {
      await app.close();
    }
  });
});

/**
 * The MCP SDK client's OAuth side: its "browser" is Chromium. redirectToAuthorization opens the URL
 * the SDK built; the person signs in on the demo and approves; the code comes back to the loopback.
 */
class ChromiumProvider implements OAuthClientProvider {
  code: string | undefined;
  private client: OAuthClientInformationMixed | undefined;
  private saved: OAuthTokens | undefined;
  private verifier = "";
  constructor(
    private redirect: Awaited<ReturnType<typeof loopback>>,
    private page: Page,
    private username: string,
  ) {}
  get redirectUrl() {
    return this.redirect.uri;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: "MCP agent (e2e)",
      redirect_uris: [this.redirect.uri],
      grant_types: ["authorization_code", "refresh_token"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.client = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  async redirectToAuthorization(url: URL) {
    expect(url.origin).toBe(API);
    expect(url.searchParams.get("resource")).toBe(MCP_URL);
    const landed = this.redirect.next();
    await this.page.goto(url.href);
    await expect.poll(() => this.page.getByTestId("login").isVisible(), { timeout: 15_000 }).toBe(true);
    await signIn(this.page, this.username);
    await consentShown(this.page, "MCP agent (e2e)");
    expect(await this.page.getByTestId("consent-resource").textContent()).toBe(MCP_URL);
    // The deployment's own scope in its own words (OAUTH_SCOPE_DESCRIPTIONS), not its name.
    expect(await this.page.getByTestId("consent-scope").allTextContents()).toContain(MCP_SCOPE_WORDS);
    await this.page.screenshot({ path: `${SHOTS}/consent-mcp.png`, fullPage: true });
    await this.page.getByTestId("consent-approve").click();
    const back = await landed;
    expect(back.get("iss")).toBe(API);
    this.code = back.get("code") ?? undefined;
  }
}

describe("the MCP SDK's client, from the MCP server's URL alone", SLOW, () => {
  it("registers itself, gets the person's consent in Chromium on the demo, and calls whoami", async () => {
    const redirect = await loopback();
    try {
      const who = await person("agent");
      const ctx = await browser.newContext();
      const page = await newPage(ctx);
      const provider = new ChromiumProvider(redirect, page, who.username);
      const seen: string[] = [];
      const recording: typeof fetch = async (input, init) => {
        const res = await fetch(input, init);
        const url = new URL(input instanceof Request ? input.url : String(input));
        seen.push(`${init?.method ?? "GET"} ${url.origin}${url.pathname} ${res.status}`);
        return res;
      };
      const transport = () => new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider, fetch: recording });
      const first = transport();
      await expect(new Client({ name: "e2e-agent", version: "1.0.0" }).connect(first)).rejects.toThrow(UnauthorizedError);
      // Discovered from the 401, registered itself (RFC 7591), sent the person to consent.
      expect(seen).toContain(`POST ${API}/oauth2/register 201`);
      expect(provider.code).toBeTruthy();
      await first.finishAuth(provider.code!);
      expect(seen.at(-1)).toBe(`POST ${API}/oauth2/token 200`);

      const client = new Client({ name: "e2e-agent", version: "1.0.0" });
      await client.connect(transport());
      const result = await client.callTool({ name: "whoami", arguments: {} });
      expect(result.isError).toBeFalsy();
      expect(result.structuredContent).toMatchObject({ user_id: who.id, client_id: provider.clientInformation()!.client_id, scopes: [MCP_SCOPE] });
      await client.close();

      // The person sees the agent among the connected apps.
      await page.goto(APP);
      await expect.poll(() => page.getByTestId("connected-app").textContent(), { timeout: 15_000 }).toContain("MCP agent (e2e)");
      expect(await page.getByTestId("connected-app").textContent()).toContain(MCP_URL);
      await ctx.close();
    } finally {
      await redirect.close();
    }
  });
});
