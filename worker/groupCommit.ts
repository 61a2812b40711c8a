/**
 * Group commit: while one write is in flight, the writes that arrive wait and then go together in
 * the next one. Concurrent requests share one D1 round trip (all D1 calls are serialized, so one
 * batch of many costs little more than one of one) instead of queueing one round trip each.
 *
 * The first caller of each group performs its write, from its own request: Workers tie I/O to the
 * request that started it, so a write must never outlive the request that issued it.
 *
 * @example
 * const events = new GroupCommit<StoredEvent>((items) => writeAll(items), 5000);
 * await events.add(myEvents); // resolves once the write that carried them finished
 */
export class GroupCommit<T> {
  private open: Group<T> | undefined;
  private inFlight: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly write: (items: T[]) => Promise<void>,
    /** A group takes whole requests up to this many items (a larger request goes alone). */
    private readonly maxItems: number,
  ) {}

  async add(items: T[]): Promise<void> {
    const joinable = this.open && this.open.items.length + items.length <= this.maxItems;
    if (joinable) {
      this.open!.items.push(...items);
      return this.open!.done;
    }
    const group = new Group<T>([...items]);
    this.open = group;
    const previous = this.inFlight;
    this.inFlight = group.done.catch(() => {});
    await previous;
    // From here on, arrivals start the next group.
    if (this.open === group) this.open = undefined;
    this.write(group.items).then(group.resolve, group.reject);
    return group.done;
  }
}

class Group<T> {
  resolve!: () => void;
  reject!: (err: unknown) => void;
  readonly done = new Promise<void>((resolve, reject) => {
    this.resolve = resolve;
    this.reject = reject;
  });

  constructor(readonly items: T[]) {}
}
