import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from "jose";
import { type Browser, type BrowserContext, chromium, type Page, type Response } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthError, exchangeApiKey } from "../../client";
import { API, API_LOG, APP, STATE } from "./global-setup";

/**
 * Organizations and API keys through the demo app, in Chromium (docs/organizations.md,
 * docs/api-keys.md): a person creates an organization and invites a second person, who signs up in
 * another browser, proves the invited address and accepts; the second person's access token then
 * carries the organization and role, read by a backend with jose against the API's JWKS, and a role
 * change reaches it at the next refresh. A script's API key, made on the demo's keys page, is
 * exchanged for a token a backend accepts, until the key is revoked.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = "test/e2e/screenshots";
const PASSWORD = "correct horse 42";
const AUDIENCE = "edge-auth-api"; // wrangler.toml's AUDIENCE

let browser: Browser;
beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});
afterAll(() => browser?.close());

/** What a backend does with a token: verify it against the API's published keys, pinning issuer, audience and type. */
const jwks = createRemoteJWKSet(new URL(`${API}/.well-known/jwks.json`));
async function backendReads(token: string): Promise<JWTPayload> {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: API, audience: AUDIENCE, typ: "at+jwt", algorithms: ["ES256"] });
  expect(protectedHeader.typ).toBe("at+jwt");
  return payload;
}

const suffix = Date.now().toString(36);
const notice = (page: Page) => page.getByTestId("notice").textContent();
/** The error on screen, if any (a hidden one keeps its old text). */
const error = async (page: Page) => ((await page.getByTestId("error").isVisible()) ? page.getByTestId("error").textContent() : null);

async function open(ctx: BrowserContext, url = APP) {
  const page = await ctx.newPage();
  await page.goto(url);
  return page;
}

async function signedIn(page: Page, username: string) {
  await expect.poll(() => page.getByTestId("status").textContent(), { timeout: 10_000 }).toBe(`Signed in as ${username}`);
}

/** Signs up in the demo; a 429 (earlier journeys spent this machine's sign-ups) waits its Retry-After and tries again. */
async function register(page: Page, username: string, email = `${username}@example.com`) {
  const form = page.getByTestId("register");
  await form.getByLabel("Username").fill(username);
  await form.getByLabel("Email").fill(email);
  await form.getByLabel("Password").fill(PASSWORD);
  const inOrWait = async () =>
    (await page.getByTestId("status").textContent()) === `Signed in as ${username}` || /Try again in \d+ s/.test((await error(page)) ?? "");
  for (let attempt = 0; ; attempt++) {
    await form.getByRole("button", { name: "Register" }).click();
    await expect.poll(inOrWait, { timeout: 10_000 }).toBe(true);
    if ((await page.getByTestId("status").textContent()) === `Signed in as ${username}`) return;
    if (attempt === 2) throw new Error(`sign-up kept being refused: ${await error(page)}`);
    const wait = Number(/Try again in (\d+) s/.exec((await error(page)) ?? "")?.[1] ?? 0);
    await page.waitForTimeout((wait + 1) * 1000);
  }
}

/** Every link of `action` in the mail wrangler printed (its local simulation writes each body to a file), oldest first. */
function mailedLinks(action: string): string[] {
  const paths = [...readFileSync(API_LOG, "utf8").matchAll(/^Text: (.+)$/gm)].map((m) => m[1]!.trim());
  const pattern = new RegExp(`(http:\\S+#${action}=[A-Za-z0-9_-]+)`);
  return paths.map((p) => pattern.exec(readFileSync(p, "utf8"))?.[1]).filter((l): l is string => !!l);
}
/** The first link of `action` mailed after `before` of them were. */
async function newLink(action: string, before: number): Promise<string> {
  await expect.poll(() => mailedLinks(action).length, { timeout: 15_000 }).toBeGreaterThan(before);
  return mailedLinks(action)[before]!;
}

/** The access token in the API's answer to `path` that `act` causes (the page's own call, as its client made it). */
async function tokenFrom(page: Page, path: string, act: () => Promise<unknown>): Promise<string> {
  const answer = page.waitForResponse((r: Response) => r.url() === `${API}${path}` && r.request().method() === "POST" && r.status() === 200);
  await act();
  return ((await (await answer).json()) as { access_token: string }).access_token;
}

const orgName = "Acme E2E";
const slug = `acme-${suffix}`;
const alice = `alice_${suffix}`;
const bob = `bob_${suffix}`;
let ctxA: BrowserContext;
let pageA: Page;

