import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { decodeTime } from "ulidx";
import { seededUlid } from "./eventIds.ts";

/**
 * A run's id, derived from what started it, so a redelivered message or a repeated sweep starts
 * nothing twice: a ULID whose time is `at` (for an event's run, its receipt, which is also when the
 * runs index says it started) and whose 80 random bits are SHA-256 of (function id, event id, `at`).
 * The runs index is keyed by (function, start, id), so such an id finds its row with no index of
 * its own (db/runs.ts). A run at a time before `ulidsSince` (db/runIdScheme.ts: an hour after the
 * upgrade that brought ULIDs) keeps the id the code before derived, the first 16 bytes of that hash
 * in hex, so that both derive the same while both may start it. Synchronous, like step ids.
 *
 * @example
 * runIdFor("hello", "01J...", 1764000000000); // "01KB…" (26 characters)
 */
export function runIdFor(functionId: string, eventId: string, at: number, ulidsSince = 0): string {
  const hash = sha256(new TextEncoder().encode(`${functionId}\n${eventId}\n${at}`));
  return at < ulidsSince ? bytesToHex(hash.slice(0, 16)) : seededUlid(at, hash.slice(0, 10));
}

/** Whether `runId` is the id runIdFor derives for (function, event, `at`), in either shape. */
export function isRunIdFor(runId: string, functionId: string, eventId: string, at: number): boolean {
  return runId === runIdFor(functionId, eventId, at) || runId === runIdFor(functionId, eventId, at, Infinity);
}

/** The shape of every run id: a ULID, or 32 hex characters (runs started before run ids were ULIDs). */
export const RUN_ID_PATTERN = /^(?:[0-7][0-9A-HJKMNP-TV-Z]{25}|[0-9a-f]{32})$/;

/** The time a run id made by runIdFor carries (epoch ms); null for a run id of the older shape. */
export function runIdTime(runId: string): number | null {
  return runId.length === 26 && RUN_ID_PATTERN.test(runId) ? decodeTime(runId) : null;
}
