/**
 * What the SDK uses of `node:async_hooks`' AsyncLocalStorage, as a type of its own: the package's
 * declaration files then name no Node module, and a project type-checks without `@types/node`.
 */
export interface ContextScope<T> {
  getStore(): T | undefined;
  run<R>(store: T, fn: () => R): R;
}
