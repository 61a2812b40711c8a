/** `group.parallel`'s options (Inngest v4): `"race"` is the only mode. */
export interface ParallelOptions {
  mode?: "race";
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
}

export const groupTools: GroupTools = {
  parallel<T>(optionsOrCallback: ParallelOptions | (() => Promise<T>), maybeCallback?: () => Promise<T>): Promise<T> {
    const callback = typeof optionsOrCallback === "function" ? optionsOrCallback : maybeCallback;
    if (typeof callback !== "function") throw new TypeError("group.parallel(options?, callback): the callback must be a function");
    if (typeof optionsOrCallback === "object" && optionsOrCallback.mode !== undefined && optionsOrCallback.mode !== "race") {
      throw new TypeError(`group.parallel: mode ${JSON.stringify(optionsOrCallback.mode)} is not one Inngest defines; use "race" or leave it out`);
    }
    return callback();
  },
};
