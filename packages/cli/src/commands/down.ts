/** `punchgate down`: stops and removes the service; the settings file and the identity stay. */
import { readFile } from 'node:fs/promises'
import type { Command } from '../command.ts'
import { IDENTITY_VARIABLE } from '../service/daemon-flags.ts'
import { serviceContext } from '../service/context.ts'
import { readSettings } from '../service/env-file.ts'

export const downCommand: Command<object> = {
  command: 'down',
  describe: 'stop the service and remove it (the settings file and the identity are kept)',
  builder: yargs => yargs,
  run: async (_args, io) => {
    const { paths, manager } = serviceContext(io)
    if (!await manager.uninstall()) {
      io.stdout.write(`punchgate: no service installed (no ${paths.unitFile})\n`)
      return 0
    }
    const stored = await readFile(paths.envFile, 'utf8').catch(() => '')
    const identity = readSettings(stored).get(IDENTITY_VARIABLE)
    io.stdout.write(`punchgate: service stopped and removed; kept ${paths.envFile}${identity != null ? ` and ${identity}` : ''}\n`)
    return 0
  }
}
