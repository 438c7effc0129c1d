import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { CfWorkerJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/cfworker";
import { authenticate, type Caller, challenge, type Env, metadataUrl, protectedResourceMetadata, Refusal } from "./auth";

/**
 * An MCP server on Workers that edge-auth-api protects (README.md here). One tool, `whoami`, answers
 * who the token is for. The MCP endpoint is RESOURCE's path; its protected resource metadata (RFC 9728)
 * is served at the path-suffixed well-known URL and at the bare one, for clients that try either.
 */

// Browser-based MCP clients (the MCP Inspector) read the challenge and call with a bearer token: no
// cookie is ever involved, so any origin may.
const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, DELETE, OPTIONS",
  "access-control-allow-headers": "authorization, content-type, accept, mcp-protocol-version, mcp-session-id, last-event-id",
  "access-control-expose-headers": "www-authenticate, mcp-session-id, mcp-protocol-version",
};

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  Response.json(body, { status, headers: { ...CORS, "cache-control": "no-store", ...headers } });

function refuse(env: Env, refusal: Refusal): Response {
  const headers: Record<string, string> = refusal.status === 503 ? { "retry-after": "5" } : { "www-authenticate": challenge(env, refusal) };
  return json({ error: refusal.error ?? "invalid_token", error_description: refusal.description }, refusal.status, headers);
}

/** A server per request (stateless Streamable HTTP, JSON answers): nothing is shared between callers. */
async function serveMcp(request: Request, caller: Caller): Promise<Response> {
  const server = new McpServer(
    { name: "edge-auth-example", version: "1.0.0" },
    // @cfworker/json-schema: the default (Ajv) compiles schemas to code, which Workers refuse to run.
    { jsonSchemaValidator: new CfWorkerJsonSchemaValidator() },
  );
  server.registerTool(
    "whoami",
    { title: "Who am I", description: "The user this access token was issued for, the app that holds it, and its scopes." },
    async (extra) => {
      const auth = extra.authInfo;
      const me = { user_id: caller.sub, client_id: auth?.clientId, scopes: auth?.scopes ?? [] };
      return { content: [{ type: "text", text: JSON.stringify(me) }], structuredContent: me };
    },
  );
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  await server.connect(transport);
  const answer = await transport.handleRequest(request, {
    authInfo: { token: caller.token, clientId: caller.clientId, scopes: caller.scopes, expiresAt: caller.expiresAt },
  });
  const headers = new Headers(answer.headers);
  for (const [k, v] of Object.entries(CORS)) headers.set(k, v);
  return new Response(answer.body, { status: answer.status, headers });
}

async function route(request: Request, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const endpoint = new URL(env.RESOURCE).pathname;
  if (request.method === "OPTIONS") return new Response(null, { status: 204, headers: { ...CORS, "access-control-max-age": "600" } });

  const prm = new URL(metadataUrl(env.RESOURCE)).pathname;
  if (url.pathname === prm || url.pathname === "/.well-known/oauth-protected-resource") {
    if (request.method !== "GET") return json({ error: "method_not_allowed" }, 405, { allow: "GET, OPTIONS" });
    return json(protectedResourceMetadata(env), 200, { "cache-control": "public, max-age=300" });
  }
  if (url.pathname !== endpoint) return json({ error: "not_found" }, 404);

  let caller: Caller;
  try {
    caller = await authenticate(request, env);
  } catch (err) {
    if (err instanceof Refusal) return refuse(env, err);
    throw err;
  }
  // Stateless: no server-sent stream to open (GET) and no session to end (DELETE).
  if (request.method !== "POST") return json({ error: "method_not_allowed" }, 405, { allow: "POST, OPTIONS" });
  return serveMcp(request, caller);
}

export default {
  async fetch(request, env) {
    try {
      return await route(request, env);
    } catch (err) {
      // Never a stack trace (nor a token) in an answer or the log: the error's kind is enough to start.
      console.error(JSON.stringify({ event: "mcp_example_failed", error: err instanceof Error ? err.name : "unknown" }));
      return json({ error: "internal_error", error_description: "Something went wrong" }, 500);
    }
  },
} satisfies ExportedHandler<Env>;
