/** `punchgate logs [-f] [-n N]`: the service's log, from the journal or launchd's log file. */
import type { Command } from '../command.ts'
import { UsageError } from '../errors.ts'
import { serviceContext } from '../service/context.ts'

export interface LogsArgs {
  follow: boolean
  lines: number
}

export const logsCommand: Command<LogsArgs> = {
  command: 'logs',
  describe: "print the service's log (journalctl --user, or the launchd log file)",
  builder: yargs => yargs.options({
    follow: { alias: 'f', type: 'boolean', default: false, describe: 'keep printing new lines' },
    lines: { alias: 'n', type: 'number', default: 50, requiresArg: true, describe: 'how many of the last lines to print' }
  }),
  run: async (args, io) => {
    if (!Number.isInteger(args.lines) || args.lines < 0) {
      throw new UsageError(`--lines ${String(args.lines)}: expected a whole number, 0 or more`)
    }
    const { manager } = serviceContext(io)
    return manager.logs({ follow: args.follow, lines: args.lines }, io)
  }
}
