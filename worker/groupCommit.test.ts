import { describe, expect, it } from "vitest";
import { GroupCommit } from "./groupCommit.ts";

function recorder(fail?: (items: number[]) => boolean) {
  const writes: number[][] = [];
  let release: () => void = () => {};
  const commit = new GroupCommit<number>(async (items) => {
    writes.push(items);
    await new Promise<void>((resolve) => (release = resolve));
    if (fail?.(items)) throw new Error(`write of ${items.join(",")} failed`);
  }, 5);
  return { writes, commit, release: () => release() };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("GroupCommit", () => {
  it("writes the first request alone and the ones that arrive meanwhile together", async () => {
    const { writes, commit, release } = recorder();
    const first = commit.add([1]);
    await tick();
    const rest = [commit.add([2]), commit.add([3, 4]), commit.add([5])];
    await tick();
    expect(writes).toEqual([[1]]);
    release();
    await first;
    await tick();
    expect(writes).toEqual([[1], [2, 3, 4, 5]]);
    release();
    await Promise.all(rest);
  });

  it("keeps a group open until its write starts, and starts a new one past the limit", async () => {
    const { writes, commit, release } = recorder();
    const all = [commit.add([1]), commit.add([2, 3, 4]), commit.add([5, 6]), commit.add([7])];
    for (let i = 0; i < 3; i++) {
      await tick();
      release();
    }
    await Promise.all(all);
    expect(writes).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7],
    ]);
  });

  it("rejects every request of a failed write, and only those", async () => {
    const { commit, release } = recorder((items) => items.includes(2));
    const first = commit.add([1]);
    await tick();
    const failing = [commit.add([2]), commit.add([3])];
    release();
    await first;
    await tick();
    const later = commit.add([4]);
    release();
    for (const request of failing) await expect(request).rejects.toThrow("write of 2,3 failed");
    await tick();
    release();
    await expect(later).resolves.toBeUndefined();
  });

  it("does not change the caller's array", async () => {
    const { commit, release } = recorder();
    const mine = [1];
    const first = commit.add(mine);
    const second = commit.add([2]);
    await tick();
    release();
    await tick();
    release();
    await Promise.all([first, second]);
    expect(mine).toEqual([1]);
  });
});
