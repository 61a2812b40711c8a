// Reading a server-sent event stream in tests: the body's bytes, split on blank lines.
import { eventually } from "./helpers.ts";

export interface StreamedEvent {
  id: string | undefined;
  event: string;
  data: unknown;
}

/** Reads a response's event stream as it comes; `ended` settles when the server closes it. */
export class SseReader {
  readonly events: StreamedEvent[] = [];
  readonly ended: Promise<StreamedEvent[]>;
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private closed = false;

  constructor(response: Response) {
    this.reader = response.body!.getReader();
    this.ended = this.read();
  }

  /** Waits until the events so far satisfy `check`. */
  async until(check: (events: StreamedEvent[]) => boolean, what: string): Promise<StreamedEvent[]> {
    return eventually(async () => (check(this.events) ? this.events : undefined), 15_000, what);
  }

  /** Hangs up, as a browser tab that closes. */
  async cancel(): Promise<void> {
    this.closed = true;
    await this.reader.cancel();
  }

  private async read(): Promise<StreamedEvent[]> {
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await this.reader.read();
      } catch (err) {
        if (this.closed) return this.events;
        throw err;
      }
      if (chunk.done) return this.events;
      buffer += decoder.decode(chunk.value, { stream: true });
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const parsed = parseBlock(block);
        if (parsed) this.events.push(parsed);
      }
    }
  }
}

function parseBlock(block: string): StreamedEvent | undefined {
  let id: string | undefined;
  let event = "message";
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") id = value;
    else if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (data.length === 0) return undefined;
  return { id, event, data: JSON.parse(data.join("\n")) };
}

/** What an event says, without its id: events two subscribers compare. */
export function shape(event: StreamedEvent): string {
  const data = event.data as { name?: string; status?: string; topic?: string; data?: unknown };
  if (event.event === "step") return `step ${data.name} ${data.status}`;
  if (event.event === "publish") return `publish ${data.topic} ${JSON.stringify(data.data)}`;
  return `${event.event} ${data.status}`;
}
