import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API, API_LOG, APP } from "./global-setup";

/**
 * The demo app in a real Chromium (Debian's package), typed into and clicked through as a user
 * would. Screenshots of the main screens go to test/e2e/screenshots/ (gitignored).
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = "test/e2e/screenshots";
const PASSWORD = "correct horse 42";

let browser: Browser;
let context: BrowserContext;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  context = await browser.newContext();
});
afterAll(() => browser?.close());

const status = (page: Page) => page.getByTestId("status");
/** What the user sees: the header, and the profile or the sign-in forms, never both. */
async function signedIn(page: Page, username: string) {
  await expect.poll(() => status(page).textContent(), { timeout: 10_000 }).toBe(`Signed in as ${username}`);
  await expect.poll(() => page.getByTestId("profile").isVisible()).toBe(true);
  expect(await page.getByTestId("login").isVisible()).toBe(false);
}
async function signedOut(page: Page) {
  await expect.poll(() => status(page).textContent(), { timeout: 10_000 }).toBe("Signed out");
  await expect.poll(() => page.getByTestId("login").isVisible()).toBe(true);
  expect(await page.getByTestId("profile").isVisible()).toBe(false);
}

async function open(ctx = context, url = APP) {
  const page = await ctx.newPage();
  await page.goto(url);
  return page;
}

async function register(page: Page, username: string) {
  const form = page.getByTestId("register");
  await form.getByLabel("Username").fill(username);
  await form.getByLabel("Email (optional)").fill(`${username}@example.com`);
  await form.getByLabel("Password").fill(PASSWORD);
  await form.getByRole("button", { name: "Register" }).click();
}

async function login(page: Page, username: string, password = PASSWORD) {
  const form = page.getByTestId("login");
  await form.getByLabel("Username or email").fill(username);
  await form.getByLabel("Password").fill(password);
  await form.getByRole("button", { name: "Sign in" }).click();
}

/** Counts the page's calls to the API's /refresh. */
function countRefreshes(page: Page) {
  const seen = { n: 0 };
  page.on("request", (r) => {
    if (r.url() === `${API}/refresh` && r.method() === "POST") seen.n++;
  });
  return seen;
}

const username = `e2e_${Date.now().toString(36)}`;

