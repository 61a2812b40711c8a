import { Middleware } from "./middleware.ts";

/**
 * A middleware that adds `values` to every handler's context, typed (Inngest v4's).
 *
 * @example
 * const app = new Stepflare({ id: "shop", middleware: [dependencyInjectionMiddleware({ db })] });
 * app.createFunction({ id: "f", triggers: [{ event: "e" }] }, async ({ db }) => db.query());
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function dependencyInjectionMiddleware<TCtx extends Record<string, any>>(values: TCtx) {
  return class DependencyInjectionMiddleware extends Middleware.BaseMiddleware {
    readonly id = "inngest:dependency-injection";
    override transformFunctionInput(arg: Middleware.TransformFunctionInputArgs): Middleware.TransformFunctionInputArgs & { ctx: TCtx } {
      return { ...arg, ctx: { ...arg.ctx, ...values } };
    }
  };
}