describe("an organization in the demo, in Chromium", () => {
  // Two sign-ups from this machine's address, each of which may wait out a minute's rate limit (register() above).
  it("A creates an organization and invites B; B signs up in another browser, proves the address, accepts, switches; a backend reads the org from B's token", async () => {
    ctxA = await browser.newContext({ permissions: ["clipboard-read", "clipboard-write"] });
    pageA = await open(ctxA);
    await register(pageA, alice);

    // A: a new organization, which becomes the session's active one.
    const create = pageA.getByTestId("org-create");
    await create.getByLabel("Name").fill(orgName);
    await create.getByLabel("Slug").fill(slug);
    await create.getByRole("button", { name: "Create organization" }).click();
    await expect.poll(() => notice(pageA)).toMatch(/is created, and it is your active organization/);
    await expect.poll(() => pageA.getByTestId("org-current").textContent()).toMatch(new RegExp(`^Acting for ${slug} as owner `));
    await expect.poll(() => pageA.getByTestId("member").allTextContents()).toEqual([expect.stringMatching(new RegExp(`^${alice} <.+>: owner, since `))]);

    // A invites B's address as a member.
    const invitesBefore = mailedLinks("accept-invitation").length;
    const invite = pageA.getByTestId("invite");
    await invite.getByLabel("Email").fill(`${bob}@example.com`);
    await invite.getByLabel("Role").fill("member");
    await invite.getByRole("button", { name: "Invite" }).click();
    await expect.poll(() => notice(pageA)).toBe(`An invitation to join as member is mailed to ${bob}@example.com`);
    await expect
      .poll(() => pageA.getByTestId("invitation").allTextContents())
      .toEqual([expect.stringMatching(new RegExp(`^${bob}@example.com as member, until `))]);
    const invitation = await newLink("accept-invitation", invitesBefore);
    expect(invitation.startsWith(`${APP}/#accept-invitation=`)).toBe(true);

    // B, in another browser, opens the link signed out: the invitation waits while B signs up.
    const ctxB = await browser.newContext();
    const pageB = await open(ctxB, invitation);
    await expect.poll(() => pageB.getByTestId("accept-text").textContent()).toMatch(/^You are invited to join an organization: sign in, or create an account/);
    expect(pageB.url()).not.toContain("accept-invitation"); // out of the address bar and history
    expect(await pageB.getByTestId("accept-invitation").isVisible()).toBe(false);
    const verifyBefore = mailedLinks("verify-email").length;
    await register(pageB, bob);
    await expect.poll(() => pageB.getByTestId("accept-invitation").isVisible()).toBe(true);

    // Not verified yet: refused, and the invitation stays for when the address is proved.
    await pageB.getByTestId("accept-invitation").click();
    await expect.poll(() => error(pageB)).toMatch(/^This invitation is for another address/);
    expect(await pageB.getByTestId("accept").isVisible()).toBe(true);
    await pageB.goto(await newLink("verify-email", verifyBefore));
    await expect.poll(() => notice(pageB)).toBe("Your email address is verified");
    await expect.poll(() => pageB.getByTestId("accept-invitation").isVisible()).toBe(true);
    await pageB.getByTestId("accept-invitation").click();
    await expect.poll(() => notice(pageB)).toBe(`You joined ${orgName} as member: switch to it to act for it`);
    expect(await pageB.getByTestId("accept").isVisible()).toBe(false);

    // Single use: the same link again is refused.
    await pageB.goto(invitation);
    await pageB.getByTestId("accept-invitation").click();
    await expect.poll(() => error(pageB)).toBe("This invitation is unknown, used, revoked or expired.");
    expect(await pageB.getByTestId("accept").isVisible()).toBe(false);

    // B switches: the new access token carries the organization, as a backend reads it.
    const org = pageB.getByTestId("org").filter({ hasText: slug });
    await expect.poll(() => org.textContent()).toBe(`${orgName} (${slug}), member Switch`);
    const token = await tokenFrom(pageB, "/orgs/switch", () => org.getByRole("button", { name: "Switch" }).click());
    const claims = await backendReads(token);
    expect(claims).toMatchObject({ username: bob, org_slug: slug, org_role: "member", org_permissions: ["org:read", "members:read"] });
    expect(claims.org_id).toBe(await org.getAttribute("data-org-id"));
    await expect.poll(() => pageB.getByTestId("org-current").textContent()).toMatch(new RegExp(`^Acting for ${slug} as member `));
    await pageB.screenshot({ path: `${SHOTS}/org-member.png`, fullPage: true });

    // A makes B an admin: B's token says so at its next refresh, not before.
    await pageA.getByTestId("reload").click();
    const memberB = pageA.getByTestId("member").filter({ hasText: bob });
    await expect.poll(() => memberB.textContent()).toMatch(/: member, since /);
    await memberB.getByLabel(`Role of ${bob}`).fill("admin");
    await memberB.getByRole("button", { name: "Change role" }).click();
    await expect.poll(() => notice(pageA)).toBe(`${bob} is now admin: their token says so at its next refresh`);
    await pageA.screenshot({ path: `${SHOTS}/org-members.png`, fullPage: true });

    await pageB.getByTestId("reload").click(); // a redraw with the token B holds: no refresh yet
    await expect.poll(() => pageB.getByTestId("org-current").textContent()).toMatch(/ as member /);
    expect((await backendReads(token)).org_role).toBe("member"); // the bound: the old token lives out its lifetime
    const refreshed = await tokenFrom(pageB, "/refresh", () => pageB.reload());
    const after = await backendReads(refreshed);
    expect(after).toMatchObject({ org_slug: slug, org_role: "admin" });
    expect(after.org_permissions).toContain("members:invite");
    await expect.poll(() => pageB.getByTestId("org-current").textContent()).toMatch(new RegExp(`^Acting for ${slug} as admin `));
    await ctxB.close();
  }, 180_000);

  it("lists the organization, with its members, to an admin of the service", async () => {
    const grant = spawnSync(process.execPath, ["scripts/admin-grant.mjs", alice], { encoding: "utf8", env: { ...process.env, EDGE_AUTH_PERSIST_TO: STATE } });
    expect(grant.status, grant.stderr).toBe(0);
    await pageA.reload(); // the next refresh carries the admin role
    await expect.poll(() => pageA.getByTestId("admin").isVisible(), { timeout: 10_000 }).toBe(true);
    await expect
      .poll(() => pageA.getByTestId("admin-org").allTextContents())
      .toContainEqual(expect.stringMatching(new RegExp(`^${orgName} \\(${slug}\\), 2 members, since `)));
  });
});

