import type { JsonObject, Logger } from "../../sdk/types.ts";

/**
 * A logger that writes one JSON line per call, carrying `tags` (a run's id and function id).
 * Every engine log line goes through one, with snake_case keys: `run_id`, `event_id`, `function_id`.
 * With `printStacks` (dev mode), a line's `stack` field is also printed as plain text after it, with
 * console.log: `wrangler dev` rewrites a stack printed that way (log or error, not warn) to point at
 * the sources, never one inside JSON.
 *
 * @example
 * createLogger({ run_id, function_id }).info("charged", { amount: 10 });
 */
export function createLogger(tags: JsonObject = {}, { printStacks = false } = {}): Logger {
  const write = (level: string, message: string, fields?: JsonObject) => {
    const line = JSON.stringify({ level, message, ...tags, ...fields, time: new Date().toISOString() });
    const print = level === "error" ? console.error : level === "warn" ? console.warn : console.log;
    print(line);
    if (printStacks && typeof fields?.stack === "string") console.log(fields.stack);
  };
  return {
    debug: (message, fields) => write("debug", message, fields),
    info: (message, fields) => write("info", message, fields),
    warn: (message, fields) => write("warn", message, fields),
    error: (message, fields) => write("error", message, fields),
  };
}
