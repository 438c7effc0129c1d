import { createMiddleware } from "hono/factory";
import { ApiError } from "../errors";

const JSON_TYPE = /^application\/([\w.-]+\+)?json\s*(;|$)/i;

/**
 * A request that carries a body (or names a type) must say it is JSON: Hono's validator would
 * otherwise read a text/plain or form body as empty and answer with a misleading validation error.
 */
export const jsonOnly = createMiddleware(async function jsonOnly(c, next) {
  const length = c.req.header("content-length");
  const hasBody = (length !== undefined && length !== "0") || c.req.header("transfer-encoding") !== undefined;
  const type = c.req.header("content-type");
  if ((hasBody || type !== undefined) && !JSON_TYPE.test(type ?? "")) throw new ApiError("unsupported_media_type");
  await next();
});
