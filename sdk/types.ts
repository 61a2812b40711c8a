/** A JSON object, as events carry in `data` and `user`. */
export type JsonObject = { [key: string]: unknown };

/** An error as it is stored and shown: enough to rebuild a message, never the live object. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
}

/** The structured logger a handler receives: one JSON line per call, tagged with the run. */
export interface Logger {
  debug(message: string, fields?: JsonObject): void;
  info(message: string, fields?: JsonObject): void;
  warn(message: string, fields?: JsonObject): void;
  error(message: string, fields?: JsonObject): void;
}

/** Longest message or stack kept of an error: errors are stored and sent in events, whose rows are bounded. */
const MAX_ERROR_TEXT = 16 * 1024;

/** Turns anything thrown into a SerializedError (non-Errors included), its texts cut to 16 KiB. */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    return { name: cut(err.name || "Error"), message: cut(err.message), ...(err.stack ? { stack: cut(err.stack) } : {}) };
  }
  let message: string;
  try {
    message = typeof err === "string" ? err : JSON.stringify(err) ?? String(err);
  } catch {
    message = String(err);
  }
  return { name: "Error", message: cut(message) };
}

function cut(text: string): string {
  return text.length <= MAX_ERROR_TEXT ? text : `${text.slice(0, MAX_ERROR_TEXT)}… (${text.length - MAX_ERROR_TEXT} more characters)`;
}
