// What the checks share: reading the REST API, running reads a few at a time, grouping, recording
// a problem, and the run ids the counter saw for a root or an invocation.
import { hits, server, sleep } from "../lib/context.mjs";

// Checking, over the REST API.

export async function getJson(urlPath) {
  for (let tries = 0; ; tries++) {
    try {
      const res = await fetch(`${server.baseUrl}${urlPath}`, { signal: AbortSignal.timeout(15_000) });
      return { status: res.status, body: await res.json() };
    } catch (err) {
      if (tries >= 3) throw err;
      await sleep(500);
    }
  }
}

/** Runs `fn` over `items`, `limit` at a time (two cores: keep the server breathing); the bench's own helper. */
export { mapLimit as pool } from "../../bench/lib/clients.mjs";

/** For a row's `events`: the highest attempt at which each step body of `root` ran. */
export function seenFor(root) {
  return {
    last(step) {
      const attempts = hits.filter((h) => h.root === root && h.step === step).map((h) => h.attempt);
      return attempts.length ? Math.max(...attempts) : undefined;
    },
  };
}

/** Map.groupBy (Node 21+), for Node 20. */
export function groupBy(items, keyOf) {
  const groups = new Map();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}

export function issue(list, kind, root, detail) {
  list.push({ kind, root, ...detail });
}

/** The runs the counter saw for `root`: the distinct run ids of its hits. */
export const runIdsOfRoot = (root) => [...new Set(hits.filter((h) => h.root === root).map((h) => h.run))];

/** The run ids an invocation may have started: the one it was answered, or those its hits name. */
export const invocationRunIds = (invocation) => [...new Set([...(invocation.answer?.runId ? [invocation.answer.runId] : []), ...runIdsOfRoot(invocation.root)])];
