import type { Env } from "./env.ts";
import { checkFault } from "./faults.ts";
import { usage } from "./usage.ts";

/** Envs this module made, so instrumenting one again returns it. */
const instrumented = new WeakSet<object>();
/** The instrumented env made from each env the runtime handed in (it hands the same one every time). */
const instrumentedOf = new WeakMap<object, Env>();
/** The real binding or statement behind each wrapper: D1's batch() wants its own statements back. */
const realOf = new WeakMap<object, object>();

/**
 * Wraps an env's bindings so that every billable operation is counted in `usage` where it happens
 * (D1 statements and rows written, Queue messages sent, Durable Object RPC calls) and, in dev mode
 * only, so that D1 or the Queue fail while their fault switch is on (worker/platform/faults.ts). Apply it
 * once where an env enters: the Worker's handlers and the Durable Objects' constructors.
 * Idempotent: an instrumented env comes back as it is, and a copy of one is not counted twice.
 *
 * @example
 * fetch: (request, env, ctx) => app.fetch(request, instrument(env), ctx),
 */
export function instrument(env: Env): Env {
  if (instrumented.has(env)) return env;
  const known = instrumentedOf.get(env);
  if (known) return known;
  // Decided once per env: outside dev mode no fault is ever injected, whatever the switch says.
  const isDev = env.STEPFLARE_DEV === "1";
  const wrapped: Env = {
    ...env,
    ...(env.DB ? { DB: new MeteredD1(unwrap(env.DB), isDev) } : {}),
    ...Object.fromEntries(shardBindings(env).map(([name, db]) => [name, new MeteredD1(unwrap(db), isDev)])),
    ...(env.EVENTS ? { EVENTS: meterQueue(unwrap(env.EVENTS), isDev) } : {}),
    ...(env.RUNS ? { RUNS: meterNamespace(unwrap(env.RUNS)) } : {}),
    ...(env.SCHEDULER ? { SCHEDULER: meterNamespace(unwrap(env.SCHEDULER)) } : {}),
  };
  instrumented.add(wrapped);
  instrumentedOf.set(env, wrapped);
  return wrapped;
}

/** The shards bound besides DB (DB_1, DB_2, …, consecutive: worker/db/shards.ts). */
function shardBindings(env: Env): [string, D1Database][] {
  const found: [string, D1Database][] = [];
  for (let i = 1; env[`DB_${i}`]; i++) found.push([`DB_${i}`, env[`DB_${i}`]!]);
  return found;
}

function unwrap<T extends object>(binding: T): T {
  return (realOf.get(binding) as T | undefined) ?? binding;
}

function wrapping<T extends object>(wrapper: T, real: object): T {
  realOf.set(wrapper, real);
  return wrapper;
}

function countD1(results: D1Result[]): void {
  for (const result of results) {
    usage.d1Statements++;
    usage.d1RowsWritten += result.meta?.rows_written ?? 0;
  }
}

/** A D1 session (or the database itself) whose statements count and can be made to fail. */
class MeteredD1Session {
  constructor(
    protected readonly real: D1Database | D1DatabaseSession,
    protected readonly isDev: boolean,
  ) {
    realOf.set(this, real);
  }

  prepare(query: string): D1PreparedStatement {
    return new MeteredStatement(this.real.prepare(query), this.isDev);
  }

  async batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> {
    checkFault("d1", this.isDev);
    const results = await this.real.batch<T>(statements.map((statement) => unwrap(statement)));
    countD1(results);
    return results;
  }

  getBookmark(): D1SessionBookmark | null {
    return (this.real as D1DatabaseSession).getBookmark();
  }
}

class MeteredD1 extends MeteredD1Session implements D1Database {
  declare protected readonly real: D1Database;

  /** D1 reports no rows written for exec(): its statements are counted, their rows are not. */
  async exec(query: string): Promise<D1ExecResult> {
    checkFault("d1", this.isDev);
    const result = await this.real.exec(query);
    usage.d1Statements += result.count;
    return result;
  }

  withSession(constraintOrBookmark?: D1SessionBookmark | D1SessionConstraint): D1DatabaseSession {
    return new MeteredD1Session(this.real.withSession(constraintOrBookmark), this.isDev);
  }

  async dump(): Promise<ArrayBuffer> {
    checkFault("d1", this.isDev);
    return this.real.dump();
  }
}

class MeteredStatement implements D1PreparedStatement {
  constructor(
    private readonly real: D1PreparedStatement,
    private readonly isDev: boolean,
  ) {
    realOf.set(this, real);
  }

  bind(...values: unknown[]): D1PreparedStatement {
    return new MeteredStatement(this.real.bind(...values), this.isDev);
  }

  async run<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    checkFault("d1", this.isDev);
    const result = await this.real.run<T>();
    countD1([result]);
    return result;
  }

  async all<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    checkFault("d1", this.isDev);
    const result = await this.real.all<T>();
    countD1([result]);
    return result;
  }

  first<T = unknown>(colName: string): Promise<T | null>;
  first<T = Record<string, unknown>>(): Promise<T | null>;
  /** Through all(), which is what D1's own first() does, so the rows it wrote are known. */
  async first<T>(colName?: string): Promise<T | null> {
    const row = (await this.all()).results[0];
    if (row === undefined) return null;
    if (colName === undefined) return row as T;
    // D1's own first() throws this for a missing column.
    if (row[colName] === undefined) throw new Error(`D1_COLUMN_NOTFOUND: Column not found (${colName})`);
    return row[colName] as T;
  }

  raw<T = unknown[]>(options: { columnNames: true }): Promise<[string[], ...T[]]>;
  raw<T = unknown[]>(options?: { columnNames?: false }): Promise<T[]>;
  /** D1 reports no rows written for raw(): the statement is counted, its rows are not. */
  async raw<T = unknown[]>(options?: { columnNames?: boolean }): Promise<T[] | [string[], ...T[]]> {
    checkFault("d1", this.isDev);
    const rows = options?.columnNames ? await this.real.raw<T>({ columnNames: true }) : await this.real.raw<T>();
    usage.d1Statements++;
    return rows;
  }
}

function meterQueue<Body>(real: Queue<Body>, isDev: boolean): Queue<Body> {
  return wrapping<Queue<Body>>(
    {
      metrics: () => real.metrics(),
      async send(message, options) {
        checkFault("queue", isDev);
        const response = await real.send(message, options);
        usage.queueMessages++;
        return response;
      },
      async sendBatch(messages, options) {
        checkFault("queue", isDev);
        const list = [...messages];
        const response = await real.sendBatch(list, options);
        usage.queueMessages += list.length;
        return response;
      },
    },
    real,
  );
}

function meterNamespace<T extends Rpc.DurableObjectBranded | undefined>(real: DurableObjectNamespace<T>): DurableObjectNamespace<T> {
  return wrapping<DurableObjectNamespace<T>>(
    {
      newUniqueId: (options) => real.newUniqueId(options),
      idFromName: (name) => real.idFromName(name),
      idFromString: (id) => real.idFromString(id),
      get: (id, options) => meterStub(real.get(id, options)),
      getByName: (name, options) => meterStub(real.getByName(name, options)),
      jurisdiction: (jurisdiction) => meterNamespace(real.jurisdiction(jurisdiction)),
    },
    real,
  );
}

/** A stub whose every method call (RPC or fetch) counts one Durable Object request. */
function meterStub<S extends object>(stub: S): S {
  return new Proxy(stub, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property);
      if (typeof property === "symbol" || typeof value !== "function") return value;
      return (...args: unknown[]) => {
        usage.doRequests++;
        return Reflect.apply(value, target, args);
      };
    },
  });
}
