import { NonRetriableError } from "./errors/NonRetriableError.ts";
import { serializeError } from "./types.ts";

/** Step output limit (DESIGN "Limits"). */
export const MAX_STEP_OUTPUT_BYTES = 4 * 1024 * 1024;
/** Total stored step output per run (DESIGN "Limits"). */
export const MAX_RUN_STATE_BYTES = 32 * 1024 * 1024;

/** A value as it is stored (its JSON round-trip) and its size in UTF-8 bytes. */
export interface Serialized {
  value: unknown;
  bytes: number;
}

/**
 * JSON round-trip: what a replay would return, so the first run and replays see the same value
 * (`undefined` becomes `null`, a `Date` a string). Throws what JSON.stringify throws (a cycle).
 *
 * @example
 * serialize({ at: new Date(0) }).value; // { at: "1970-01-01T00:00:00.000Z" }
 */
export function serialize(value: unknown): Serialized {
  const text = JSON.stringify(value === undefined ? null : value) ?? "null";
  return { value: JSON.parse(text), bytes: utf8Bytes(text) };
}

/**
 * A result as it will be stored (a step's, or the handler's), checked against the limits given the
 * run's `storedBytes` so far; a breach, or a value JSON cannot hold, is a NonRetriableError naming
 * `what` it was. `maxBytes` is what the host can store (more than 4 MiB where it keeps large values
 * elsewhere); `advice` ends a breach's message.
 *
 * @example
 * const { value, bytes } = serializeOutput('step "load" output', await fn(), storedBytes);
 */
export function serializeOutput(what: string, output: unknown, storedBytes: number, maxBytes = MAX_STEP_OUTPUT_BYTES, advice = "return a reference instead"): Serialized {
  let serialized: Serialized;
  try {
    serialized = serialize(output);
  } catch (err) {
    throw new NonRetriableError(`${what} is not JSON-serializable: ${serializeError(err).message}`);
  }
  if (serialized.bytes > maxBytes) {
    throw new NonRetriableError(`${what} is ${formatMiB(serialized.bytes)}; the limit is ${formatLimit(maxBytes)}: ${advice}`);
  }
  checkRunState(what, serialized.bytes, storedBytes);
  return serialized;
}

/**
 * Throws a NonRetriableError naming `what` when adding its `bytes` to the run's `storedBytes`
 * would pass the run-state limit.
 *
 * @example
 * checkRunState('step.publish("progress")', bytes, storedBytes);
 */
export function checkRunState(what: string, bytes: number, storedBytes: number): void {
  if (storedBytes + bytes > MAX_RUN_STATE_BYTES) {
    throw new NonRetriableError(`run state would reach ${formatMiB(storedBytes + bytes)} with ${what}; the limit is 32 MiB per run`);
  }
}

export function utf8Bytes(text: string): number {
  return new TextEncoder().encode(text).length;
}

/** "4 MiB", "16 MiB": a limit as its errors name it. */
function formatLimit(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / 1024 / 1024} MiB` : formatMiB(bytes);
}

function formatMiB(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
