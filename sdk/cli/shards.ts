/**
 * A project's D1 shards, as its wrangler.toml binds them: `DB`, then `DB_1`, `DB_2`, … (the Worker's rule is
 * worker/db/shards.ts's: it uses them up to the first missing number). Every shard gets every migration.
 */
import type { TomlTable, TomlValue } from "./toml.ts";

/** One `[[d1_databases]]` entry bound as a shard: its binding, its number (0 for DB) and its table. */
export interface ShardDatabase {
  binding: string;
  index: number;
  entry: TomlTable;
}

const SHARD_BINDING = /^DB(?:_([1-9][0-9]*))?$/;

/**
 * Every `[[d1_databases]]` bound as DB or DB_<n>, by number (DB first), gaps included.
 *
 * @example
 * shardDatabases(parseToml(source)).map((shard) => shard.binding); // ["DB", "DB_1"]
 */
export function shardDatabases(toml: TomlTable): ShardDatabase[] {
  const entries = Array.isArray(toml.d1_databases) ? toml.d1_databases.filter(isTable) : [];
  return entries
    .flatMap((entry) => {
      const match = typeof entry.binding === "string" ? SHARD_BINDING.exec(entry.binding) : null;
      return match ? [{ binding: entry.binding as string, index: match[1] ? Number(match[1]) : 0, entry }] : [];
    })
    .sort((a, b) => a.index - b.index);
}

/** The shards the Worker uses: DB and the ones numbered after it without a gap. */
export function shardsUsed(shards: ShardDatabase[]): ShardDatabase[] {
  const used: ShardDatabase[] = [];
  for (const shard of shards) if (shard.index === used.length) used.push(shard);
  return used;
}

function isTable(value: TomlValue): value is TomlTable {
  return typeof value === "object" && !Array.isArray(value);
}
