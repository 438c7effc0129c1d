import type { Hook } from "@hono/zod-openapi";
import type { z } from "zod";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";

/** First message per field, keyed by its dotted path ("_" for the body itself). */
function fieldErrors(error: { issues: readonly z.core.$ZodIssue[] }): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const issue of error.issues) {
    const key = issue.path.length ? issue.path.join(".") : "_";
    fields[key] ??= issue.message;
  }
  return fields;
}

/**
 * The validation hook of every route (OpenAPIHono's defaultHook): a zod failure becomes 400
 * validation_failed with `fields`, never the raw zod error. Malformed JSON surfaces as Hono's 400
 * -> invalid_request.
 */
export const validationHook: Hook<unknown, AppEnv, string, unknown> = (result) => {
  if (!result.success) throw new ApiError("validation_failed", undefined, fieldErrors(result.error));
};
