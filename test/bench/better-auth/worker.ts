import { betterAuth } from "better-auth";
import { peerOptions } from "./options";

/**
 * better-auth on Workers and D1, the peer of `npm run bench` (scripts/bench-peer.mjs): its handler
 * under /scrypt/api/auth/* (its default password hash) and /pbkdf2/api/auth/* (our PBKDF2 count),
 * one instance of each per isolate, on its own local D1 (schema.sql). Never deployed.
 */
interface PeerEnv {
  DB: D1Database;
  BETTER_AUTH_SECRET: string;
  BASE_URL: string;
  PASSWORD_ITERATIONS: string;
}

// Its handler only: the instance's type carries its whole options object.
const handlers = new Map<string, (request: Request) => Promise<Response>>();
function auth(env: PeerEnv, hash: "scrypt" | "pbkdf2") {
  let handler = handlers.get(hash);
  if (!handler) {
    handler = betterAuth({
      ...peerOptions(hash, Number(env.PASSWORD_ITERATIONS)),
      // better-auth (1.5 on) takes a D1 binding as its database: its Kysely adapter's own D1 dialect.
      database: env.DB,
      secret: env.BETTER_AUTH_SECRET,
      baseURL: env.BASE_URL,
      basePath: `/${hash}/api/auth`,
    }).handler;
    handlers.set(hash, handler);
  }
  return handler;
}

export default {
  async fetch(request: Request, env: PeerEnv): Promise<Response> {
    const hash = new URL(request.url).pathname.split("/")[1];
    if (hash !== "scrypt" && hash !== "pbkdf2") return new Response("not found", { status: 404 });
    return auth(env, hash)(request);
  },
} satisfies ExportedHandler<PeerEnv>;
