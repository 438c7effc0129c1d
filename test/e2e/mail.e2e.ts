import { existsSync, readFileSync } from "node:fs";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API, API_LOG, APP } from "./global-setup";

/**
 * Sign-in by mail in a real Chromium (issue 31's "done when"): a person asks the demo for a link; a
 * mail scanner fetches the link (GET and HEAD) and even loads its page in a browser of its own
 * without clicking; the person then opens the link, clicks "Continue signing in" and is signed in.
 * And the code of a later mail, typed on another device.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const suffix = Date.now().toString(36);
const email = `mailer_${suffix}@example.com`;

let browser: Browser;
beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});
afterAll(() => browser?.close());

/** The sign-in mails wrangler printed (its local simulation writes each body to a file), oldest first. */
function signInMails(): { link: string; code: string }[] {
  const paths = [...readFileSync(API_LOG, "utf8").matchAll(/^Text: (.+)$/gm)].map((m) => m[1]!.trim());
  return paths
    .map((p) => readFileSync(p, "utf8"))
    .map((text) => ({
      link: /(http:\S+#mail-sign-in=[A-Za-z0-9_-]{43})/.exec(text)?.[1] ?? "",
      code: /enter this code where you asked: ([0-9]{8})/.exec(text)?.[1] ?? "",
    }))
    .filter((m) => m.link && m.code);
}
/** The first sign-in mail after `before` of them were. */
async function newMail(before: number) {
  await expect.poll(() => signInMails().length, { timeout: 20_000 }).toBeGreaterThan(before);
  return signInMails()[before]!;
}

/** Every POST the page makes to the API's mail sign-in routes. */
function mailPosts(page: Page) {
  const seen: string[] = [];
  page.on("request", (r) => {
    if (r.method() === "POST" && r.url().startsWith(`${API}/login/email/`)) seen.push(r.url());
  });
  return seen;
}

async function askForMail(page: Page) {
  const form = page.getByTestId("mail-start");
  await form.getByLabel("Email").fill(email);
  await form.getByRole("button", { name: "Mail me a link and a code" }).click();
  await expect.poll(() => page.getByTestId("notice").textContent(), { timeout: 10_000 }).toMatch(/a link and a code are on their way/);
}

const status = (page: Page) => page.getByTestId("status").textContent();

describe("sign-in by mail in Chromium", () => {
  let person: BrowserContext;
  let page: Page;

  it("a scanner's GET, HEAD and page load leave the link valid; the person's click signs in", async () => {
    person = await browser.newContext();
    page = await person.newPage();
    await page.goto(APP);
    await expect.poll(() => status(page), { timeout: 10_000 }).toBe("Signed out");
    const before = signInMails().length;
    await askForMail(page);
    const { link } = await newMail(before);
    expect(link.startsWith(`${APP}/#mail-sign-in=`)).toBe(true);
    const token = link.split("=")[1]!;

    // A mail scanner: fetches the exact link (the fragment never leaves it), and the API's paths with the token.
    for (const method of ["GET", "HEAD"]) {
      expect((await fetch(link, { method })).status).toBe(200); // the app's page
      for (const path of [`/login/email/link?token=${token}`, `/login/email?token=${token}`, `/?mail-sign-in=${token}`]) {
        const res = await fetch(`${API}${path}`, { method });
        expect(await res.text(), `${method} ${path}`).not.toContain("access_token"); // any answer but a sign-in
      }
    }
    // A scanner that runs the page's script in a browser of its own, and never clicks.
    const scanner = await browser.newContext();
    const scanned = await scanner.newPage();
    const scannerPosts = mailPosts(scanned);
    await scanned.goto(link);
    await expect.poll(() => scanned.getByTestId("mail-continue").isVisible(), { timeout: 10_000 }).toBe(true);
    await scanned.waitForTimeout(1500);
    expect(scannerPosts).toEqual([]);
    expect(await status(scanned)).toBe("Signed out");
    await scanner.close();

    // The person opens the link, sees the page, and clicks to continue.
    const posts = mailPosts(page);
    await page.goto(link);
    await expect.poll(() => page.getByTestId("mail-continue").isVisible(), { timeout: 10_000 }).toBe(true);
    expect(posts).toEqual([]); // nothing on load
    await page.getByTestId("mail-continue").click();
    // A new address: the mail signed up an account without a username, its address verified.
    await expect.poll(() => status(page), { timeout: 10_000 }).toBe("Signed in as you");
    await expect.poll(() => page.getByTestId("profile-email").textContent()).toBe(`${email} (verified)`);
    expect(await page.getByTestId("profile-username").textContent()).toBe("-");
    expect(posts).toEqual([`${API}/login/email/link`]);
    expect(await page.getByTestId("mail-link").isVisible()).toBe(false);
  });

  it("the code of a later mail, typed on another device, signs in to the same account; then a username is chosen", async () => {
    const phone = await browser.newContext();
    const asking = await phone.newPage();
    await asking.goto(APP);
    await expect.poll(() => status(asking), { timeout: 10_000 }).toBe("Signed out");
    const before = signInMails().length;
    await askForMail(asking);
    const { code } = await newMail(before);

    const other = await browser.newContext();
    const typing = await other.newPage();
    await typing.goto(APP);
    await expect.poll(() => status(typing), { timeout: 10_000 }).toBe("Signed out");
    const form = typing.getByTestId("mail-code");
    await form.getByLabel("Email").fill(email);
    await form.getByLabel("Code").fill(code);
    await form.getByRole("button", { name: "Sign in with the code" }).click();
    await expect.poll(() => status(typing), { timeout: 10_000 }).toBe("Signed in as you");
    await expect.poll(() => typing.getByTestId("profile-email").textContent()).toBe(`${email} (verified)`);

    // The account has no username yet: the profile offers to choose one.
    const name = `mailer_${suffix}`;
    const set = typing.getByTestId("username-set");
    await expect.poll(() => set.isVisible()).toBe(true);
    await set.getByLabel("Choose a username").fill(name);
    await set.getByRole("button", { name: "Save username" }).click();
    await expect.poll(() => typing.getByTestId("profile-username").textContent(), { timeout: 10_000 }).toBe(name);
    await phone.close();
    await other.close();
    await person.close();
  });
});
