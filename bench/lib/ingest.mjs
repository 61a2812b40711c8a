// Scenario 6: events/s accepted by Stepflare's `POST /e/:key`, driven by autocannon, then proof
// that every accepted event started its run (the run tells the counter its event id) and, after
// all timing, that the event log and runs index in D1 hold them (bench/run.mjs, checkIngest).
import autocannon from "autocannon";

/**
 * Posts one small event per request to `POST /e/bench` for `seconds` over `connections`
 * connections; answers { eventsPerSec } and registers the D1 check with ctx.expectIngest.
 */
export async function runIngest(ctx, { seconds: duration, connections }) {
  const tag = ctx.tag();
  const accepted = new Set();
  const refused = new Map(); // status → count
  const headers = { "content-type": "application/json" };
  const body = JSON.stringify({ name: "bench/ingest", data: { counter: ctx.counter.url, tag, i: 0 } });
  const startedAt = ctx.now();
  const result = await autocannon({
    url: `${ctx.sf.url}/e/bench`,
    connections,
    duration,
    requests: [
      {
        method: "POST",
        headers,
        body,
        onResponse(status, responseBody) {
          if (status === 200) for (const id of JSON.parse(responseBody).ids) accepted.add(id);
          else refused.set(status, (refused.get(status) ?? 0) + 1);
        },
      },
    ],
  });
  const endedAt = ctx.now();
  // autocannon reports whole seconds; the bench's own clock is finer.
  const seconds = (endedAt - startedAt) / 1000;

  // Every accepted event must start its run; requests in flight when autocannon stopped may add a few more.
  const deadline = endedAt + 120_000;
  const hits = ctx.counter.seen(tag);
  while ([...accepted].some((id) => !hits.has(id)) && ctx.now() < deadline) await sleep(100);
  const drainMs = ctx.now() - endedAt;
  let stableSize = -1;
  while (stableSize !== hits.size && ctx.now() < deadline) {
    stableSize = hits.size;
    await sleep(1_000);
  }
  const notStarted = [...accepted].filter((id) => !hits.has(id));
  ctx.expectIngest({ tag, accepted: accepted.size, started: hits.size, notStarted, refused: Object.fromEntries(refused), errors: result.errors, timeouts: result.timeouts });
  ctx.note(
    `ingest ${tag}: ${accepted.size} accepted in ${seconds.toFixed(2)} s (${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts); ` +
      `every accepted event's run started ${drainMs.toFixed(0)} ms after the load stopped${notStarted.length ? `, except ${notStarted.length}` : ""}; ` +
      `latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms`,
  );
  return { eventsPerSec: accepted.size / seconds, p99Ms: result.latency.p99 };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
