// The comparison side of `npm run bench`: each Stepflare benchmark function as a Cloudflare Workflow,
// and the floor, a raw SQLite Durable Object that does per "step" one INSERT and awaits its commit
// (`storage.sync()`): what one durable step costs when the step awaits real I/O.
//
// HTTP front (JSON bodies):
//   POST /wf/create  { workflow, instances: [{ id, params }] }  → { created }   (createBatch, 100 at a time)
//   POST /wf/status  { workflow, ids }                          → { statuses: { id: { status, output, error } } }
//   POST /floor/steps { tag, runs, steps }                      → { runs, steps } once every DO did its steps
//   POST /floor/sleep { tag, runs, counter }                    → { armed } (each alarm reports to the counter)
import { DurableObject, WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from "cloudflare:workers";

interface Env {
  ONE_STEP: Workflow<BenchParams>;
  N_STEPS: Workflow<BenchParams>;
  FIRST_STEP: Workflow<BenchParams>;
  SLEEPER: Workflow<BenchParams>;
  SLEEP_FROM_START: Workflow<BenchParams>;
  INVOKER: Workflow<BenchParams>;
  INVOKED: Workflow<{ i: number }>;
  FLOOR: DurableObjectNamespace<Floor>;
}

/** What every instance gets: where the counter is, which measurement, which run. */
interface BenchParams {
  counter: string;
  tag: string;
  i: number;
  steps?: number;
}

/** Tells the counter that run `key` of measurement `tag` got here; `extra` carries timings. */
async function hit(counter: string, tag: string, key: number, extra: Record<string, number> = {}): Promise<void> {
  const res = await fetch(`${counter}/hit`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tag, key, ...extra }),
  });
  if (!res.ok) throw new Error(`counter answered ${res.status}`);
  await res.arrayBuffer();
}

/** Scenario 1: one step that calls the counter. */
export class OneStepWorkflow extends WorkflowEntrypoint<Env, BenchParams> {
  override async run(event: Readonly<WorkflowEvent<BenchParams>>, step: WorkflowStep) {
    const { counter, tag, i } = event.payload;
    await step.do("count", async () => {
      await hit(counter, tag, i);
      return "counted";
    });
    return { i };
  }
}

/** Scenarios 2 and 3: `steps` sequential steps; the last one calls the counter. */
export class NStepsWorkflow extends WorkflowEntrypoint<Env, BenchParams> {
  override async run(event: Readonly<WorkflowEvent<BenchParams>>, step: WorkflowStep) {
    const { counter, tag, i } = event.payload;
    const steps = event.payload.steps ?? 1;
    let sum = 0;
    for (let n = 0; n < steps; n++) {
      sum += await step.do(`s${n}`, async () => {
        if (n === steps - 1) await hit(counter, tag, i);
        return n;
      });
    }
    return { steps, sum };
  }
}

/** Scenario 4: the first step reports the time it ran. */
export class FirstStepWorkflow extends WorkflowEntrypoint<Env, BenchParams> {
  override async run(event: Readonly<WorkflowEvent<BenchParams>>, step: WorkflowStep) {
    const { counter, tag, i } = event.payload;
    await step.do("first", async () => {
      await hit(counter, tag, i, { t: Date.now() });
      return "first";
    });
    return { i };
  }
}

/** Scenario 5: plans its wake-up 1 s ahead, sleeps until then, reports now − planned wake time. */
export class SleeperWorkflow extends WorkflowEntrypoint<Env, BenchParams> {
  override async run(event: Readonly<WorkflowEvent<BenchParams>>, step: WorkflowStep) {
    const { counter, tag, i } = event.payload;
    const wakeAt = await step.do("plan", async () => Date.now() + 1000);
    await step.sleepUntil("nap", wakeAt);
    const lateness = await step.do("report", async () => {
      const late = Date.now() - wakeAt;
      await hit(counter, tag, i, { lateness: late });
      return late;
    });
    return { lateness };
  }
}

/** Scenario 5b: records its start, `step.sleep` 1 s, reports now − (start + 1 s). */
export class SleepFromStartWorkflow extends WorkflowEntrypoint<Env, BenchParams> {
  override async run(event: Readonly<WorkflowEvent<BenchParams>>, step: WorkflowStep) {
    const { counter, tag, i } = event.payload;
    const start = await step.do("start", async () => Date.now());
    await step.sleep("nap", "1 second");
    const lateness = await step.do("report", async () => {
      const late = Date.now() - (start + 1000);
      await hit(counter, tag, i, { lateness: late });
      return late;
    });
    return { lateness };
  }
}

/** Scenario 8: the child, one step. */
export class InvokedWorkflow extends WorkflowEntrypoint<Env, { i: number }> {
  override async run(event: Readonly<WorkflowEvent<{ i: number }>>, step: WorkflowStep) {
    return step.do("double", async () => ({ doubled: event.payload.i * 2 }));
  }
}

/** How often the invoking step asks its child for its status. */
const INVOKE_POLL_MS = 5;

/**
 * Scenario 8: Workflows has no step.invoke; the nearest is a step that creates a child instance and
 * polls its status until it is complete (every INVOKE_POLL_MS), then the step after reports the time.
 */
