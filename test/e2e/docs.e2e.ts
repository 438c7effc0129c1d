import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API } from "./global-setup";

/**
 * GET /docs in a real Chromium with the internet gone: every request to a host other than this
 * machine is refused, as on a laptop offline or behind a strict proxy. The reference must still
 * render, from the script the API serves itself (a pinned copy, checked by SRI).
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
let browser: Browser;
beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});
afterAll(() => browser?.close());

const local = (url: string) => ["localhost", "127.0.0.1", "[::1]"].includes(new URL(url).hostname) || !/^https?:/.test(url);

describe("the API reference in Chromium, offline", () => {
  it("renders /docs with every non-local request blocked, and asks no other host for anything", async () => {
    const ctx = await browser.newContext();
    const blocked: string[] = [];
    await ctx.route("**/*", (route) => {
      if (local(route.request().url())) return route.continue();
      blocked.push(route.request().url());
      return route.abort("internetdisconnected");
    });
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(e.message));
    const scripts: { url: string; status: number }[] = [];
    page.on("response", (r) => {
      if (r.request().resourceType() === "script") scripts.push({ url: r.url(), status: r.status() });
    });
    await page.goto(`${API}/docs`);
    // The document's own content, rendered by the script: the title, an operation, its description.
    await expect.poll(() => page.locator("h1", { hasText: "edge-auth-api" }).isVisible(), { timeout: 20_000 }).toBe(true);
    await expect.poll(() => page.getByText("Authentication API on Cloudflare Workers").isVisible()).toBe(true);
    await expect.poll(() => page.getByText("Whether D1 and KV answer").first().isVisible()).toBe(true);
    await page.getByText("Sign-in", { exact: true }).first().click();
    await expect.poll(() => page.getByText("Sign in with a username (or email) and password").first().isVisible()).toBe(true);
    // Nothing that would send the document to Scalar's servers.
    expect(await page.getByText("Ask AI").count()).toBe(0);
    expect(await page.getByText("Generate MCP").count()).toBe(0);
    await page.screenshot({ path: "test/e2e/screenshots/docs-offline.png" });
    expect(scripts).toEqual([{ url: expect.stringMatching(new RegExp(`^${API}/docs/scalar-api-reference-\\d+\\.\\d+\\.\\d+\\.js$`)), status: 200 }]);
    expect(blocked).toEqual([]);
    expect(errors).toEqual([]);
    await ctx.close();
  });
});
