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

/** Turns anything thrown into a SerializedError (non-Errors included). */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    return { name: err.name || "Error", message: err.message, ...(err.stack ? { stack: err.stack } : {}) };
  }
  let message: string;
  try {
    message = typeof err === "string" ? err : JSON.stringify(err) ?? String(err);
  } catch {
    message = String(err);
  }
  return { name: "Error", message };
}