describe("the demo app in Chromium", () => {
  let page: Page;

  it("registers, then shows the profile and this browser's session", async () => {
    page = await open();
    await signedOut(page);
    await page.screenshot({ path: `${SHOTS}/signed-out.png`, fullPage: true });
    await register(page, username);
    await signedIn(page, username);
    await expect.poll(() => page.getByTestId("profile-username").textContent()).toBe(username);
    await expect.poll(() => page.getByTestId("session").count()).toBe(1);
    await page.screenshot({ path: `${SHOTS}/profile.png`, fullPage: true });
    // The refresh token is an HttpOnly cookie that script cannot read.
    const cookies = await context.cookies(API);
    expect(cookies.filter((c) => c.name === "refresh_token").every((c) => c.httpOnly && c.sameSite === "Strict")).toBe(true);
    expect(await page.evaluate(() => document.cookie)).not.toContain("refresh_token");
  });

  it("keeps the user signed in across a reload (silent refresh from the cookie)", async () => {
    const refreshes = countRefreshes(page);
    await page.reload();
    await signedIn(page, username);
    expect(refreshes.n).toBe(1);
  });

  it("renews an access token that expires mid-session without the user noticing", async () => {
    await page.clock.install();
    await page.reload();
    await signedIn(page, username);
    const refreshes = countRefreshes(page);
    await page.clock.fastForward("16:00"); // past the 15-minute access token
    await page.getByTestId("reload").click();
    await expect.poll(() => refreshes.n).toBe(1);
    await expect.poll(() => page.getByTestId("session").count()).toBe(1);
    await signedIn(page, username);
    expect(await page.getByTestId("error").isHidden()).toBe(true);
  });

  it("keeps two tabs signed in when both reload at once", async () => {
    const second = await open();
    await signedIn(second, username);
    await Promise.all([page.reload(), second.reload()]);
    await signedIn(page, username);
    await signedIn(second, username);
    await second.close();
  });

  it("logs out: the cookie is cleared and the other tab is signed out too", async () => {
    const other = await open();
    await signedIn(other, username);
    await page.getByTestId("logout").click();
    await signedOut(page);
    await signedOut(other);
    expect((await context.cookies(API)).filter((c) => c.name === "refresh_token" && c.value)).toEqual([]);
    await other.reload();
    await signedOut(other);
    await other.close();
  });

  it("lets a page on a foreign site neither refresh nor log the user out", async () => {
    await login(page, username);
    await signedIn(page, username);
    const cookieBefore = (await context.cookies(API)).find((c) => c.name === "refresh_token")?.value;
    // Another host name is another site: 127.0.0.1 is not localhost to the browser.
    const foreign = await open(context, APP.replace("localhost", "127.0.0.1"));
    const attempts = await foreign.evaluate(async (api) => {
      const tryIt = (path: string) =>
        fetch(`${api}${path}`, { method: "POST", credentials: "include" }).then(
          (r) => `answered ${r.status}`,
          () => "blocked",
        );
      return [await tryIt("/refresh"), await tryIt("/logout")];
    }, API);
    expect(attempts).toEqual(["blocked", "blocked"]);
    await foreign.close();
    // Nothing rotated the refresh token (with no reuse grace, a rotation behind the page's back
    // would also make its next refresh look like theft), and the session lives.
    expect((await context.cookies(API)).find((c) => c.name === "refresh_token")?.value).toBe(cookieBefore);
    await page.reload();
    await signedIn(page, username);
  });

  it("lists sessions, revokes another one, and changes the password", async () => {
    const elsewhere = await browser.newContext(); // another browser: another session
    const other = await open(elsewhere);
    await login(other, username);
    await signedIn(other, username);
    await page.getByTestId("reload").click();
    await expect.poll(() => page.getByTestId("session").count()).toBe(2);
    await page.getByTestId("session").getByRole("button", { name: "Revoke" }).click();
    await expect.poll(() => page.getByTestId("session").count()).toBe(1);
    // The revoked browser finds out at its next call.
    await other.getByTestId("reload").click();
    await signedOut(other);
    const form = page.getByTestId("password");
    await form.getByLabel("Current password").fill(PASSWORD);
    await form.getByLabel("New password").fill("battery staple 43");
    await form.getByRole("button", { name: "Change password" }).click();
    await expect.poll(() => page.getByTestId("notice").textContent()).toMatch(/Password changed; 0 other session\(s\) signed out/);
    await elsewhere.close();
    await page.reload();
    await signedIn(page, username);
  });

  it("shows a 429 with its wait", async () => {
    await page.getByTestId("logout").click();
    await signedOut(page);
    for (let i = 0; i < 5; i++) {
      await login(page, username, "wrong password 1");
      await expect.poll(() => page.getByTestId("error").textContent()).toMatch(/Invalid username or password/);
    }
    await login(page, username, "battery staple 43");
    await expect.poll(() => page.getByTestId("error").textContent()).toMatch(/Try again in \d+ s/);
    await page.screenshot({ path: `${SHOTS}/rate-limited.png`, fullPage: true });
  });

  it("recovers a password from the mailed link that wrangler prints", async () => {
    await page.goto(APP);
    await signedOut(page);
    const form = page.getByTestId("forgot");
    await form.getByLabel("Email").fill(`${username}@example.com`);
    await form.getByRole("button", { name: "Mail me a link" }).click();
    await expect.poll(() => page.getByTestId("notice").textContent()).toMatch(/reset link is on its way/);
    // The local simulation prints the mail with the path of its text body.
    const mailText = async () => {
      const paths = [...readFileSync(API_LOG, "utf8").matchAll(/^Text: (.+)$/gm)].map((m) => m[1]!.trim());
      const last = paths.at(-1);
      return last ? readFileSync(last, "utf8") : "";
    };
    await expect.poll(mailText, { timeout: 10_000 }).toMatch(/reset-password=/);
    const link = /(http:\S+#reset-password=[A-Za-z0-9_-]+)/.exec(await mailText())![1]!;
    await page.goto(link);
    const reset = page.getByTestId("reset");
    await reset.getByLabel("New password").fill("recovered secret 45");
    await reset.getByRole("button", { name: "Set password" }).click();
    await expect.poll(() => page.getByTestId("notice").textContent()).toMatch(/password is reset/);
    await login(page, username, "recovered secret 45");
    await signedIn(page, username);
  });

  it("shows field errors under their inputs", async () => {
    await page.getByTestId("logout").click();
    await signedOut(page);
    await register(page, "x");
    await expect.poll(() => page.locator('[data-testid="register"] [data-field="username"]').textContent()).toMatch(/3-32 characters/);
  });
});
