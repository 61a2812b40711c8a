// The runs started through the service binding's `invoke`: each ran once if the call answered,
// at most once if a kill or the outage cut it.
import { hits } from "../lib/context.mjs";
import { getJson, issue, pool, runIdsOfRoot, seenFor } from "./common.mjs";
import { checkEffects, checkRun } from "./runs.mjs";

/**
 * The runs started through the service binding's `invoke`, read through its `getRun` (from the
 * run's object). One the call answered with a run id ran once: that run, in the runs index too,
 * in its row's final state, with its steps' attempts explained, and no other run of its root. One
 * a kill or the outage cut (no answer, or an error answered) ran at most once: at most one run id
 * among its root's hits, and that run checked the same way. `invoke` starts the run before it
 * writes the runs index, so such a run may be missing from the index (counted, not a problem: the
 * caller never learned its id).
 */
export async function verifyInvocations(invocations, out) {
  const stats = { answered: 0, cut: 0, refused: 0, startedAnyway: 0, startedAnywayUnindexed: 0 };
  await pool(invocations, 4, async (invocation) => {
    const { root, scenario, data, answer } = invocation;
    const mine = hits.filter((h) => h.root === root);
    const want = scenario.events(data, root, {}, seenFor(root))[0].runs[0];
    const ran = runIdsOfRoot(root);
    if (answer?.runId) stats.answered++;
    else if (answer?.cut) stats.cut++;
    else stats.refused++;
    if (ran.length > 1) issue(out.problems, "duplicated", root, { what: `invoke(${invocation.fn}) started ${ran.length} runs: ${ran.join(", ")}` });
    const others = answer?.runId ? ran.filter((id) => id !== answer.runId) : [];
    if (answer?.runId && others.length > 0) issue(out.problems, "duplicated", root, { what: `invoke(${invocation.fn}) answered run ${answer.runId}, but run(s) ${others.join(", ")} ran too` });
    const runId = answer?.runId ?? ran[0];
    if (!runId) return; // a call cut before it started anything
    out.runIds.add(runId);
    const indexed = (await getJson(`/v1/runs/${runId}`)).status === 200;
    if (!answer?.runId) {
      stats.startedAnyway++;
      if (!indexed) stats.startedAnywayUnindexed++;
    } else if (!indexed) issue(out.problems, "lost", root, { what: `invoke(${invocation.fn}) answered run ${runId}, but GET /v1/runs/${runId} does not find it` });
    const detailPath = `/chaos/rpc/runs/${runId}`;
    const { status, body } = await getJson(detailPath);
    if (status !== 200) {
      issue(out.problems, "lost", root, { what: `invoke(${invocation.fn}) ${answer?.runId ? "answered" : "started"} run ${runId}, but getRun through the binding answered ${status}` });
      return;
    }
    if (body.data.function_id !== want.fn) issue(out.problems, "wrong", root, { what: `run ${runId} is a run of ${body.data.function_id}, not ${want.fn}` });
    await checkRun(root, "invoke", want, body.data, mine, out, detailPath);
    checkEffects(root, scenario.effects(data), mine, invocation.sentAt, out);
  });
  return stats;
}
