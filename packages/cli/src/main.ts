/**
 * The CLI entry: yargs parses, the chosen command runs after parsing, and every error,
 * from yargs or a command, is reported by one function as one line and an exit code.
 */
import { readFileSync } from 'node:fs'
import yargs, { type Argv } from 'yargs'
import { hideBin } from 'yargs/helpers'
import type { Command, Io } from './command.ts'
import { analyzeCommand } from './commands/analyze.ts'
import { completionCommand } from './commands/completion.ts'
import { connectCommand } from './commands/connect.ts'
import { downCommand } from './commands/down.ts'
import { idCommand } from './commands/id.ts'
import { logsCommand } from './commands/logs.ts'
import { netcheckCommand } from './commands/netcheck.ts'
import { keygenCommand } from './commands/keygen.ts'
import { swarmKeyCommand } from './commands/swarm-key.ts'
import { runCommand } from './commands/run.ts'
import { statusCommand } from './commands/status.ts'
import { trustCommand } from './commands/trust.ts'
import { upCommand } from './commands/up.ts'
import { reportError, UsageError } from './errors.ts'
import { declareDaemonBooleans } from './service/daemon-flags.ts'
import { PACKAGE_JSON } from './package-dir.ts'

const EPILOGUE = 'Every option can also be set in the environment as PUNCHGATE_<OPTION>, e.g. ' +
  'PUNCHGATE_TUNNEL_BY_NAME; repeatable options take a comma-separated list. Flags beat the environment, ' +
  'which beats a --config FILE (TOML, keys are the long flag names).'

function cliVersion (): string {
  const pkg = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version: string }
  return pkg.version
}

export interface Parsed {
  args: Record<string, unknown>
  /** The chosen command, bound to its arguments; undefined after --help and --version. */
  run?: () => Promise<number>
}

/** Parses the arguments (no program name) and picks the command; throws UsageError. */
export async function parse (args: string[], io: Io): Promise<Parsed> {
  let run: (() => Promise<number>) | undefined
  // Handlers only record the choice: the command runs after yargs is done.
  const register = <A>(cli: Argv, command: Command<A>): Argv =>
    cli.command(command.command, command.describe, command.builder, parsed => {
      run = async () => command.run(parsed, io)
    })

  let cli = yargs()
    .scriptName('punchgate')
    // yargs localises its messages from LANG; tests and bug reports need one wording.
    .locale('en')
    .version(cliVersion())
    .help()
    .alias('help', 'h')
    .strict()
    // `--listen a b` must not swallow `b`: repeatable flags are repeated instead.
    .parserConfiguration({ 'greedy-arrays': false })
    .exitProcess(false)
    .fail((message, err) => { throw new UsageError(message ?? err.message) })
    .epilogue(EPILOGUE)
  cli = declareDaemonBooleans(cli)
  cli = register(cli, runCommand)
  cli = register(cli, idCommand)
  cli = register(cli, statusCommand)
  cli = register(cli, connectCommand)
  cli = register(cli, analyzeCommand)
  cli = register(cli, upCommand)
  cli = register(cli, downCommand)
  cli = register(cli, logsCommand)
  cli = register(cli, keygenCommand)
  cli = register(cli, swarmKeyCommand)
  cli = register(cli, trustCommand)
  cli = register(cli, netcheckCommand)
  cli = register(cli, completionCommand([runCommand, idCommand, statusCommand, connectCommand, analyzeCommand, upCommand,
    downCommand, logsCommand, keygenCommand, swarmKeyCommand, trustCommand, netcheckCommand]))

  // The callback receives --help and --version text instead of yargs printing it itself.
  const parsed = await cli.parseAsync(args, {}, (err, _argv, output) => {
    if (err == null && output !== '') io.stdout.write(`${output}\n`)
  })
  return { args: parsed, run }
}

/** Stack traces are for debugging: shown with PUNCHGATE_DEBUG set or at log level debug/trace. */
function wantsStack (args: Record<string, unknown> | undefined, env: NodeJS.ProcessEnv): boolean {
  const level = args?.['log-level'] ?? env.PUNCHGATE_LOG_LEVEL
  return (env.PUNCHGATE_DEBUG ?? '') !== '' || level === 'debug' || level === 'trace'
}

/** Runs the CLI on `argv` (as in process.argv) and resolves with the exit code. */
export async function main (argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  let parsed: Parsed | undefined
  try {
    parsed = await parse(hideBin(argv), io)
    return parsed.run == null ? 0 : await parsed.run()
  } catch (err) {
    return reportError(err, io.stderr, wantsStack(parsed?.args, io.env))
  }
}
