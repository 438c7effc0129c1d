import { createMiddleware } from "hono/factory";
import { ApiError } from "../errors";

const JSON_TYPE = /^application\/([\w.-]+\+)?json\s*(;|$)/i;

/**
 * A request that carries a body (or names a type) must say it is JSON: Hono's validator would
 * otherwise read a text/plain or form body as empty and answer with a misleading validation error.
 */
export const jsonOnly = createMiddleware(async function jsonOnly(c, next) {
  // A body may arrive as an empty stream; Content-Length: 0 settles it.
  const hasBody = c.req.raw.body !== null && c.req.header("content-length") !== "0";
  const type = c.req.header("content-type");
  if ((hasBody || type !== undefined) && !JSON_TYPE.test(type ?? "")) throw new ApiError("unsupported_media_type");
  // No body but a JSON type (many HTTP clients send a bodyless POST that way) reads as {}.
  // The validator parses through HonoRequest's text cache, so that is where the empty object goes.
  if (!hasBody && type !== undefined) Object.assign(c.req.bodyCache, { text: Promise.resolve("{}") });
  await next();
});
