/**
 * `punchgate status`: the service manager's view and the live daemon's (asked over the
 * control socket, so a daemon run in the foreground answers too).
 * Exit 0: a daemon answered; 3: none is running (as systemctl and LSB init scripts say
 * "not running"); 1: the socket exists but could not be used (permissions, bad reply).
 */
import { DaemonNotRunningError, defaultControlPath, printableJson, requestStatus, type DaemonStatus } from '@punchgate/node'
import type { Command, Io } from '../command.ts'
import { withEnv } from '../env.ts'
import { controlOption } from '../options.ts'
import { serviceContext } from '../service/context.ts'
import type { ServiceState } from '../service/manager.ts'
import { renderStatus } from '../view/status.ts'

export const EXIT_NOT_RUNNING = 3

export interface StatusArgs {
  control?: string
  json?: boolean
}

export const statusCommand: Command<StatusArgs> = {
  command: 'status',
  describe: 'show whether the daemon runs, and its peers, relay, services and tunnels (exit 3: not running)',
  builder: yargs => yargs.options({
    control: controlOption,
    json: { type: 'boolean', describe: 'print one JSON object instead of tables' }
  }),
  run: async (args, io) => {
    const { control } = withEnv({ control: args.control }, { control: 'string' }, io.env)
    const path = control ?? defaultControlPath(io.env)
    const [service, daemon] = await Promise.all([serviceState(io), askDaemon(path)])
    const report = { control: path, service, ...(daemon != null ? { daemon } : {}) }
    io.stdout.write(args.json === true
      ? `${printableJson({ control: path, service, daemon: daemon?.status ?? null, connects: daemon?.connects ?? null })}\n`
      : renderStatus(report))
    return daemon != null ? 0 : EXIT_NOT_RUNNING
  }
}

async function serviceState (io: Io): Promise<ServiceState> {
  try {
    return await serviceContext(io).manager.state()
  } catch (err) {
    // A platform without a supported service manager: only the live daemon can be asked.
    return { manager: 'none', state: 'unavailable', detail: (err as Error).message }
  }
}

async function askDaemon (path: string): Promise<DaemonStatus | undefined> {
  try {
    return await requestStatus(path)
  } catch (err) {
    if ((err as Error).name === DaemonNotRunningError.NAME) return undefined
    throw err
  }
}
