import { spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error: a plain ES module shared with the workerd tests and `npm run docs:check`
import { signInAtLocalIdp } from "../../scripts/idp-login.mjs";
import { API, API_LOG, APP, STATE } from "./global-setup";

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

/** What the page logged as an error (a failed request is one too: the browser logs each). */
const consoleErrors = new WeakMap<Page, string[]>();
async function open(ctx = context, url = APP) {
  const page = await ctx.newPage();
  const errors: string[] = [];
  consoleErrors.set(page, errors);
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  return page;
}
const errorsOf = (page: Page) => consoleErrors.get(page) ?? [];

/** The Security card's one password field, shared by its forms. */
const securityPassword = (page: Page, password = PASSWORD) => page.getByTestId("security").getByLabel("Current password").fill(password);

async function register(page: Page, username: string) {
  const form = page.getByTestId("register");
  await form.getByLabel("Username").fill(username);
  await form.getByLabel("Email").fill(`${username}@example.com`);
  await form.getByLabel("Password").fill(PASSWORD);
  await form.getByRole("button", { name: "Register" }).click();
}

async function login(page: Page, username: string, password = PASSWORD) {
  const form = page.getByTestId("login");
  await form.getByLabel("Username or email").fill(username);
  await form.getByLabel("Password").fill(password);
  await form.getByRole("button", { name: "Sign in", exact: true }).click(); // not "Sign in with a passkey"
}

/** The text of the newest mail wrangler printed (its local simulation writes each body to a file). */
function lastMail(): string {
  const paths = [...readFileSync(API_LOG, "utf8").matchAll(/^Text: (.+)$/gm)].map((m) => m[1]!.trim());
  const last = paths.at(-1);
  return last ? readFileSync(last, "utf8") : "";
}

/** A virtual authenticator (DevTools WebAuthn domain) in the page's browser: it holds passkeys, verifies the user. */
async function virtualAuthenticator(ctx: BrowserContext, page: Page) {
  const cdp = await ctx.newCDPSession(page);
  await cdp.send("WebAuthn.enable", { enableUI: false });
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      ctap2Version: "ctap2_1",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

async function addPasskey(page: Page, name: string) {
  const add = page.getByTestId("passkey-add");
  await add.getByLabel("Name (optional)").fill(name);
  await securityPassword(page);
  await add.getByRole("button", { name: "Add a passkey" }).click();
}

/** Counts the page's calls to the API's /refresh, and keeps the status of each answer. */
function countRefreshes(page: Page) {
  const seen = { n: 0, answers: [] as number[] };
  const isRefresh = (r: { url(): string; method(): string }) => r.url() === `${API}/refresh` && r.method() === "POST";
  page.on("request", (r) => {
    if (isRefresh(r)) seen.n++;
  });
  page.on("response", (r) => {
    if (isRefresh(r.request())) seen.answers.push(r.status());
  });
  return seen;
}

const username = `e2e_${Date.now().toString(36)}`;

describe("the demo app in Chromium", () => {
  let page: Page;

  it("registers, then shows the profile and this browser's session", async () => {
    page = await open();
    await signedOut(page);
    // Nobody signed in on this browser: the start-up refresh gets 204, not a 401; no favicon to miss.
    expect(errorsOf(page)).toEqual([]);
    await page.screenshot({ path: `${SHOTS}/signed-out.png`, fullPage: true });
    await register(page, username);
    await signedIn(page, username);
    await expect.poll(() => page.getByTestId("profile-username").textContent()).toBe(username);
    await expect.poll(() => page.getByTestId("session").count()).toBe(1);
    expect(await page.getByTestId("session").textContent()).toMatch(/^This browser \(Chrome on Linux\), last used /);
    expect(await page.getByTestId("profile-email").textContent()).toBe(`${username}@example.com (not verified)`);
    expect(await page.getByTestId("admin").isVisible()).toBe(false); // no admin role, no admin page
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
    await other.waitForLoadState("networkidle"); // its first render's calls are answered: none is in flight at the logout
    await page.getByTestId("logout").click();
    await signedOut(page);
    await signedOut(other);
    expect((await context.cookies(API)).filter((c) => c.name === "refresh_token" && c.value)).toEqual([]);
    // Signed out, a reload's "anyone signed in?" refresh gets 204 (no cookie), and nothing is logged.
    const refreshes = countRefreshes(other);
    errorsOf(other).length = 0;
    await other.reload();
    await signedOut(other);
    expect(refreshes.answers).toEqual([204]);
    expect(errorsOf(other)).toEqual([]);
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
    expect(await page.getByTestId("session").allTextContents()).toContainEqual(expect.stringMatching(/^Chrome on Linux, last used .+Revoke$/));
    // Ending another session takes the password (the step-up end_sessions), typed in the Security card.
    await securityPassword(page);
    await page.getByTestId("session").getByRole("button", { name: "Revoke" }).click();
    await expect.poll(() => page.getByTestId("session").count()).toBe(1);
    // The revoked browser finds out at its next call.
    await other.getByTestId("reload").click();
    await signedOut(other);
    const form = page.getByTestId("password");
    await form.getByLabel("Current password").fill(PASSWORD);
    await form.getByLabel("New password").fill("battery staple 43");
    await form.getByRole("button", { name: "Change password" }).click();
    await expect.poll(() => page.getByTestId("notice").textContent()).toBe("Password changed; no other session was signed in, this one stays");
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
    await expect.poll(lastMail, { timeout: 10_000 }).toMatch(/reset-password=/);
    const link = /(http:\S+#reset-password=[A-Za-z0-9_-]+)/.exec(lastMail())![1]!;
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

/** RFC 6238 as an authenticator app computes it: HMAC-SHA1 over the 30-second step, 6 digits. */
function totp(base32Secret: string, step: number): string {
  let bits = "";
  for (const ch of base32Secret) bits += "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".indexOf(ch).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g)!.map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[19]! & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}
const stepNow = () => Math.floor(Date.now() / 30_000);

/**
 * Second factors, each journey in a browser of its own. Mind the budget: the API's IP limiter
 * allows 20 sign-in requests (/login, /login/mfa, /passkeys/login/*) a minute, and the whole file
 * runs within one; the journeys above spend 9 of them, these 9.
 */
describe("second factors in Chromium", () => {
  const factor = (page: Page, name: string) => page.getByTestId(`factor-${name}`).textContent();

  it("TOTP: sets up an authenticator app; signs in with a recovery code (once) and with a code; turns it off", async () => {
    const ctx = await browser.newContext();
    const page = await open(ctx);
    const name = `totp_${Date.now().toString(36)}`;
    await register(page, name);
    await signedIn(page, name);
    await expect.poll(() => factor(page, "totp")).toBe("off");

    const setup = page.getByTestId("totp-setup");
    await securityPassword(page);
    await setup.getByRole("button", { name: "Set up authenticator app" }).click();
    await expect.poll(() => page.getByTestId("totp-secret").textContent()).toMatch(/^[A-Z2-7]{32}$/);
    const secret = (await page.getByTestId("totp-secret").textContent())!;
    expect(await page.getByTestId("totp-uri").textContent()).toMatch(new RegExp(`^otpauth://totp/.+:${name}\\?secret=${secret}&`));
    const enabledAt = stepNow();
    const enable = page.getByTestId("totp-enable");
    await enable.getByLabel("Code from the app").fill(totp(secret, enabledAt));
    await enable.getByRole("button", { name: "Turn on" }).click();
    await expect.poll(() => page.getByTestId("recovery-code").count()).toBe(10);
    const codes = await page.getByTestId("recovery-code").allTextContents();
    expect(new Set(codes).size).toBe(10);
    await expect.poll(() => factor(page, "totp")).toBe("on");
    expect(await factor(page, "recovery-codes")).toBe("10");
    expect(await page.getByTestId("totp-secret").textContent()).toBe(""); // the key is off the screen
    await page.screenshot({ path: `${SHOTS}/recovery-codes.png`, fullPage: true });

    // Signing out takes the codes off the screen; the password alone no longer signs in.
    await page.getByTestId("logout").click();
    await signedOut(page);
    expect(await page.getByTestId("recovery-code").count()).toBe(0);
    const mfa = page.getByTestId("mfa");
    const secondStep = async () => {
      await login(page, name);
      await expect.poll(() => mfa.isVisible()).toBe(true);
      expect(await status(page).textContent()).toBe("Signed out");
      expect(await page.getByTestId("login").isVisible()).toBe(false);
    };
    const useRecoveryCode = async (code: string) => {
      await mfa.getByRole("button", { name: "Use a recovery code" }).click();
      await mfa.getByLabel("Recovery code").fill(code);
      await mfa.getByRole("button", { name: "Verify" }).click();
    };

    // A recovery code signs in once.
    await secondStep();
    await page.screenshot({ path: `${SHOTS}/second-step.png`, fullPage: true });
    await useRecoveryCode(codes[0]!);
    await signedIn(page, name);
    await expect.poll(() => factor(page, "recovery-codes")).toBe("9");
    await page.getByTestId("logout").click();
    await signedOut(page);
    await secondStep();
    await useRecoveryCode(codes[0]!);
    await expect.poll(() => page.getByTestId("error").textContent()).toMatch(/wrong, expired or already used/);
    expect(await status(page).textContent()).toBe("Signed out");

    // The same challenge takes a code from the app. Enabling used the code of step enabledAt, and a
    // code is good once, for a step later than the last accepted: the next step's code (the server
    // accepts one step either side of its clock).
    await mfa.getByRole("button", { name: "Use a code from the app" }).click();
    await mfa.getByLabel("Code from your authenticator app").fill(totp(secret, enabledAt + 1));
    await mfa.getByRole("button", { name: "Verify" }).click();
    await signedIn(page, name);
    expect(await page.getByTestId("error").isHidden()).toBe(true);

    // Turning it off takes the password and a code (here a recovery code).
    const off = page.getByTestId("totp-disable");
    await securityPassword(page);
    await off.getByLabel("Code from the app, or a recovery code").fill(codes[1]!);
    await off.getByRole("button", { name: "Turn off" }).click();
    await expect.poll(() => page.getByTestId("notice").textContent()).toMatch(/Two-step sign-in is off/);
    await expect.poll(() => factor(page, "totp")).toBe("off");
    expect(await factor(page, "recovery-codes")).toBe("0");
    expect(await page.getByTestId("totp-setup").isVisible()).toBe(true);
    await ctx.close();
  });

  it("passkeys: adds one (a virtual authenticator), signs in with it, removes it", async () => {
    const ctx = await browser.newContext();
    const page = await open(ctx);
    const { cdp, authenticatorId } = await virtualAuthenticator(ctx, page);
    const name = `pk_${Date.now().toString(36)}`;
    await register(page, name);
    await signedIn(page, name);
    expect(await page.getByTestId("passkey").count()).toBe(0);

    await addPasskey(page, "Virtual key");
    await expect.poll(() => page.getByTestId("passkey").count()).toBe(1);
    expect(await page.getByTestId("passkey").textContent()).toMatch(/^Virtual key, added /);
    expect(await factor(page, "passkeys")).toBe("1");
    expect(await page.getByTestId("notice").textContent()).toBe("Passkey added");
    // A discoverable credential for this site, kept by the authenticator.
    const held = async () => (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials;
    const [credential, ...more] = await held();
    expect(more).toEqual([]);
    expect(credential).toMatchObject({ isResidentCredential: true, rpId: "localhost" });
    await page.screenshot({ path: `${SHOTS}/security.png`, fullPage: true });

    // No username, no password: the authenticator offers the passkey, the API signs in.
    await page.getByTestId("logout").click();
    await signedOut(page);
    await page.getByTestId("passkey-login").click();
    await signedIn(page, name);
    await expect.poll(() => page.getByTestId("passkey").textContent()).toMatch(/last used/);

    // Removed at the API (a step-up: the password again), it signs in no more, though the
    // authenticator still holds it.
    await page.getByTestId("passkey").getByRole("button", { name: "Remove" }).click();
    const remove = page.getByTestId("passkey-remove");
    await securityPassword(page);
    await remove.getByRole("button", { name: "Remove passkey" }).click();
    await expect.poll(() => page.getByTestId("passkey").count()).toBe(0);
    await expect.poll(() => factor(page, "passkeys")).toBe("0");
    await page.getByTestId("logout").click();
    await signedOut(page);
    expect(await held()).toHaveLength(1);
    await page.getByTestId("passkey-login").click();
    await expect.poll(() => page.getByTestId("error").textContent()).toMatch(/passkey was not recognised/);
    await signedOut(page);
    await ctx.close();
  });
});

/**
 * One model for every way in: the security view lists them, and the notice of a new one carries a
 * "this was not me" link. One sign-in request (the attacker's login) from the IP budget above.
 */
describe("ways in, in Chromium", () => {
  it("lists the ways in; a passkey planted from another browser is removed by the notice's link, which signs everyone out", async () => {
    const ctx = await browser.newContext();
    const page = await open(ctx);
    const name = `way_${Date.now().toString(36)}`;
    await register(page, name);
    await signedIn(page, name);
    const ways = () => page.getByTestId("way-in").allTextContents();
    await expect
      .poll(ways)
      .toEqual([
        expect.stringMatching(/^Password, added .+ by this browser$/),
        expect.stringMatching(new RegExp(`^Email ${name}@example\\.com \\(not verified\\), added .+ by this browser$`)),
      ]);

    // Someone who knows the password adds a passkey from another browser.
    const elsewhere = await browser.newContext();
    const attacker = await open(elsewhere);
    await virtualAuthenticator(elsewhere, attacker);
    await login(attacker, name);
    await signedIn(attacker, name);
    await addPasskey(attacker, "Planted");
    await expect.poll(() => attacker.getByTestId("notice").textContent()).toBe("Passkey added");
    await page.getByTestId("reload").click();
    await expect.poll(ways).toContainEqual(expect.stringMatching(/^Passkey "Planted", added .+ by another session$/));
    await page.screenshot({ path: `${SHOTS}/ways-in.png`, fullPage: true });

    // The notice went to the owner's address, with the link that undoes it.
    await expect.poll(lastMail, { timeout: 10_000 }).toMatch(/A passkey was added[\s\S]*revoke-way-in=/);
    const link = /(http:\S+#revoke-way-in=[A-Za-z0-9_-]+)/.exec(lastMail())![1]!;
    await page.goto(link);
    await expect.poll(() => page.getByTestId("notice").textContent()).toMatch(/^Removed, and every session is signed out/);
    await signedOut(page);
    await attacker.getByTestId("reload").click();
    await signedOut(attacker);
    await elsewhere.close();
    await ctx.close();
  });
});

describe("a link that proves an address, in Chromium", () => {
  const newest = () => /(http:\S+#verify-email=[A-Za-z0-9_-]+)/.exec(lastMail())?.[1];
  /** The verification link wrangler printed after `before` (the newest one when the step began). */
  const verifyLink = async (before: string | undefined) => {
    await expect.poll(newest, { timeout: 10_000 }).toMatch(/verify-email=/);
    await expect.poll(newest, { timeout: 10_000 }).not.toBe(before);
    return newest()!;
  };

  it("opened where the account is signed in it needs nothing; opened in another browser it asks for the account's password", async () => {
    const ctx = await browser.newContext();
    const page = await open(ctx);
    const name = `prove_${Date.now().toString(36)}`;
    const before = newest();
    await register(page, name);
    await signedIn(page, name);
    const first = await verifyLink(before);
    await page.goto(first);
    await expect.poll(() => page.getByTestId("notice").textContent()).toBe("Your email address is verified");
    expect(await page.getByTestId("prove").isVisible()).toBe(false);
    await expect.poll(() => page.getByTestId("profile-email").textContent()).toBe(`${name}@example.com (verified)`);
    await ctx.close();

    // Registered on one browser, the link opened on another (a phone, say): the link alone proves only the mailbox.
    const laptop = await browser.newContext();
    const other = `prove2_${Date.now().toString(36)}`;
    await register(await open(laptop), other);
    const link = await verifyLink(first);
    await laptop.close();
    const elsewhere = await browser.newContext();
    const phone = await open(elsewhere, link);
    const prove = phone.getByTestId("prove");
    await expect.poll(() => prove.isVisible()).toBe(true);
    await prove.getByLabel("Password").fill("not the password 9");
    await prove.getByRole("button", { name: "Confirm" }).click();
    await expect.poll(() => phone.getByTestId("error").textContent()).toMatch(/password is wrong/);
    await prove.getByLabel("Password").fill(PASSWORD);
    await prove.getByRole("button", { name: "Confirm" }).click();
    await expect.poll(() => phone.getByTestId("notice").textContent()).toBe("Your email address is verified");
    await elsewhere.close();
  });
});

/**
 * Social sign-in against a real identity provider (oidc-provider on loopback, started by
 * global-setup.ts): the demo's button, the provider's own login and consent pages, back in the app
 * signed in (cookie mode), and still signed in after a reload. No sign-in request from the IP budget.
 */
describe("social sign-in, in Chromium", () => {
  it("signs in with the local IdP through the demo's button, stays signed in across a reload, and asks such an account for no password", async () => {
    const ctx = await browser.newContext();
    const page = await open(ctx);
    await signedOut(page);
    const name = `social_${Date.now().toString(36)}`;
    await page.getByTestId("sign-in-with-local").click();
    // The provider's pages: its login form, then its consent form, until the app is back.
    for (let step = 0; step < 6 && !page.url().startsWith(APP); step++) {
      await page.waitForLoadState();
      if (page.url().startsWith(APP)) break;
      if (await page.locator("input[name=login]").count()) {
        await page.fill("input[name=login]", name);
        await page.fill("input[name=password]", "anything");
      }
      await Promise.all([page.waitForNavigation(), page.locator("button[type=submit]").first().click()]);
    }
    await signedIn(page, name);
    errorsOf(page).length = 0; // the provider's own pages ask for web fonts this machine cannot reach
    expect(page.url()).toBe(`${APP}/`); // the one-time result left the address bar
    // Described by how each came: the identity made the account, the address came with it; no password.
    await expect
      .poll(() => page.getByTestId("way-in").allTextContents())
      .toEqual([
        expect.stringMatching(/^Email .+@example\.test \(verified\), added .+ at sign-up$/),
        expect.stringMatching(/^Sign-in with Local IdP \(.+@example\.test\), added .+, which created this account Unlink$/),
      ]);
    await page.screenshot({ path: `${SHOTS}/social-sign-in.png`, fullPage: true });
    await page.reload();
    await signedIn(page, name);
    expect(errorsOf(page)).toEqual([]);

    // No form asks for a password the account does not have: no password field anywhere, and the
    // password card says how to get one instead.
    const passwordFields = () => page.locator("input[type=password]:visible").count();
    await expect.poll(() => page.getByTestId("set-password").isVisible()).toBe(true);
    expect(await passwordFields()).toBe(0);
    expect(await page.getByTestId("password").isVisible()).toBe(false);
    expect(await page.getByTestId("security-intro").textContent()).toMatch(
      /^This account has no password: a change here takes a sign-in in the last few minutes/,
    );

    // The authenticator app, set up and turned on with no password (the sign-in is recent).
    await page.getByTestId("totp-setup").getByRole("button", { name: "Set up authenticator app" }).click();
    await expect.poll(() => page.getByTestId("totp-secret").textContent()).toMatch(/^[A-Z2-7]{32}$/);
    const secret = (await page.getByTestId("totp-secret").textContent())!;
    const enable = page.getByTestId("totp-enable");
    await enable.getByLabel("Code from the app").fill(totp(secret, stepNow()));
    await enable.getByRole("button", { name: "Turn on" }).click();
    await expect.poll(() => page.getByTestId("recovery-code").count()).toBe(10);
    const codes = await page.getByTestId("recovery-code").allTextContents();
    await expect.poll(() => page.getByTestId("factor-totp").textContent()).toBe("on");
    expect(await page.getByTestId("error").isHidden()).toBe(true);
    // Now every change takes a code too, still no password.
    await expect.poll(() => page.getByTestId("security-intro").textContent()).toMatch(/and a code from the authenticator app\.$/);
    expect(await page.getByTestId("passkey-add").getByLabel("Code from the app, or a recovery code").isVisible()).toBe(true);
    expect(await passwordFields()).toBe(0);
    await page.screenshot({ path: `${SHOTS}/social-totp.png`, fullPage: true });

    // And off again with a recovery code alone (plus the recent sign-in).
    const off = page.getByTestId("totp-disable");
    await off.getByLabel("Code from the app, or a recovery code").fill(codes[0]!);
    await off.getByRole("button", { name: "Turn off" }).click();
    await expect.poll(() => page.getByTestId("notice").textContent()).toMatch(/Two-step sign-in is off/);
    await expect.poll(() => page.getByTestId("factor-totp").textContent()).toBe("off");

    // A password, if the person wants one too: a link to the provider's vouched address.
    await page.getByTestId("set-password-mail").click();
    await expect.poll(() => page.getByTestId("notice").textContent()).toMatch(/^A link to set a password is on its way to .+@example\.test/);
    await expect.poll(lastMail, { timeout: 10_000 }).toMatch(/reset-password=/);
    expect(errorsOf(page)).toEqual([]);
    await ctx.close();
  });
});

/**
 * The admin page: an account given the admin role (by `npm run admin:grant`, as the README says) sees
 * the newest users and security events through the admin API after its next refresh (a reload).
 * With UPDATE_SCREENSHOT=1 this is also the README's picture, docs/demo.png.
 */
describe("the admin page, in Chromium", () => {
  it("shows users and security events to an admin, from the admin API", async () => {
    // Someone without the role: no admin page.
    const elsewhere = await browser.newContext();
    const other = await open(elsewhere);
    const member = `member_${Date.now().toString(36)}`;
    await register(other, member);
    await signedIn(other, member);
    expect(await other.getByTestId("admin").isVisible()).toBe(false);
    await elsewhere.close();

    const ctx = await browser.newContext();
    const page = await open(ctx);
    const name = `admin_${Date.now().toString(36)}`;
    await register(page, name);
    await signedIn(page, name);
    expect(await page.getByTestId("admin").isVisible()).toBe(false);
    const grant = spawnSync(process.execPath, ["scripts/admin-grant.mjs", name], { encoding: "utf8", env: { ...process.env, EDGE_AUTH_PERSIST_TO: STATE } });
    expect(grant.status, grant.stderr).toBe(0);
    await page.reload(); // a refresh: the new access token carries the role
    await signedIn(page, name);
    await expect.poll(() => page.getByTestId("admin").isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await page.getByTestId("profile-roles").textContent()).toBe("user, admin");
    await expect.poll(() => page.getByTestId("admin-user").count()).toBeGreaterThan(1);
    const users = await page.getByTestId("admin-user").allTextContents();
    expect(users[0]).toMatch(new RegExp(`^${name} \\(admin\\), since `)); // newest first
    expect(users[1]).toMatch(new RegExp(`^${member}, since `));
    await expect.poll(() => page.getByTestId("admin-event").allTextContents()).toContainEqual(expect.stringMatching(new RegExp(`register \\(${name}\\)$`)));
    expect(errorsOf(page)).toEqual([]);
    await page.screenshot({ path: `${SHOTS}/admin.png`, fullPage: true });
    if (process.env.UPDATE_SCREENSHOT === "1") await page.screenshot({ path: "docs/demo.png", fullPage: true });
    await ctx.close();
  });

  it("a link to the app carrying someone else's sign-in code signs nobody in, and leaves that code unspent", async () => {
    // The attacker's own sign-in, done over HTTP in their own "browser", stopped before the exchange.
    const started = await fetch(`${API}/oauth/local/start?use_cookie=false`, { redirect: "manual" });
    const flow = /oauth_flow=([^;]+)/.exec(started.headers.get("set-cookie") ?? "")![1];
    const back = await signInAtLocalIdp(new URL(started.headers.get("location")!), `mallory_${Date.now().toString(36)}`);
    const landed = await fetch(`${API}/oauth/local/callback?${back}`, { headers: { cookie: `oauth_flow=${flow}` }, redirect: "manual" });
    const code = new URLSearchParams(new URL(landed.headers.get("location")!).hash.slice(1)).get("oauth_code");
    const grant = /oauth_grant=([^;]+)/.exec(landed.headers.get("set-cookie") ?? "")![1];
    expect(code).toBeTruthy();
    // The victim opens the link: the demo says so, and nobody is signed in.
    const ctx = await browser.newContext();
    const page = await open(ctx, `${APP}/#oauth=sign_in&oauth_code=${code}`);
    await expect.poll(() => page.getByTestId("error").textContent()).toMatch(/not started in this tab/);
    await signedOut(page);
    expect(page.url()).toBe(`${APP}/`);
    expect(errorsOf(page)).toEqual([]);
    await ctx.close();
    // The page sent nothing: the code still works for the browser that started the flow.
    const own = await fetch(`${API}/oauth/exchange`, {
      method: "POST",
      headers: { "content-type": "application/json", cookie: `oauth_grant=${grant}` },
      body: JSON.stringify({ code }),
    });
    expect(own.status).toBe(200);
  });
});
