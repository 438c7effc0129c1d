/**
 * One JSON object per line, so Workers Logs can index the fields.
 * Callers pass ids, names and counts only: never a password, hash, token or pepper.
 */
export function log(event: string, fields: Record<string, unknown> = {}, level: "debug" | "info" | "warn" | "error" = "info"): void {
  const line = JSON.stringify({ level, event, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else if (level === "debug") console.debug(line);
  else console.log(line);
}
