// Scenarios 6 and 7: POST /e/:key under autocannon (bench/lib/ingest.mjs), 10 s in the bench and the
// opt-in 60 s sustained load (`npm run load`).

/** What an ingest scenario reports: accepted events per second and the request latency p99. */
const ingestMetrics = [
  { key: "eventsPerSec", label: "events/s", unit: "events/s", better: "higher" },
  { key: "p99Ms", label: "latency p99", unit: "ms", better: "lower" },
];

export const ingest = {
  id: "ingest",
  name: "6. ingest POST /e/:key for 10 s",
  params: { seconds: 10, connections: 10 },
  warmup: { seconds: 1, connections: 10 },
  metrics: ingestMetrics,
  systems: {
    stepflare: (ctx, params) => ctx.ingest(params),
  },
  targets: [],
};

export const load = {
  // Issue "Reliability": the highest rate this machine sustains for 60 s, on loopback; every
  // accepted event must be in D1 and have started its run. `npm run load`; not part of `npm run bench`.
  id: "load",
  name: "7. sustained load: POST /e/:key for 60 s, 50 connections",
  optIn: true,
  rounds: 1,
  params: { seconds: 60, connections: 50 },
  warmup: { seconds: 1, connections: 10 },
  metrics: ingestMetrics,
  systems: {
    stepflare: (ctx, params) => ctx.ingest(params),
  },
  targets: [],
};