describe("an API key from the demo, exchanged by a script", () => {
  it("is shown once, exchanged for a token a backend accepts, and refused once revoked", async () => {
    const keys = pageA.getByTestId("keys");
    const create = pageA.getByTestId("key-create");
    await create.getByLabel("Name").fill("deploy script");
    await create.getByLabel("Scopes (space separated)").fill("members:read");
    await create.getByLabel("Owner").selectOption({ label: `${orgName} (${slug})` });
    await create.getByLabel("Current password").fill(PASSWORD);
    await create.getByRole("button", { name: "Create key" }).click();
    await expect.poll(() => pageA.getByTestId("key-secret").isVisible()).toBe(true);
    const secret = (await pageA.getByTestId("key-secret-value").textContent())!;
    expect(secret).toMatch(/^eak_[A-Za-z0-9]{46}$/);
    const listed = keys.getByTestId("api-key").filter({ hasText: "deploy script" });
    await expect.poll(() => listed.textContent()).toMatch(new RegExp(`^deploy script \\(${secret.slice(0, 12)}…, ${slug}\\): members:read; last used never`));
    const keyId = (await listed.getAttribute("data-key-id"))!;
    // The copy button puts it on the clipboard.
    await pageA.getByTestId("key-copy").click();
    await expect.poll(() => notice(pageA)).toMatch(/^The key is copied/);
    expect(await pageA.evaluate(() => navigator.clipboard.readText())).toBe(secret);
    await pageA.screenshot({ path: `${SHOTS}/api-key.png`, fullPage: true });

    // Once: after a reload the page has no way to show it again.
    await pageA.reload();
    await signedIn(pageA, alice);
    await expect.poll(() => listed.count()).toBe(1);
    expect(await pageA.getByTestId("key-secret").isVisible()).toBe(false);
    expect(await pageA.content()).not.toContain(secret);

    // The script: the key for a short-lived access token (RFC 8693), which a backend verifies like any other.
    const exchanged = await exchangeApiKey(API, secret);
    expect(exchanged).toMatchObject({ token_type: "Bearer", issued_token_type: "urn:ietf:params:oauth:token-type:access_token", scope: "members:read" });
    const claims = await backendReads(exchanged.access_token);
    expect(claims).toMatchObject({ key_id: keyId, client_id: keyId, owner_type: "organization", org_slug: slug, scope: "members:read" });
    expect(claims.sub).toBe(claims.org_id);

    // Revoked in the demo: the next exchange is refused.
    await listed.getByRole("button", { name: "Revoke" }).click();
    await expect.poll(() => notice(pageA)).toBe("The key deploy script is revoked: its next exchange is refused");
    await expect.poll(() => listed.count()).toBe(0);
    const refused = await exchangeApiKey(API, secret).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(AuthError);
    expect(refused).toMatchObject({ code: "invalid_grant", status: 400 });
    await ctxA.close();
  });
});
