// Server-sent events (the WHATWG HTML "event stream" format), as a run's stream sends them.

/** One server-sent event: `data` is text (JSON here); `id` is what a reconnecting EventSource sends back as Last-Event-ID. */
export interface SseMessage {
  id?: string | number;
  event?: string;
  data: string;
  /** How long (ms) an EventSource waits before it reconnects. */
  retry?: number;
}

/**
 * Encodes one event: a line per field, the data split over as many `data:` lines as it has lines
 * (a client joins them with "\n"), and the blank line that ends it. An event name or id with a
 * line break, which would end the field early, is refused.
 *
 * @example
 * encodeSse({ id: 7, event: "step", data: '{"name":"a"}' }); // 'id: 7\nevent: step\ndata: {"name":"a"}\n\n'
 */
export function encodeSse(message: SseMessage): string {
  let text = "";
  if (message.id !== undefined) text += `id: ${singleLine("id", String(message.id))}\n`;
  if (message.event !== undefined) text += `event: ${singleLine("event", message.event)}\n`;
  if (message.retry !== undefined) text += `retry: ${Math.max(0, Math.floor(message.retry))}\n`;
  for (const line of message.data.split(/\r\n|\r|\n/)) text += `data: ${line}\n`;
  return `${text}\n`;
}

/** A comment line: clients ignore it, proxies see bytes (a keep-alive). */
export function sseComment(text: string): string {
  return `: ${text.replace(/\r\n|\r|\n/g, " ")}\n\n`;
}

/** The headers of an event stream: never cached, never buffered by a proxy. */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};

function singleLine(field: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new Error(`an SSE ${field} must be one line, got ${JSON.stringify(value)}`);
  return value;
}
