/**
 * `punchgate connect SVC` / `punchgate connect PEER:SVC`: one tunnel connection on
 * stdin/stdout, e.g. `ssh -o ProxyCommand='punchgate connect ssh' host`.
 * Through the local daemon's control socket when one runs (its connections are reused);
 * otherwise a short-lived node is started with the given flags, serves this one session
 * on a private control socket of its own, and stops. stdout carries only tunnel bytes:
 * logs go to stderr.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import {
  ControlServer, DaemonNotRunningError, defaultControlPath, defaultIdentityPath, loadOrCreateIdentity, parseServiceName,
  requestConnect, startNode, validateConfig, type NodeConfig
} from '@punchgate/node'
import { bridgeStdio } from '../bridge.ts'
import type { Command, Io } from '../command.ts'
import { withEnv, type EnvKind } from '../env.ts'
import { RuntimeError, UsageError } from '../errors.ts'
import { createLogger, LOG_LEVELS, type LogLevel } from '../logger.ts'
import { controlOption, identityOption, knownProvidersOption, knownProvidersPathFor, lastWins } from '../options.ts'

export interface ConnectArgs {
  target: string
  identity?: string
  listen?: string[]
  bootstrap?: string[]
  mdns?: boolean
  control?: string
  'log-level'?: LogLevel
  trust?: string[]
  'known-providers'?: string
}

/** Only the flags a short-lived node needs: PUNCHGATE_EXPOSE or _TUNNEL in the environment must not make it bind anything. */
const ENV_KINDS: { [K in Exclude<keyof ConnectArgs, 'target'>]-?: EnvKind } = {
  identity: 'string',
  listen: 'list',
  bootstrap: 'list',
  mdns: 'boolean',
  control: 'string',
  'log-level': LOG_LEVELS,
  trust: 'list',
  'known-providers': 'string'
}

export interface ConnectTarget {
  service: string
  peer?: string
}

export function parseConnectTarget (value: string): ConnectTarget {
  const bad = (reason: string): UsageError => new UsageError(`connect ${JSON.stringify(value)}: ${reason}`)
  const colon = value.indexOf(':')
  const service = value.slice(colon + 1)
  try {
    parseServiceName('connect', value, service)
  } catch {
    throw bad(`expected SERVICE or PEER:SERVICE; a service name is 1-63 letters, digits, '.', '_' or '-'`)
  }
  if (colon < 0) return { service }
  const peer = value.slice(0, colon)
  try {
    peerIdFromString(peer)
  } catch {
    throw bad(`${JSON.stringify(peer)} is not a peer id`)
  }
  return { service, peer }
}

export interface ConnectSettings {
  target: ConnectTarget
  controlPath: string
  /** For the short-lived node, when no daemon runs. */
  config: NodeConfig
  identityPath: string
  logLevel: LogLevel
}

export function connectSettings (args: ConnectArgs, env: NodeJS.ProcessEnv): ConnectSettings {
  const options = withEnv(args, ENV_KINDS, env)
  return {
    target: parseConnectTarget(args.target),
    controlPath: options.control ?? defaultControlPath(env),
    // No periodic pings: the node lives for one connection.
    config: validateConfig({
      listen: options.listen,
      bootstrap: options.bootstrap,
      mdns: options.mdns,
      rttIntervalMs: 0,
      trust: options.trust,
      knownProviders: resolve(options['known-providers'] ?? knownProvidersPathFor(options.identity ?? defaultIdentityPath(env), env))
    }),
    identityPath: options.identity ?? defaultIdentityPath(env),
    // The one error line says what failed; warnings would repeat it on the user's terminal.
    logLevel: options['log-level'] ?? 'error'
  }
}

function repeatable (describe: string) {
  return { type: 'string', array: true, requiresArg: true, describe: `${describe} (repeatable)` } as const
}

export const connectCommand: Command<ConnectArgs> = {
  command: 'connect <target>',
  describe: 'join stdin/stdout to service SVC (by name) or PEER:SVC, e.g. as an ssh ProxyCommand',
  builder: yargs => yargs
    .positional('target', { type: 'string', demandOption: true, describe: 'SVC or PEER:SVC' })
    .options({
      control: controlOption,
      identity: identityOption,
      bootstrap: repeatable('without a running daemon: bootstrap peer multiaddr for a short-lived node'),
      listen: repeatable('without a running daemon: multiaddr the short-lived node listens on'),
      mdns: { type: 'boolean', describe: 'without a running daemon: find peers on the local network by mDNS' },
      trust: repeatable('without a running daemon: use only this provider of SVC (else the pinned one, else the first, pinned)'),
      'known-providers': knownProvidersOption,
      'log-level': {
        choices: LOG_LEVELS,
        requiresArg: true,
        coerce: (level: LogLevel | LogLevel[]) => lastWins(level),
        describe: 'least severe level logged (to stderr)',
        defaultDescription: 'error'
      }
    }),
  run: async (args, io) => {
    const settings = connectSettings(args, io.env)
    const stdin = io.stdin ?? process.stdin
    try {
      const session = await requestConnect(settings.controlPath, settings.target)
      await bridgeStdio(session.socket, stdin, io.stdout)
      return 0
    } catch (err) {
      if ((err as Error).name !== DaemonNotRunningError.NAME) throw err
    }
    return connectStandalone(settings, io, stdin)
  }
}

async function connectStandalone (settings: ConnectSettings, io: Io, stdin: NodeJS.ReadableStream): Promise<number> {
  const { config } = settings
  if (config.bootstrap.length === 0 && !config.mdns) {
    throw new RuntimeError(`no punchgate daemon is running (nothing answers on ${settings.controlPath}); ` +
      'give --bootstrap (or --mdns) to connect without one')
  }
  const identity = await loadOrCreateIdentity(settings.identityPath)
  // stdout is the tunnel's: every log record goes to stderr.
  const logger = await createLogger(settings.logLevel, { stdout: io.stderr, stderr: io.stderr })
  const node = await startNode(config, { privateKey: identity.privateKey, logger })
  const dir = await mkdtemp(join(tmpdir(), 'punchgate-connect-'))
  try {
    const control = await ControlServer.listen(join(dir, 'control.sock'))
    control.serve(node)
    try {
      const session = await requestConnect(control.path, settings.target)
      await bridgeStdio(session.socket, stdin, io.stdout)
    } finally {
      await control.close()
    }
  } finally {
    await node.stop()
    await rm(dir, { recursive: true, force: true })
  }
  return 0
}
