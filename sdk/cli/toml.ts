/**
 * A reader for the part of TOML a wrangler.toml uses: `[table]` and `[[array.of.tables]]` headers,
 * `key = value` with strings, numbers, booleans and (one-line or multi-line) arrays of them, inline
 * tables of those, and comments. Enough for `stepflare doctor` and `migrate` to check bindings; it
 * throws on what it does not read rather than guessing.
 */
import { readFileSync } from "node:fs";

export type TomlValue = string | number | boolean | TomlValue[] | TomlTable;
export interface TomlTable {
  [key: string]: TomlValue;
}

export function readWranglerToml(file: string): TomlTable {
  try {
    return parseToml(readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
}

export function parseToml(source: string): TomlTable {
  const root: TomlTable = {};
  let current = root;
  const lines = source.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = stripComment(lines[i]!).trim();
    if (line === "") continue;
    const arrayHeader = /^\[\[\s*([^\]]+?)\s*\]\]$/.exec(line);
    const header = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (arrayHeader) {
      const keys = splitKey(arrayHeader[1]!);
      const parent = tableAt(root, keys.slice(0, -1));
      const last = keys.at(-1)!;
      const list = (parent[last] ??= []) as TomlValue;
      if (!Array.isArray(list)) throw new Error(`line ${i + 1}: ${arrayHeader[1]} is not an array of tables`);
      current = {};
      list.push(current);
      continue;
    }
    if (header) {
      current = tableAt(root, splitKey(header[1]!));
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0) throw new Error(`line ${i + 1}: expected key = value`);
    // A multi-line array: gather lines until its brackets close.
    while (bracketDepth(line.slice(eq + 1)) > 0 && i + 1 < lines.length) line += ` ${stripComment(lines[++i]!).trim()}`;
    const keys = splitKey(line.slice(0, eq).trim());
    const table = tableAt(current, keys.slice(0, -1));
    const parsed = parseValue(line.slice(eq + 1).trim(), i + 1);
    if (parsed.rest.trim() !== "") throw new Error(`line ${i + 1}: unexpected ${parsed.rest.trim()}`);
    table[keys.at(-1)!] = parsed.value;
  }
  return root;
}

function tableAt(root: TomlTable, keys: string[]): TomlTable {
  let table = root;
  for (const key of keys) {
    let next = table[key];
    if (Array.isArray(next)) next = next.at(-1);
    if (next === undefined) next = table[key] = {};
    if (typeof next !== "object" || Array.isArray(next)) throw new Error(`${key} is not a table`);
    table = next;
  }
  return table;
}

function splitKey(key: string): string[] {
  return key.split(".").map((part) => part.trim().replace(/^"(.*)"$/, "$1"));
}

function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote) {
      if (ch === "\\" && quote === '"') i++;
      else if (ch === quote) quote = undefined;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === "#") return line.slice(0, i);
  }
  return line;
}

function bracketDepth(text: string): number {
  let depth = 0;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === "\\" && quote === '"') i++;
      else if (ch === quote) quote = undefined;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === "[" || ch === "{") depth++;
    else if (ch === "]" || ch === "}") depth--;
  }
  return depth;
}

function parseValue(text: string, line: number): { value: TomlValue; rest: string } {
  text = text.trimStart();
  if (text.startsWith('"')) {
    const match = /^"((?:[^"\\]|\\.)*)"/.exec(text);
    if (!match) throw new Error(`line ${line}: unterminated string`);
    return { value: JSON.parse(`"${match[1]}"`) as string, rest: text.slice(match[0].length) };
  }
  if (text.startsWith("'")) {
    const end = text.indexOf("'", 1);
    if (end < 0) throw new Error(`line ${line}: unterminated string`);
    return { value: text.slice(1, end), rest: text.slice(end + 1) };
  }
  if (text.startsWith("[") || text.startsWith("{")) {
    const isArray = text.startsWith("[");
    const close = isArray ? "]" : "}";
    const items: TomlValue[] = [];
    const table: TomlTable = {};
    let rest = text.slice(1).trimStart();
    while (!rest.startsWith(close)) {
      if (isArray) {
        const item = parseValue(rest, line);
        items.push(item.value);
        rest = item.rest.trimStart();
      } else {
        const eq = rest.indexOf("=");
        if (eq < 0) throw new Error(`line ${line}: expected key = value in an inline table`);
        const item = parseValue(rest.slice(eq + 1), line);
        table[rest.slice(0, eq).trim().replace(/^"(.*)"$/, "$1")] = item.value;
        rest = item.rest.trimStart();
      }
      if (rest.startsWith(",")) rest = rest.slice(1).trimStart();
      else if (!rest.startsWith(close)) throw new Error(`line ${line}: expected , or ${close}`);
    }
    return { value: isArray ? items : table, rest: rest.slice(1) };
  }
  const match = /^(true|false|[+-]?[0-9][0-9_]*(?:\.[0-9_]+)?)/.exec(text);
  if (!match) throw new Error(`line ${line}: a value Stepflare's reader does not know: ${text}`);
  const raw = match[1]!;
  const value = raw === "true" ? true : raw === "false" ? false : Number(raw.replaceAll("_", ""));
  return { value, rest: text.slice(raw.length) };
}
