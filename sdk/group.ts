import { AsyncLocalStorage } from "node:async_hooks";
import type { ContextScope } from "./scope.ts";
import { NonRetriableError } from "./errors/NonRetriableError.ts";
import { selectScope, type ExperimentSelectFn } from "./experiment.ts";

/** `group.parallel`'s options (Inngest v4): `"race"` is the only mode. */
export interface ParallelOptions {
  mode?: "race";
}

/** A step's id, or Inngest's step options (`{ id, name? }`). */
export type StepOptionsOrId = string | { id: string; name?: string };

/** `group.experiment`'s options: the variants by name, and how one is picked. */
export interface ExperimentOptions<TVariants extends Record<string, () => unknown>> {
  variants: TVariants;
  select: ExperimentSelectFn;
}

/** What names an experiment's variant in a run, for scoring it later (Inngest's `ExperimentRef`). */
export interface ExperimentRef {
  experimentName: string;
  variant: string;
}

/** Tools that group steps (Inngest v4's `group`). */
export interface GroupTools {
  /**
   * Runs `callback`, whose steps race (`Promise.race`) or run side by side. Inngest needs the mode
   * to stop planning the steps a race left behind; here every step of an invocation runs in the
   * same isolate, so a race returns the first to settle and the others finish and are memoized
   * beside it (they never run again).
   *
   * @example
   * const winner = await group.parallel({ mode: "race" }, () => Promise.race([step.run("a", fa), step.run("b", fb)]));
   */
  parallel<T>(optionsOrCallback: ParallelOptions | (() => Promise<T>), maybeCallback?: () => Promise<T>): Promise<T>;
  /**
   * An A/B experiment: `select` picks a variant inside a memoized step (named by `id`), so the run
   * keeps that variant on every replay and retry; then the variant's callback runs in the handler's
   * own code, and its steps are steps of the run. A variant that calls no step tool fails the run
   * for good (its work would run again on every replay).
   *
   * @example
   * const { result, variant } = await group.experiment("checkout-flow", {
   *   variants: { control: () => step.run("old", oldCheckout), new_flow: () => step.run("new", newCheckout) },
   *   select: experiment.weighted({ control: 80, new_flow: 20 }),
   * });
   */
  experiment<TVariants extends Record<string, () => unknown>>(
    idOrOptions: StepOptionsOrId,
    options: ExperimentOptions<TVariants>,
  ): Promise<{ result: Awaited<ReturnType<TVariants[keyof TVariants]>>; variant: string; experimentRef: ExperimentRef }>;
}

/** What the group tools need of the invocation: its run id, and a memoized step for the experiment's pick. */
export interface GroupToolsDeps {
  runId: string;
  experimentStep: (id: string, pick: () => Promise<string>) => Promise<string>;
}

/** Set while a variant's callback runs: the driver marks it when the variant calls a step tool. */
export const variantScope: ContextScope<{ calledStep: boolean }> = new AsyncLocalStorage<{ calledStep: boolean }>();

/** The group tools of one invocation. */
export function createGroupTools(deps: GroupToolsDeps): GroupTools {
  return {
    parallel<T>(optionsOrCallback: ParallelOptions | (() => Promise<T>), maybeCallback?: () => Promise<T>): Promise<T> {
      const callback = typeof optionsOrCallback === "function" ? optionsOrCallback : maybeCallback;
      if (typeof callback !== "function") throw new TypeError("group.parallel(options?, callback): the callback must be a function");
      if (typeof optionsOrCallback === "object" && optionsOrCallback.mode !== undefined && optionsOrCallback.mode !== "race") {
        throw new TypeError(`group.parallel: mode ${JSON.stringify(optionsOrCallback.mode)} is not one Inngest defines; use "race" or leave it out`);
      }
      return callback();
    },

    async experiment<TVariants extends Record<string, () => unknown>>(idOrOptions: StepOptionsOrId, { variants, select }: ExperimentOptions<TVariants>) {
      const id = typeof idOrOptions === "string" ? idOrOptions : idOrOptions?.id;
      if (typeof id !== "string" || id.length === 0) throw new TypeError("group.experiment(id, options): the id must be a non-empty string");
      const names = Object.keys(variants ?? {});
      if (names.length === 0) throw new TypeError(`group.experiment("${id}"): define at least one variant`);
      if (typeof select !== "function") throw new TypeError(`group.experiment("${id}"): select must be a function, such as experiment.weighted({ ... })`);
      const variant = await deps.experimentStep(id, async () => {
        const picked = await selectScope.run({ runId: deps.runId }, () => select(names));
        if (!names.includes(picked)) throw new NonRetriableError(`group.experiment("${id}"): select() returned "${picked}", which is not a variant; the variants are ${names.join(", ")}`);
        return picked;
      });
      const run = variants[variant];
      // A stored pick whose variant the code no longer has (the function changed under a running run).
      if (!run) throw new NonRetriableError(`group.experiment("${id}"): the run picked variant "${variant}", which is no longer defined; the variants are ${names.join(", ")}`);
      const tracker = { calledStep: false };
      const result = (await variantScope.run(tracker, run)) as Awaited<ReturnType<TVariants[keyof TVariants]>>;
      if (!tracker.calledStep) {
        throw new NonRetriableError(`group.experiment("${id}"): variant "${variant}" called no step tool; wrap its work in step.run() so a replay does not run it again`);
      }
      return { result, variant, experimentRef: { experimentName: id, variant } };
    },
  };
}
