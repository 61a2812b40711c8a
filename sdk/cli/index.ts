#!/usr/bin/env node
/**
 * The `stepflare` command: `init`, `dev`, `migrate`, `doctor`. Node only (no Workers imports); it runs
 * the project's own wrangler (node_modules/.bin/wrangler).
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { dev, parseAppUrl, parsePort } from "./dev.ts";
import { init } from "./init.ts";
import { migrate } from "./migrate.ts";
import { CliError, packageInfo, supportedWrangler } from "./project.ts";

const USAGE = `Usage: stepflare <command> [options]

Commands:
  init <dir> [--name <worker-name>]    create a Worker project with Stepflare in <dir>
  dev [--port N] [--ip <host>] [--app <url>]... [--sync-interval <seconds>] [-- <wrangler dev args>]
                                       apply the D1 migrations locally and run wrangler dev in dev mode
                                       (port 8787); --app syncs an Inngest SDK app, and again every
                                       --sync-interval seconds (5)
  migrate [--local | --remote]         apply the installed release's D1 migrations (--local by default)
  doctor [--secrets]                   check wrangler.toml (and, with --secrets, the deployed Worker's
                                       secrets) for what Stepflare needs

Options for dev, migrate and doctor:
  -c, --config <path>                  the project's wrangler.toml (./wrangler.toml)
  --persist-to <dir>                   (dev, migrate) where local state lives (wrangler's default: .wrangler/state)

  -v, --version                        print the version
  -h, --help                           print this help`;

const common = {
  config: { type: "string", short: "c" },
  "persist-to": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

function parse<O extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: O, positionals = 0) {
  try {
    const parsed = parseArgs({ args, options, allowPositionals: positionals > 0, strict: true });
    if (parsed.positionals.length > positionals) throw new CliError(`unexpected argument ${parsed.positionals[positionals]}`);
    return parsed;
  } catch (err) {
    if (err instanceof CliError) throw err;
    // parseArgs' own errors (an unknown option, a missing value) name the option: keep their first sentence.
    throw new CliError((err as Error).message.split(". ")[0]!);
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    console.log(USAGE);
    return command === undefined ? 1 : 0;
  }
  if (command === "--version" || command === "-v") {
    console.log(`stepflare ${packageInfo().version} (wrangler ${supportedWrangler()})`);
    return 0;
  }
  switch (command) {
    case "init": {
      const { values, positionals } = parse(rest, { name: { type: "string" }, help: { type: "boolean", short: "h" } }, 1);
      if (values.help) return help();
      const dir = positionals[0];
      if (!dir) throw new CliError("init needs a folder: stepflare init <dir>");
      init(dir, values.name === undefined ? {} : { name: values.name });
      return 0;
    }
    case "dev": {
      const split = rest.indexOf("--");
      const ours = split < 0 ? rest : rest.slice(0, split);
      const wranglerArgs = split < 0 ? [] : rest.slice(split + 1);
      const { values } = parse(ours, { ...common, port: { type: "string", short: "p" }, ip: { type: "string" }, app: { type: "string", multiple: true }, "sync-interval": { type: "string" } });
      if (values.help) return help();
      const interval = values["sync-interval"] === undefined ? 5 : Number(values["sync-interval"]);
      if (!(interval >= 1 && interval <= 3600)) throw new CliError(`--sync-interval must be a number of seconds from 1 to 3600, not ${JSON.stringify(values["sync-interval"])}`);
      return await dev({
        port: parsePort(values.port, 8787),
        ip: values.ip ?? "localhost",
        apps: (values.app ?? []).map(parseAppUrl),
        syncIntervalMs: interval * 1000,
        wranglerArgs,
        ...(values.config === undefined ? {} : { config: values.config }),
        ...(values["persist-to"] === undefined ? {} : { persistTo: values["persist-to"] }),
      });
    }
    case "migrate": {
      const { values } = parse(rest, { ...common, local: { type: "boolean" }, remote: { type: "boolean" } });
      if (values.help) return help();
      if (values.local && values.remote) throw new CliError("migrate takes --local or --remote, not both");
      if (values.remote && values["persist-to"]) throw new CliError("--persist-to is for the local database, not with --remote");
      await migrate({
        remote: values.remote === true,
        ...(values.config === undefined ? {} : { config: values.config }),
        ...(values["persist-to"] === undefined ? {} : { persistTo: values["persist-to"] }),
      });
      return 0;
    }
    case "doctor": {
      const { values } = parse(rest, { config: common.config, help: common.help, secrets: { type: "boolean" } });
      if (values.help) return help();
      // Loaded here: it reads the engine's own rules (worker/platform/env.ts, which needs the package's dependencies).
      const { doctor } = await import("./doctor.ts");
      return (await doctor({ secrets: values.secrets === true, ...(values.config === undefined ? {} : { config: values.config }) })) ? 0 : 1;
    }
    default:
      throw new CliError(`unknown command ${JSON.stringify(command)}`);
  }
}

function help(): number {
  console.log(USAGE);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof CliError) {
      console.error(`stepflare: ${err.message}\nRun \`stepflare --help\` for the commands.`);
      process.exitCode = 1;
    } else {
      console.error(err);
      process.exitCode = 1;
    }
  },
);
