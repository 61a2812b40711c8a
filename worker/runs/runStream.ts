import type { StepRecord } from "../../sdk/driver.ts";
import { FINAL_STATUSES, type RunStatus } from "../platform/types.ts";
import { toPublishView, toRunSummaryView, toStepView, type RunSummaryView } from "../views/runView.ts";
import { encodeSse, SSE_HEADERS, sseComment } from "../views/sse.ts";
import type { RunObserver, RunRecord } from "./RunStore.ts";

/**
 * A comment this often keeps an idle stream (a run asleep for hours) from being cut by a proxy,
 * and finds the subscribers that hung up: under workerd a cancelled response reaches the object
 * only as a failed write (measured), so without it one would be held until the run's next event.
 */
const KEEP_ALIVE_MS = 25_000;
/** Live events kept for subscribers that reconnect (Last-Event-ID) to the same object, in characters. */
const BACKLOG_CHARS = 1024 * 1024;
/** A subscriber this many events behind reads too slowly to keep up: it is dropped, and reconnects. */
const MAX_QUEUED_EVENTS = 10_000;

const utf8 = new TextEncoder();

/** One encoded event and its id. */
interface StreamEvent {
  id: number;
  text: string;
}

/**
 * A run's live stream (DESIGN "Live runs"): the subscribers of one RunObject, in memory, and the
 * server-sent events they receive. A new subscriber gets the history derived from the stored
 * run (`run`, then one `step` or `publish` per stored step), then every change the RunStore
 * writes, as it writes it; the run's end sends `end` and closes every stream. The object's
 * output gate holds each event until the write it reports is durable.
 *
 * Event ids come from one sequence per object, started at the clock's microseconds when the
 * object starts, so they only grow, across restarts too. A subscriber that reconnects with a
 * Last-Event-ID this object handed out, still in its backlog, gets only the events after it;
 * any other (a restart came between: subscribers do not survive one) gets the history again.
 * Each event carries a whole view (a step as it now is), so applying one twice changes nothing.
 *
 * @example
 * const stream = new RunStream();
 * const store = new RunStore(ctx.storage.sql, stream);
 * return stream.subscribe(store.run()!, store.steps().values(), request.headers.get("last-event-id"));
 */
export class RunStream implements RunObserver {
  private readonly subscribers = new Set<WritableStreamDefaultWriter<Uint8Array>>();
  private readonly firstId = Date.now() * 1000;
  private lastId = this.firstId;
  /** Live events since someone first subscribed to this object (only then is there anyone to resume). */
  private backlog: StreamEvent[] | undefined;
  private backlogChars = 0;
  /** The highest id dropped from the backlog: a resume from before it misses events. */
  private evictedThrough = this.firstId;
  private keepAlive: ReturnType<typeof setInterval> | undefined;
  /** Events written to each stream and not yet taken by its reader. */
  private readonly queued = new WeakMap<WritableStreamDefaultWriter<Uint8Array>, number>();

  /** An event stream for one subscriber: the history (or, resuming, what it missed), then live events until the run ends. */
  subscribe(run: RunRecord, steps: Iterable<StepRecord>, lastEventId: string | null): Response {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const writer = writable.getWriter();
    const isFinal = FINAL_STATUSES.has(run.status);
    const resumeAfter = isFinal ? undefined : this.resumePoint(lastEventId);
    const events = resumeAfter === undefined ? this.history(run, steps) : this.backlog!.filter((event) => event.id > resumeAfter);
    for (const event of events) this.write(writer, event.text);
    if (isFinal) {
      writer.close().catch(() => undefined);
    } else {
      this.backlog ??= [];
      this.subscribers.add(writer);
      // Where the runtime does report the hang-up (the readable side cancelled), drop it at once.
      writer.closed.catch(() => this.drop(writer));
      this.keepAlive ??= setInterval(() => this.broadcast(sseComment("keep-alive")), KEEP_ALIVE_MS);
    }
    return new Response(readable, { headers: SSE_HEADERS });
  }

  stepSaved(step: StepRecord): void {
    if (this.backlog) this.send(this.stepEvent(step));
  }

