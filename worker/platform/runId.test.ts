import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import fc from "fast-check";
import { decodeTime } from "ulidx";
import { describe, expect, it } from "vitest";
import { isRunIdFor, RUN_ID_PATTERN, runIdFor, runIdTime } from "./runId.ts";

/** The run id the code before ULIDs derived: the first 16 bytes of SHA-256 of (function, event, time), in hex. */
const hexRunId = (functionId: string, eventId: string, at: number) => bytesToHex(sha256(new TextEncoder().encode(`${functionId}\n${eventId}\n${at}`)).slice(0, 16));

const inputs = fc.tuple(fc.string(), fc.string(), fc.integer({ min: 0, max: 2 ** 48 - 1 }));

describe("run ids", () => {
  it("are ULIDs of their time from the deployment's cutover on, and before it the ids the code before derived", () => {
    fc.assert(
      fc.property(inputs, fc.integer({ min: 0, max: 2 ** 48 }), ([functionId, eventId, at], since) => {
        const id = runIdFor(functionId, eventId, at, since);
        expect(id).toMatch(RUN_ID_PATTERN);
        if (at < since) {
          expect(id).toBe(hexRunId(functionId, eventId, at));
          expect(runIdTime(id)).toBeNull();
        } else {
          expect(id).toHaveLength(26);
          expect(decodeTime(id)).toBe(at);
          expect(runIdTime(id)).toBe(at);
          // The same inputs, the same id: a repeated start starts nothing twice.
          expect(runIdFor(functionId, eventId, at, since)).toBe(id);
        }
        expect(isRunIdFor(id, functionId, eventId, at)).toBe(true);
        expect(isRunIdFor(id, functionId, `${eventId}x`, at)).toBe(false);
      }),
    );
  });

  it("differ for another function, event or time", () => {
    const id = runIdFor("f", "e", 1_764_000_000_000);
    expect(new Set([id, runIdFor("g", "e", 1_764_000_000_000), runIdFor("f", "d", 1_764_000_000_000), runIdFor("f", "e", 1_764_000_000_001)]).size).toBe(4);
  });
});
