/**
 * What the service manager says about the punchgate service, for `punchgate status`.
 * Kept apart so it can give way to the service-mode module (`punchgate up`) at merge:
 * only `serviceState()` and its result type are used elsewhere.
 */
import { execFile } from 'node:child_process'

/** The systemd user unit and the launchd agent label that `punchgate up` installs. */
export const SYSTEMD_UNIT = 'punchgate'
export const LAUNCHD_LABEL = 'io.punchgate.daemon'

const QUERY_TIMEOUT_MS = 5_000

export interface ServiceState {
  manager: 'systemd' | 'launchd' | 'none'
  /** systemd's word (active, inactive, failed, activating...), launchd's state, or `unavailable`. */
  state: string
  /** Why the state is `unavailable` (no systemctl, no user bus...). */
  detail?: string
}

interface Run {
  code: number
  stdout: string
  stderr: string
  missing: boolean
}

async function run (command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise(resolve => {
    execFile(command, args, { env, timeout: QUERY_TIMEOUT_MS }, (err, stdout, stderr) => {
      const code = err == null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, stdout, stderr, missing: (err as NodeJS.ErrnoException | null)?.code === 'ENOENT' })
    })
  })
}

function firstLine (text: string): string {
  return text.split('\n').map(line => line.trim()).find(line => line !== '') ?? ''
}

export async function serviceState (env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): Promise<ServiceState> {
  if (platform === 'linux') {
    const result = await run('systemctl', ['--user', 'is-active', SYSTEMD_UNIT], env)
    if (result.missing) return { manager: 'systemd', state: 'unavailable', detail: 'systemctl not found' }
    // is-active prints the state and exits non-zero unless active; no state means it could not ask.
    const state = firstLine(result.stdout)
    if (state !== '') return { manager: 'systemd', state }
    return { manager: 'systemd', state: 'unavailable', detail: firstLine(result.stderr) || `systemctl exited with ${result.code}` }
  }
  if (platform === 'darwin') {
    const uid = process.getuid?.() ?? 0
    const result = await run('launchctl', ['print', `gui/${uid}/${LAUNCHD_LABEL}`], env)
    if (result.missing) return { manager: 'launchd', state: 'unavailable', detail: 'launchctl not found' }
    if (result.code !== 0) return { manager: 'launchd', state: 'not-loaded' }
    const state = /^\s*state = (.+)$/m.exec(result.stdout)?.[1]?.trim()
    return { manager: 'launchd', state: state ?? 'loaded' }
  }
  return { manager: 'none', state: 'unavailable', detail: `no service manager support on ${platform}` }
}