export class InvokerWorkflow extends WorkflowEntrypoint<Env, BenchParams> {
  override async run(event: Readonly<WorkflowEvent<BenchParams>>, step: WorkflowStep) {
    const { counter, tag, i } = event.payload;
    const child = await step.do("child", async () => {
      const id = `${event.instanceId}-child`;
      // A retried step finds the child it created the first time.
      const instance = await this.env.INVOKED.create({ id, params: { i } }).catch(() => this.env.INVOKED.get(id));
      for (;;) {
        const { status, output, error } = await instance.status();
        if (status === "complete") return output as { doubled: number };
        if (status === "errored" || status === "terminated") throw new Error(`child ${id} is ${status}: ${JSON.stringify(error)}`);
        await new Promise((resolve) => setTimeout(resolve, INVOKE_POLL_MS));
      }
    });
    await step.do("after", async () => {
      await hit(counter, tag, i, { t: Date.now() });
      return "after";
    });
    return { i, child };
  }
}

/** The floor: a SQLite Durable Object whose "step" is one INSERT whose commit it awaits. */
export class Floor extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS steps (n INTEGER PRIMARY KEY, output TEXT NOT NULL)");
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS wake (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, counter TEXT NOT NULL, tag TEXT NOT NULL, i INTEGER NOT NULL)");
  }

  /** Does `steps` durable steps, one after another. */
  async steps(steps: number): Promise<number> {
    for (let n = 0; n < steps; n++) {
      this.ctx.storage.sql.exec("INSERT INTO steps (n, output) VALUES (?, ?)", n, JSON.stringify(n));
      await this.ctx.storage.sync();
    }
    return steps;
  }

  /** Arms an alarm 1 s ahead; the alarm reports its lateness to the counter. */
  async sleep(counter: string, tag: string, i: number): Promise<void> {
    const at = Date.now() + 1000;
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO wake (id, at, counter, tag, i) VALUES (1, ?, ?, ?, ?)", at, counter, tag, i);
    await this.ctx.storage.setAlarm(at);
  }

  override async alarm(): Promise<void> {
    const row = this.ctx.storage.sql.exec<{ at: number; counter: string; tag: string; i: number }>("SELECT at, counter, tag, i FROM wake WHERE id = 1").toArray()[0];
    if (!row) return;
    await hit(row.counter, row.tag, row.i, { lateness: Date.now() - row.at });
  }
}

const WORKFLOWS = ["ONE_STEP", "N_STEPS", "FIRST_STEP", "SLEEPER", "SLEEP_FROM_START", "INVOKER", "INVOKED"] as const;
type WorkflowName = (typeof WORKFLOWS)[number];

function workflowOf(env: Env, name: unknown): Workflow<BenchParams> {
  if (!WORKFLOWS.includes(name as WorkflowName)) throw new Error(`unknown workflow ${JSON.stringify(name)}`);
  return env[name as WorkflowName] as Workflow<BenchParams>;
}

/** createBatch takes at most 100 instances per call. */
async function createInstances(workflow: Workflow<BenchParams>, instances: WorkflowInstanceCreateOptions<BenchParams>[]): Promise<number> {
  const chunks: WorkflowInstanceCreateOptions<BenchParams>[][] = [];
  for (let k = 0; k < instances.length; k += 100) chunks.push(instances.slice(k, k + 100));
  await Promise.all(chunks.map((chunk) => (chunk.length === 1 ? workflow.create(chunk[0]) : workflow.createBatch(chunk))));
  return instances.length;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (request.method === "GET" && pathname === "/ready") return Response.json({ ok: true });
    if (request.method !== "POST") return Response.json({ error: `no route for ${request.method} ${pathname}` }, { status: 404 });
    const body = (await request.json()) as Record<string, unknown>;
    try {
      switch (pathname) {
        case "/wf/create": {
          const instances = body.instances as WorkflowInstanceCreateOptions<BenchParams>[];
          return Response.json({ created: await createInstances(workflowOf(env, body.workflow), instances) });
        }
        case "/wf/status": {
          const workflow = workflowOf(env, body.workflow);
          const entries = await Promise.all(
            (body.ids as string[]).map(async (id) => {
              const { status, output, error } = await (await workflow.get(id)).status();
              return [id, { status, output: output ?? null, error: error ?? null }] as const;
            }),
          );
          return Response.json({ statuses: Object.fromEntries(entries) });
        }
        case "/floor/steps": {
          const { tag, runs, steps } = body as { tag: string; runs: number; steps: number };
          await Promise.all(Array.from({ length: runs }, (_, i) => env.FLOOR.get(env.FLOOR.idFromName(`${tag}-${i}`)).steps(steps)));
          return Response.json({ runs, steps });
        }
        case "/floor/sleep": {
          const { tag, runs, counter } = body as { tag: string; runs: number; counter: string };
          await Promise.all(Array.from({ length: runs }, (_, i) => env.FLOOR.get(env.FLOOR.idFromName(`${tag}-${i}`)).sleep(counter, tag, i)));
          return Response.json({ armed: runs });
        }
        default:
          return Response.json({ error: `no route for POST ${pathname}` }, { status: 404 });
      }
    } catch (err) {
      return Response.json({ error: String(err), stack: (err as Error).stack }, { status: 500 });
    }
  },
} satisfies ExportedHandler<Env>;
