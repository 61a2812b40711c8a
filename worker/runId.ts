/**
 * A run's id, derived from what started it, so a redelivered message or a repeated sweep
 * starts nothing twice: SHA-256 of (function id, event id, time the event was accepted), 32 hex chars.
 *
 * @example
 * await runIdFor("hello", "01J...", 1764000000000);
 */
export async function runIdFor(functionId: string, eventId: string, receivedAt: number): Promise<string> {
  const text = `${functionId}\n${eventId}\n${receivedAt}`;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest).slice(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The shape of every run id. */
export const RUN_ID_PATTERN = /^[0-9a-f]{32}$/;
