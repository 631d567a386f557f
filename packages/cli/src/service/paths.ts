/**
 * Where service mode keeps its files. The settings file is in the XDG config dir on
 * both platforms; the unit goes where the platform's service manager looks for it.
 */
import { homedir } from 'node:os'
import { join } from 'node:path'
import { ServiceError } from '../errors.ts'

export type ServicePlatform = 'linux' | 'darwin'

/** The systemd unit is `punchgate.service`; the launchd job's label is `punchgate`. */
export const SERVICE_NAME = 'punchgate'

export interface ServicePaths {
  /** The PUNCHGATE_* settings the service runs with. */
  envFile: string
  /** The systemd unit or the launchd property list. */
  unitFile: string
  /** launchd only: stdout and stderr of the daemon (systemd sends them to the journal). */
  logFile: string | undefined
}

export function servicePlatform (platform: NodeJS.Platform): ServicePlatform {
  if (platform === 'linux' || platform === 'darwin') return platform
  throw new ServiceError(`service mode supports Linux (systemd) and macOS (launchd), not ${platform}: ` +
    'run `punchgate` under your own supervisor, or use the container image')
}

export function servicePaths (platform: ServicePlatform, env: NodeJS.ProcessEnv): ServicePaths {
  const home = nonEmpty(env.HOME) ?? homedir()
  const configHome = nonEmpty(env.XDG_CONFIG_HOME) ?? join(home, '.config')
  const envFile = join(configHome, 'punchgate', 'punchgate.env')
  if (platform === 'linux') {
    return { envFile, unitFile: join(configHome, 'systemd', 'user', `${SERVICE_NAME}.service`), logFile: undefined }
  }
  return {
    envFile,
    unitFile: join(home, 'Library', 'LaunchAgents', `${SERVICE_NAME}.plist`),
    logFile: join(home, 'Library', 'Logs', `${SERVICE_NAME}.log`)
  }
}

function nonEmpty (value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}
