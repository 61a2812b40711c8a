// Functions of the buffered checkpoints property test (test/buffered.model.test.ts): one interpreter
// of generated programs per buffer setting, since `checkpointing` is a function's option, not an event's.
import { env } from "cloudflare:workers";
import { z } from "zod";
import { RetryAfterError, type Stepflare } from "../sdk/index.ts";
import { killCurrentRunObject } from "../worker/platform/faults.ts";

/** The buffer settings the interpreters cover: `bufferedSteps` × `maxInterval` (ms). */
export const BUFFER_SIZES = [2, 3, 5] as const;
export const BUFFER_INTERVALS_MS = [2, 40, 10_000] as const;

/** How long a failed attempt waits before its retry. */
const RETRY_MS = 5;

/** A program: steps in order, each failing its first `fails` attempts, some after a short sleep; and where one crash kills the run's object. */
export const bufferedProgramSchema = z
  .object({
    key: z.string().min(1),
    steps: z.array(z.object({ fails: z.number().int().min(0).max(5), sleepMsBefore: z.number().int().min(1).max(1_000).optional() }).strict()).min(1).max(20),
    /** `inStep`: in step `step`'s body at its attempt `attempt`, after its effect; `afterStep`: in the handler, once step `step` returned. */
    crash: z.object({ step: z.number().int().min(0), attempt: z.number().int().min(0), where: z.enum(["inStep", "afterStep"]) }).strict().optional(),
  })
  .strict();
export type BufferedProgram = z.infer<typeof bufferedProgramSchema>;

/** Step `index`'s output, given the one before it: a chain, so a step that saw a wrong input shows in every output after it. */
export function stepOutput(previous: string, index: number): string {
  return `${previous}>${index}`;
}

/** The interpreter with this buffer setting, and the event that starts it. */
export function programFunctionId(size: number, intervalMs: number): string {
  return `buffered-program-${size}x${intervalMs}`;
}

export function programEventName(size: number, intervalMs: number): string {
  return `test/buffered-program.${size}x${intervalMs}`;
}

async function effect(key: string): Promise<void> {
  await env.DB.prepare("INSERT INTO test_effects (key) VALUES (?1)").bind(key).run();
}

/** Kills the run's object the first time a program reaches its crash point; the marker is written first, so the test knows it came. */
async function crashOnce(key: string): Promise<void> {
  const marker = `${key}:crash`;
  const seen = await env.DB.prepare("SELECT COUNT(*) AS n FROM test_effects WHERE key = ?1").bind(marker).first<{ n: number }>();
  if ((seen?.n ?? 0) > 0) return;
  await effect(marker);
  // Nothing else runs in the object between the marker's write and the kill (no await in between).
  killCurrentRunObject();
}

export function bufferedFunctions(app: Stepflare) {
  return BUFFER_SIZES.flatMap((size) =>
    BUFFER_INTERVALS_MS.map((intervalMs) =>
      app.createFunction(
        { id: programFunctionId(size, intervalMs), retries: 5, checkpointing: { bufferedSteps: size, maxInterval: intervalMs } },
        { event: programEventName(size, intervalMs) },
        async (ctx) => {
          const program = bufferedProgramSchema.parse(ctx.event.data);
          const { key, crash } = program;
          let output = "start";
          for (const [index, { fails, sleepMsBefore }] of program.steps.entries()) {
            if (sleepMsBefore !== undefined) await ctx.step.sleep(`z${index}`, sleepMsBefore);
            const input = output;
            output = await ctx.step.run(`s${index}`, async () => {
              // Inside a body, `attempt` is this step's attempt.
              const attempt = ctx.attempt;
              await effect(`${key}:${index}:${attempt}`);
              if (crash?.where === "inStep" && crash.step === index && crash.attempt === attempt) await crashOnce(key);
              if (attempt < fails) throw new RetryAfterError(`s${index} fails its attempt ${attempt}`, RETRY_MS);
              return stepOutput(input, index);
            });
            if (crash?.where === "afterStep" && crash.step === index) await crashOnce(key);
          }
          return output;
        },
      ),
    ),
  );
}
