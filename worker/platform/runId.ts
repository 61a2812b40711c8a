import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

/**
 * A run's id, derived from what started it, so a redelivered message or a repeated sweep
 * starts nothing twice: SHA-256 of (function id, event id, time the event was accepted), 32 hex chars.
 * Synchronous, like step ids: no runtime hop per run in the consumer.
 *
 * @example
 * runIdFor("hello", "01J...", 1764000000000);
 */
export function runIdFor(functionId: string, eventId: string, receivedAt: number): string {
  return bytesToHex(sha256(new TextEncoder().encode(`${functionId}\n${eventId}\n${receivedAt}`)).slice(0, 16));
}

/** The shape of every run id. */
export const RUN_ID_PATTERN = /^[0-9a-f]{32}$/;
