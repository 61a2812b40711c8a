import { parse } from "@marcbachmann/cel-js";

/** A compiled CEL expression, evaluated against named variables such as `event`. */
export type Expression = (variables: Record<string, unknown>) => unknown;

/**
 * Compiles a CEL expression (no `eval`: Workers forbid it). Throws an error that names
 * the owner (a function id) and the expression when it does not parse.
 *
 * @example
 * const isPro = compileExpression("event.data.plan == 'pro'", 'function "upgrade"');
 * isPro({ event }); // true or false
 */
export function compileExpression(source: string, owner: string): Expression {
  try {
    const evaluate = parse(source);
    return (variables) => evaluate(variables);
  } catch (err) {
    const reason = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new TypeError(`${owner}: invalid expression ${JSON.stringify(source)}: ${reason}`);
  }
}
