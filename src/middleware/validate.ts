import { zValidator } from "@hono/zod-validator";
import type { ValidationTargets } from "hono";
import type { z } from "zod";
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
 * zValidator that turns a zod failure into 400 validation_failed with `fields`,
 * never the raw zod error. Malformed JSON surfaces as Hono's 400 -> invalid_request.
 */
export function validate<T extends z.ZodType, Target extends keyof ValidationTargets>(target: Target, schema: T) {
  return zValidator(target, schema, (result) => {
    if (!result.success) throw new ApiError("validation_failed", undefined, fieldErrors(result.error));
  });
}
