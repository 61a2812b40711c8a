// The bounds on what Stepflare takes from apps and from the web: how much of a body it reads and
// how long it waits. A Durable Object has 128 MB of memory, and an invocation that waits for ever
// holds its run for ever; past a bound, the error names it.

const MiB = 1024 * 1024;

/** The most of an app's answer (to a call or a sync) or of a checkpoint that is read. */
export const MAX_ANSWER_BYTES = 16 * MiB;
/** How long one call to an app (or a `step.fetch` the executor makes for it) may take, its answer read whole. */
export const CALL_TIMEOUT_MS = 10 * 60 * 1000;
/** How long an app may take to answer a sync (`POST /v1/apps`), its own registration included. */
export const SYNC_TIMEOUT_MS = 20 * 1000;

/** A body read within its bound, or how far it got past it. */
export type BoundedText = { ok: true; text: string } | { ok: false; over: number };

/**
 * Reads a body as UTF-8 text, but no more than `limit` bytes of it: past that it stops reading,
 * cancels the rest, and answers how many bytes it had (its `content-length`, when that says so
 * first). Rejects with `signal`'s reason when it is aborted mid-way.
 *
 * @example
 * const body = await readBounded(response.body, MAX_ANSWER_BYTES, signal);
 * if (!body.ok) throw new Error(`the answer is over ${formatBytes(MAX_ANSWER_BYTES)}`);
 */
export async function readBounded(body: ReadableStream<Uint8Array> | null, limit: number, signal?: AbortSignal, contentLength?: string | null): Promise<BoundedText> {
  if (!body) return { ok: true, text: "" };
  const declared = Number(contentLength ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    await body.cancel().catch(() => undefined);
    return { ok: false, over: declared };
  }
  const reader = body.getReader();
  const aborted = signal ? abortion(signal) : undefined;
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  try {
    for (;;) {
      const next = aborted ? await Promise.race([reader.read(), aborted.promise]) : await reader.read();
      if (next.done) break;
      bytes += next.value.byteLength;
      if (bytes > limit) {
        await reader.cancel().catch(() => undefined);
        return { ok: false, over: bytes };
      }
      chunks.push(next.value);
    }
  } catch (err) {
    await reader.cancel().catch(() => undefined);
    throw err;
  } finally {
    aborted?.dispose();
  }
  const whole = new Uint8Array(bytes);
  let at = 0;
  for (const chunk of chunks) {
    whole.set(chunk, at);
    at += chunk.byteLength;
  }
  return { ok: true, text: new TextDecoder().decode(whole) };
}

/** A promise that rejects with the signal's reason once it aborts (it never resolves), and its listener's removal. */
function abortion(signal: AbortSignal): { promise: Promise<never>; dispose(): void } {
  let dispose = () => {};
  const promise = new Promise<never>((_, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    dispose = () => signal.removeEventListener("abort", onAbort);
  });
  promise.catch(() => undefined);
  return { promise, dispose: () => dispose() };
}

/** "16 MiB", "10 minutes", "20 seconds": a bound as its error names it. */
export function formatBytes(bytes: number): string {
  return bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${(bytes / MiB).toFixed(1)} MiB`;
}

export function formatDuration(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000} minute${ms === 60_000 ? "" : "s"}`;
  return `${ms / 1000} seconds`;
}

/** Why a request was cut off: the bound it reached, named. */
export class TimeBoundError extends Error {
  override name = "TimeBoundError";
}

/**
 * An AbortSignal that aborts after `ms` on `clock` (the run's clock, so tests move time) with an
 * error that says `what` took too long and which bound that is; `clear()` when the work is done.
 *
 * @example
 * const deadline = deadlineOn(clock, CALL_TIMEOUT_MS, "the app did not answer", "one call");
 */
export function deadlineOn(
  clock: { setTimer(callback: () => void, ms: number): unknown; clearTimer(handle: unknown): void },
  ms: number,
  what: string,
  bound: string,
): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  const timer = clock.setTimer(() => controller.abort(new TimeBoundError(`${what} within ${formatDuration(ms)} (the limit of ${bound})`)), ms);
  return { signal: controller.signal, clear: () => clock.clearTimer(timer) };
}
