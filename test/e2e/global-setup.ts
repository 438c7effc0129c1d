import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
// @ts-expect-error: a plain ES module shared with the workerd tests, `npm run typecheck` and `npm run demo`
import { buildDist } from "../../scripts/client.mjs";
// @ts-expect-error: a plain ES module shared with the workerd tests and `npm run idp`
import { startLocalIdp } from "../../scripts/identity-providers.mjs";
// @ts-expect-error: a plain ES module shared with `npm run demo`
import { prepareState, start, stop, waitFor } from "../../scripts/servers.mjs";
// @ts-expect-error: a plain ES module shared with the workerd tests and `npm run dev`
import { standInArgs, startStandIns } from "../../scripts/stand-ins.mjs";

/** Ports of their own, so a running `npm run dev` or `npm run demo` is no obstacle. */
export const API = "http://localhost:8790";
export const APP = "http://localhost:5180";
/** The example MCP server (examples/mcp-server), trusting this API; its devtools port is MCP_PORT + 1000. */
export const MCP_PORT = 8780;
export const MCP_URL = `http://localhost:${MCP_PORT}/mcp`;
/** The consent page's words for MCP_SCOPE (OAUTH_SCOPE_DESCRIPTIONS). */
export const MCP_SCOPE_WORDS = "Use the MCP server's tools as you";
export const MCP_SCOPE = "mcp:tools";
/** The API's output, where wrangler prints the mail it would send (with the paths of its bodies). */
export const API_LOG = path.join(tmpdir(), "edge-auth-e2e-api.log");
/** The API's local D1 and KV for this run (the admin journey grants a role in it, as `npm run admin:grant` would). */
export const STATE = path.join(tmpdir(), "edge-auth-e2e-state");

export default async function setup() {
  const state = STATE;
  rmSync(state, { recursive: true, force: true });
  mkdirSync(state);
  // A dev signing key in .dev.vars (kept if there), and a fresh database for this run.
  prepareState(state);
  // The demo app imports "../client": the client package's build, client/dist/ (not committed).
  await buildDist();
  // No reuse grace: two tabs that raced one refresh token would be taken for a thief, so the
  // journeys prove that the client's tabs take turns (Web Locks), not that the server forgives.
  rmSync(API_LOG, { force: true });
  // A real identity provider on loopback for the social sign-in journey.
  const idp = await startLocalIdp({ redirectUris: [`${API}/oauth/local/callback`] });
  const providers = [{ id: "local", kind: "oidc", name: "Local IdP", issuer: idp.oidc, client_id: idp.clientId }];
  // Pwned Passwords and Turnstile's siteverify on loopback: no new password waits on the internet.
  const standIns = await startStandIns();
  start(
    "wrangler",
    [
      "dev",
      "--port",
      "8790",
      "--persist-to",
      state,
      "--var",
      `ISSUER:${API}`,
      "--var",
      `CORS_ORIGINS:${APP}`,
      "--var",
      `APP_URL:${APP}/`,
      "--var",
      "REFRESH_REUSE_GRACE:0",
      "--var",
      "API_DOCS:on", // test/e2e/docs.e2e.ts, whatever a developer's .dev.vars says
      "--var",
      `OAUTH_PROVIDERS:${JSON.stringify(providers)}`,
      "--var",
      `OAUTH_CLIENT_SECRETS:${JSON.stringify({ local: idp.clientSecret })}`,
      // The authorization server's journeys (oauth.e2e.ts): apps register themselves, the MCP server is a resource.
      // The guest journey (guests.e2e.ts): "Try as guest", then the upgrade.
      "--var",
      "GUESTS:on",
      "--var",
      "OAUTH_REGISTRATION:open",
      "--var",
      `OAUTH_SCOPES:${MCP_SCOPE}`,
      "--var",
      `OAUTH_SCOPE_DESCRIPTIONS:${JSON.stringify({ [MCP_SCOPE]: MCP_SCOPE_WORDS })}`,
      "--var",
      `OAUTH_RESOURCES:${MCP_URL}`,
      ...standInArgs(standIns),
    ],
    { log: API_LOG },
  );
  start(
    "wrangler",
    [
      "dev",
      "-c",
      "examples/mcp-server/wrangler.toml",
      "--port",
      String(MCP_PORT),
      "--inspector-port",
      String(MCP_PORT + 1000),
      "--var",
      `ISSUER:${API}`,
      "--var",
      `RESOURCE:${MCP_URL}`,
      "--var",
      `SCOPE:${MCP_SCOPE}`,
    ],
    { quiet: true },
  );
  // On 127.0.0.1: the browser reaches it as localhost (the app) and as 127.0.0.1 (a foreign site).
  start("vite", ["--config", "demo/vite.config.ts", "--port", "5180", "--host", "127.0.0.1"], { quiet: true, extraEnv: { VITE_API_URL: API } });
  await waitFor(`${API}/health`, "the API");
  await waitFor(`${APP}/`, "the demo app");
  await waitFor(`http://localhost:${MCP_PORT}/.well-known/oauth-protected-resource/mcp`, "the example MCP server", 90);
  return async () => {
    stop();
    await idp.close();
    await standIns.close();
    rmSync(state, { recursive: true, force: true });
  };
}
