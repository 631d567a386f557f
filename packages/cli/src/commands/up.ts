/**
 * `punchgate up [daemon options]`: stores the options in the settings file and runs the
 * daemon as a per-user service with them. Options not given keep their stored value.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { defaultIdentityPath, loadOrCreateIdentity } from '@punchgate/node'
import type { Command, Io } from '../command.ts'
import { CONFIG_VARIABLE, daemonFlagChanges, IDENTITY_VARIABLE } from '../service/daemon-flags.ts'
import { serviceContext } from '../service/context.ts'
import { applySettings, readSettings } from '../service/env-file.ts'
import { launchdPlist, systemdUnit } from '../service/units.ts'
import { BIN_PATH } from '../package-dir.ts'
import { daemonSettings, readDaemonConfigFile, runOptions, type RunArgs } from './run.ts'

export const upCommand: Command<RunArgs> = {
  command: 'up',
  describe: 'run the daemon as a per-user service with these options (systemd --user, launchd)',
  builder: yargs => yargs.options(runOptions).usage('$0 up [options]\n\n' +
    'Stores the options in ~/.config/punchgate/punchgate.env ($XDG_CONFIG_HOME if set) and runs the daemon ' +
    'as a systemd user service (Linux) or a launchd agent (macOS) with them. Options not given keep their ' +
    "stored value; an empty one (--bootstrap '') removes it. With --config FILE the service reads that file " +
    '(its absolute path is stored); the stored options beat it.'),
  run: async (args, io) => installService(args, io)
}

export async function installService (args: RunArgs, io: Io): Promise<number> {
  const { platform, paths, manager } = serviceContext(io)
  const stored = await readFile(paths.envFile, 'utf8').catch(() => undefined)
  let changes = daemonFlagChanges(args as Record<string, unknown>, process.cwd())
  const pending = readSettings(applySettings(stored, changes))
  const configFile = pending.get(CONFIG_VARIABLE)
  const identityInFile = configFile != null && readDaemonConfigFile(configFile).values.identity != null
  if (!pending.has(IDENTITY_VARIABLE) && !identityInFile) {
    // Pinned on the first run, so the service keeps its peer id whatever its environment
    // (a pin here would beat the config file's `identity`, which pins it as well).
    changes = new Map([[IDENTITY_VARIABLE, defaultIdentityPath(io.env, platform)], ...changes])
  }
  const text = applySettings(stored, changes)
  // The settings are checked as the daemon will read them, before anything is written.
  const settings = daemonSettings({}, Object.fromEntries(readSettings(text)))
  const identity = await loadOrCreateIdentity(settings.identityPath)

  await mkdir(dirname(paths.envFile), { recursive: true })
  await writeFile(paths.envFile, text, { mode: 0o600 })
  const unitPaths = { node: process.execPath, cli: BIN_PATH, envFile: paths.envFile, logFile: paths.logFile ?? '' }
  await manager.install(platform === 'linux' ? systemdUnit(unitPaths) : launchdPlist(unitPaths))

  const lines = [
    `punchgate: running as a ${manager.name} service`,
    `  peer id   ${identity.peerId}`,
    `  settings  ${paths.envFile}`,
    `  unit      ${paths.unitFile}`,
    `  logs      punchgate logs -f${paths.logFile != null ? ` (${paths.logFile})` : ''}`
  ]
  if (platform === 'linux') {
    lines.push('It runs while you are logged in; `sudo loginctl enable-linger $USER` keeps it running without a login and starts it at boot.')
  }
  io.stdout.write(`${lines.join('\n')}\n`)
  return 0
}