  /** A sleep that has woken is not written down: an invocation's start is when the stream says so. */
  invocationBegan(run: RunRecord, previous: RunStatus, steps: Iterable<StepRecord>): void {
    if (!this.backlog) return;
    if (run.status !== previous) this.send(this.event("run", toRunSummaryView(run)));
    const now = run.starts.at(-1)?.at;
    const before = run.starts.at(-2)?.at ?? -Infinity;
    if (now === undefined) return;
    for (const step of steps) {
      if (step.status === "sleeping" && step.wakeAt !== undefined && step.wakeAt > before && step.wakeAt <= now) this.send(this.stepEvent(step, now));
    }
  }

  /** Sends `end` (the run's final summary) and closes every stream. */
  runEnded(run: RunRecord): void {
    if (!this.backlog) return;
    this.send(this.event("end", toRunSummaryView(run)));
    for (const writer of this.subscribers) writer.close().catch(() => undefined);
    this.subscribers.clear();
    this.stopKeepAlive();
    this.backlog = [];
    this.backlogChars = 0;
  }

  /** How many streams are open: a test's and a log's view, not a control. */
  get subscriberCount(): number {
    return this.subscribers.size;
  }

  private history(run: RunRecord, steps: Iterable<StepRecord>): StreamEvent[] {
    const events = [this.event("run", toRunSummaryView(run))];
    for (const step of steps) events.push(this.stepEvent(step));
    if (FINAL_STATUSES.has(run.status)) events.push(this.event("end", toRunSummaryView(run)));
    return events;
  }

  private stepEvent(step: StepRecord, now = Date.now()): StreamEvent {
    return step.kind === "publish" ? this.event("publish", toPublishView(step)) : this.event("step", toStepView(step, now));
  }

  private event(name: "run" | "step" | "publish" | "end", data: unknown): StreamEvent {
    const id = ++this.lastId;
    return { id, text: encodeSse({ id, event: name, data: JSON.stringify(data) }) };
  }

  /** The id after which a reconnecting subscriber can go on from the backlog, if it can. */
  private resumePoint(lastEventId: string | null): number | undefined {
    if (!this.backlog || lastEventId === null || !/^\d{1,16}$/.test(lastEventId)) return undefined;
    const id = Number(lastEventId);
    return id > this.firstId && id <= this.lastId && id >= this.evictedThrough ? id : undefined;
  }

  private send(event: StreamEvent): void {
    this.backlog!.push(event);
    this.backlogChars += event.text.length;
    while (this.backlogChars > BACKLOG_CHARS && this.backlog!.length > 0) {
      const dropped = this.backlog!.shift()!;
      this.backlogChars -= dropped.text.length;
      this.evictedThrough = dropped.id;
    }
    this.broadcast(event.text);
  }

  private broadcast(text: string): void {
    for (const writer of this.subscribers) this.write(writer, text);
  }

  private write(writer: WritableStreamDefaultWriter<Uint8Array>, text: string): void {
    // Counted here rather than read from desiredSize, whose unit (chunks or bytes) is the runtime's choice.
    const queued = (this.queued.get(writer) ?? 0) + 1;
    if (queued > MAX_QUEUED_EVENTS) return this.drop(writer);
    this.queued.set(writer, queued);
    writer.write(utf8.encode(text)).then(
      () => this.queued.set(writer, (this.queued.get(writer) ?? 1) - 1),
      () => this.drop(writer),
    );
  }

  private drop(writer: WritableStreamDefaultWriter<Uint8Array>): void {
    if (!this.subscribers.delete(writer)) return;
    writer.abort().catch(() => undefined);
    if (this.subscribers.size === 0) this.stopKeepAlive();
  }

  private stopKeepAlive(): void {
    clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  }
}

/** The whole stream of a run that has no object (flow control skipped it): `run`, then `end`. */
export function skippedRunStream(run: RunSummaryView): string {
  const data = JSON.stringify(run);
  return encodeSse({ id: 1, event: "run", data }) + encodeSse({ id: 2, event: "end", data });
}
