/**
 * Every call to the platform's service manager: systemctl and journalctl for systemd's
 * user manager, launchctl and tail for launchd. Commands are looked up on the PATH of
 * the environment given (tests put recording fakes there).
 */
import { execFile, spawn } from 'node:child_process'
import { mkdir, rm, stat, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Output } from '../command.ts'
import { ServiceError } from '../errors.ts'
import { SERVICE_NAME, type ServicePaths, type ServicePlatform } from './paths.ts'

export interface LogOptions {
  follow: boolean
  lines: number
}

export interface ServiceManager {
  /** How messages name the manager, e.g. `systemd --user`. */
  readonly name: string
  /** Writes `unit` to the unit file, loads it, and starts the daemon (restarts it when running). */
  install: (unit: string) => Promise<void>
  /** Stops the daemon, unloads and removes the unit; false when none was installed. */
  uninstall: () => Promise<boolean>
  /** Copies the daemon's log to `out`; resolves with the reader's exit code. */
  logs: (options: LogOptions, out: { stdout: Output, stderr: Output }) => Promise<number>
}

export interface ManagerContext {
  paths: ServicePaths
  /** The environment the manager's commands run in (its PATH finds them). */
  env: NodeJS.ProcessEnv
  /** launchd's per-user domain is gui/<uid>. */
  uid: number
}

export function serviceManager (platform: ServicePlatform, context: ManagerContext): ServiceManager {
  return platform === 'linux' ? systemd(context) : launchd(context)
}

/** systemctl's words for "no user manager to talk to" (no login session, no systemd). */
const NO_USER_MANAGER = /Failed to connect to (user scope )?bus|not been booted with systemd|XDG_RUNTIME_DIR/i

function systemd ({ paths, env }: ManagerContext): ServiceManager {
  const unit = `${SERVICE_NAME}.service`
  const unavailable = (reason: string): ServiceError => new ServiceError(
    `systemd --user is not available (${reason}); the settings are saved in ${paths.envFile}: ` +
    'log in as this user directly (ssh or a console, not su or sudo) and run `punchgate up` again, ' +
    `or run \`set -a; . ${paths.envFile}; punchgate\` under another supervisor`)
  const systemctl = async (...args: string[]): Promise<void> => {
    const exit = await run('systemctl', ['--user', ...args], env, unavailable)
    if (exit.code === 0) return
    const reason = firstLine(exit.stderr) ?? `exit status ${exit.code}`
    throw NO_USER_MANAGER.test(exit.stderr)
      ? unavailable(reason)
      : new ServiceError(`systemctl --user ${args.join(' ')} failed: ${reason}`)
  }

  return {
    name: 'systemd --user',
    install: async text => {
      // A read-only question first: an unreachable manager is reported before a unit is written.
      await systemctl('show-environment')
      await writeUnit(paths.unitFile, text)
      await systemctl('daemon-reload')
      await systemctl('enable', unit)
      // restart starts a stopped unit too, and makes a running one pick up new settings.
      await systemctl('restart', unit)
    },
    uninstall: async () => {
      if (!await exists(paths.unitFile)) return false
      await systemctl('disable', '--now', unit)
      await rm(paths.unitFile)
      await systemctl('daemon-reload')
      return true
    },
    logs: async (options, out) => {
      const args = ['--user', `--unit=${unit}`, `--lines=${options.lines}`, '--output=cat']
      if (options.follow) args.push('--follow')
      return stream('journalctl', args, env, out, reason => new ServiceError(`cannot read the journal: ${reason}`))
    }
  }
}

function launchd ({ paths, env, uid }: ManagerContext): ServiceManager {
  const domain = `gui/${uid}`
  const job = `${domain}/${SERVICE_NAME}`
  const unavailable = (reason: string): ServiceError => new ServiceError(`launchd is not available (${reason})`)
  const launchctl = async (...args: string[]): Promise<void> => {
    const exit = await run('launchctl', args, env, unavailable)
    if (exit.code !== 0) {
      throw new ServiceError(`launchctl ${args.join(' ')} failed: ${firstLine(exit.stderr) ?? `exit status ${exit.code}`}`)
    }
  }
  // Unloading a job that is not loaded fails; either way it is not loaded afterwards.
  const bootout = async (): Promise<void> => { await run('launchctl', ['bootout', job], env, unavailable) }
  const logFile = paths.logFile as string

  return {
    name: 'launchd',
    install: async text => {
      await bootout()
      await writeUnit(paths.unitFile, text)
      await mkdir(dirname(logFile), { recursive: true })
      await launchctl('bootstrap', domain, paths.unitFile)
      // RunAtLoad has usually started it already; kickstart without -k leaves a running job alone.
      await launchctl('kickstart', job)
    },
    uninstall: async () => {
      if (!await exists(paths.unitFile)) return false
      await bootout()
      await rm(paths.unitFile)
      return true
    },
    logs: async (options, out) => {
      if (!await exists(logFile)) {
        throw new ServiceError(`no log file at ${logFile}: start the service with \`punchgate up\``)
      }
      const args = ['-n', String(options.lines)]
      // -F keeps following across a rotated or recreated file.
      if (options.follow) args.push('-F')
      args.push(logFile)
      return stream('tail', args, env, out, reason => new ServiceError(`cannot read ${logFile}: ${reason}`))
    }
  }
}

interface Exit {
  code: number
  stderr: string
}

type Unavailable = (reason: string) => ServiceError

/** Runs a command to completion; a missing command is `unavailable`. */
async function run (command: string, args: string[], env: NodeJS.ProcessEnv, unavailable: Unavailable): Promise<Exit> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env }, (err, _stdout, stderr) => {
      if (err == null) {
        resolve({ code: 0, stderr })
      } else if (typeof err.code === 'number') {
        resolve({ code: err.code, stderr })
      } else {
        reject(unavailable(err.code === 'ENOENT' ? `${command} not found` : err.message))
      }
    })
  })
}

/** Runs a command with its output copied to `out`; resolves with its exit code. */
async function stream (command: string, args: string[], env: NodeJS.ProcessEnv, out: { stdout: Output, stderr: Output }, failed: Unavailable): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.pipe(out.stdout, { end: false })
    child.stderr.pipe(out.stderr, { end: false })
    child.on('error', err => {
      const code = (err as NodeJS.ErrnoException).code
      reject(failed(code === 'ENOENT' ? `${command} not found` : err.message))
    })
    child.on('close', code => { resolve(code ?? 1) })
  })
}

async function writeUnit (path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, text)
}

async function exists (path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false)
}

function firstLine (text: string): string | undefined {
  return text.split('\n').map(part => part.trim()).find(part => part !== '')
}
