import { fromBase64Url, toBase64Url } from "../encoding";
import { ApiError } from "../errors";

// Cursors are opaque to clients: base64url of the last row's sort key.
const encodeCursor = (key: unknown[]) => toBase64Url(new TextEncoder().encode(JSON.stringify(key)));

/** Decodes a cursor with `check`, which returns the typed key or undefined; 400 validation_failed otherwise. */
export function decodeCursor<T>(text: string, check: (key: unknown[]) => T | undefined): T {
  try {
    const key = JSON.parse(new TextDecoder().decode(fromBase64Url(text) ?? new Uint8Array()));
    const parsed = Array.isArray(key) ? check(key) : undefined;
    if (parsed !== undefined) return parsed;
  } catch {
    // fall through
  }
  throw new ApiError("validation_failed", undefined, { cursor: "is not a valid cursor" });
}

// The range a JavaScript Date can hold (ECMA-262: 8.64e15 ms either side of 1970).
const isTime = (v: unknown): v is number => Number.isSafeInteger(v) && Math.abs(v as number) <= 8.64e15;

/** A (created_at, id) cursor, as the user and session lists use. */
export const timeIdCursor = (text: string) =>
  decodeCursor(text, ([createdAt, id]) => (isTime(createdAt) && typeof id === "string" && id.length <= 64 ? { createdAt, id } : undefined));

/** Reads one row more than asked, to know whether a next page exists. */
export function page<T>(rows: T[], limit: number, keyOf: (last: T) => unknown[]) {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, next_cursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null };
}
