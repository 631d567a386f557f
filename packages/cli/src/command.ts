/**
 * The contract between main and the command modules. A command's `run` does the work
 * after parsing has finished, so every error it throws reaches main's one error report.
 */
import type { Argv, ArgumentsCamelCase } from 'yargs'

/** A stream the CLI writes to; `isTTY` picks the log format. */
export type Output = NodeJS.WritableStream & { isTTY?: boolean }

/** Process I/O, injected so tests run the CLI in-process. */
export interface Io {
  stdout: Output
  stderr: Output
  env: NodeJS.ProcessEnv
  /** Picks the service manager for up/down/logs; defaults to process.platform. */
  platform?: NodeJS.Platform
}

export interface Command<A> {
  /** yargs command syntax; `$0` for the default command. */
  command: string
  describe: string
  builder: (yargs: Argv) => Argv<A>
  /** Resolves with the exit code; throws for main to report. */
  run: (args: ArgumentsCamelCase<A>, io: Io) => Promise<number>
}
