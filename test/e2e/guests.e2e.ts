import { existsSync, mkdirSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { APP } from "./global-setup";

/**
 * A guest in the demo becomes a member keeping the same id (docs/guests.md), in a real Chromium: "Try
 * as guest", the badge with the account id, the upgrade with an address and a password, the same id;
 * signed out and in again with that password, still the same id. The API runs with GUESTS on (global-setup.ts).
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = "test/e2e/screenshots";
const PASSWORD = "correct horse 42";

let browser: Browser;
beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});
afterAll(() => browser?.close());

const text = (page: Page, testid: string) => page.getByTestId(testid).textContent();

describe("a guest in the demo", () => {
  it("tries the app as a guest, upgrades with an address and a password, and keeps the same account id through a new sign-in", async () => {
    const page = await (await browser.newContext()).newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(APP);
    await expect.poll(() => text(page, "status"), { timeout: 10_000 }).toBe("Signed out");

    await page.getByTestId("guest-start").click();
    await expect.poll(() => page.getByTestId("guest-badge").isVisible(), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => text(page, "guest-id")).toMatch(/^[0-9a-f-]{36}$/);
    const id = (await text(page, "guest-id"))!;
    await expect.poll(() => text(page, "profile-id")).toBe(id);
    // What a guest may not use is not offered.
    expect(await page.getByTestId("orgs").isVisible()).toBe(false);
    expect(await page.getByTestId("keys").isVisible()).toBe(false);
    await page.screenshot({ path: `${SHOTS}/guest.png`, fullPage: true });

    const email = `guest_${Date.now().toString(36)}@example.com`;
    const form = page.getByTestId("guest-upgrade");
    await form.getByLabel("Email").fill(email);
    await form.getByLabel("Password").fill(PASSWORD);
    await form.getByRole("button", { name: "Keep this account" }).click();
    await expect.poll(() => text(page, "notice"), { timeout: 10_000 }).toContain(`with the same account (${id})`);
    await expect.poll(() => page.getByTestId("guest").isVisible()).toBe(false);
    await expect.poll(() => text(page, "profile-id")).toBe(id);
    await expect.poll(() => text(page, "profile-email")).toBe(`${email} (not verified)`);
    expect(await page.getByTestId("orgs").isVisible()).toBe(true);

    await page.getByTestId("logout").click();
    await expect.poll(() => text(page, "status"), { timeout: 10_000 }).toBe("Signed out");
    const login = page.getByTestId("login");
    await login.getByLabel("Username or email").fill(email);
    await login.getByLabel("Password").fill(PASSWORD);
    await login.getByRole("button", { name: "Sign in", exact: true }).click();
    await expect.poll(() => text(page, "status"), { timeout: 10_000 }).toBe("Signed in as you");
    await expect.poll(() => text(page, "profile-id")).toBe(id);
    expect(await page.getByTestId("guest").isVisible()).toBe(false);
    expect(errors).toEqual([]);
  });
});
