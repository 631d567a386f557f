/**
 * Turns any error into one line on stderr and an exit code: 2 for usage errors (the
 * user's input), 1 for everything else. Errors are matched on `kind`, not instanceof,
 * which survives duplicate copies of the library.
 */
import { PunchgateError } from '@punchgate/node'
import type { Output } from './command.ts'

const EXIT_RUNTIME = 1
const EXIT_USAGE = 2

/** A command-line or environment value the CLI itself rejects (yargs, env parsing). */
export class UsageError extends PunchgateError {
  static readonly NAME = 'UsageError'
  readonly kind = 'usage'

  constructor (message: string) {
    super(message)
    this.name = UsageError.NAME
  }
}

/** The service manager (systemd --user, launchd) is missing, unreachable or refused a request. */
export class ServiceError extends PunchgateError {
  static readonly NAME = 'ServiceError'
  readonly kind = 'runtime'

  constructor (message: string) {
    super(message)
    this.name = ServiceError.NAME
  }
}

function isUsageError (err: unknown): boolean {
  return err instanceof Error && (err as Partial<PunchgateError>).kind === 'usage'
}

/** Writes `punchgate: <message>` (the stack only when `showStack`) and returns the exit code. */
export function reportError (err: unknown, stderr: Output, showStack = false): number {
  const usage = isUsageError(err)
  const message = err instanceof Error ? err.message : String(err)
  // yargs words some errors over several lines; one line keeps stderr greppable.
  const line = message.replace(/\s*\n\s*/g, ' ')
  stderr.write(`punchgate: ${line}${usage ? ' (see punchgate --help)' : ''}\n`)
  if (showStack && err instanceof Error && err.stack != null) {
    stderr.write(`${err.stack}\n`)
  }
  return usage ? EXIT_USAGE : EXIT_RUNTIME
}
