import type { PageCursor } from "../../db/runs.ts";

/** A page cursor as the API hands it out: opaque base64url text of the last row's sort key. */
export function encodeCursor(cursor: PageCursor | null): string | null {
  if (!cursor) return null;
  return btoa(JSON.stringify([cursor.at, cursor.id])).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** The cursor back, or null when the text is not one of ours. */
export function decodeCursor(text: string): PageCursor | null {
  try {
    const [at, id] = JSON.parse(atob(text.replaceAll("-", "+").replaceAll("_", "/"))) as unknown[];
    return typeof at === "number" && Number.isFinite(at) && typeof id === "string" ? { at, id } : null;
  } catch {
    return null;
  }
}
