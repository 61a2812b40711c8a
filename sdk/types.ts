/** A JSON object, as events carry in `data` and `user`. */
export type JsonObject = { [key: string]: unknown };

/**
 * An error as it is stored and shown: enough to rebuild it, never the live object. Like Inngest's,
 * it keeps the error's `cause` (serialized the same way, or the value itself when it is not an
 * error) and its own enumerable JSON fields, such as `code`.
 */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  cause?: unknown;
  [field: string]: unknown;
}

/** The structured logger a handler receives: one JSON line per call, tagged with the run. */
export interface Logger {
  debug(message: string, fields?: JsonObject): void;
  info(message: string, fields?: JsonObject): void;
  warn(message: string, fields?: JsonObject): void;
  error(message: string, fields?: JsonObject): void;
}

export { serializeError } from "./errors/serialize.ts";
