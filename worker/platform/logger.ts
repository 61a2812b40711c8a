import type { JsonObject, Logger } from "../../sdk/types.ts";

/**
 * A logger that writes one JSON line per call, carrying `tags` (a run's id and function id).
 * Every engine log line goes through one, with snake_case keys: `run_id`, `event_id`, `function_id`.
 *
 * @example
 * createLogger({ run_id, function_id }).info("charged", { amount: 10 });
 */
export function createLogger(tags: JsonObject = {}): Logger {
  const write = (level: string, message: string, fields?: JsonObject) => {
    const line = JSON.stringify({ level, message, ...tags, ...fields, time: new Date().toISOString() });
    if (level === "error") console.error(line);
    else if (level === "warn") console.warn(line);
    else console.log(line);
  };
  return {
    debug: (message, fields) => write("debug", message, fields),
    info: (message, fields) => write("info", message, fields),
    warn: (message, fields) => write("warn", message, fields),
    error: (message, fields) => write("error", message, fields),
  };
}
