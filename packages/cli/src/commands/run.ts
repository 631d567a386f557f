/**
 * The default command: run the daemon until SIGINT or SIGTERM, then stop it cleanly.
 * It logs nothing itself; every record comes from the library's events.
 */
import { constants } from 'node:os'
import { DEFAULT_LISTEN, defaultIdentityPath, loadOrCreateIdentity, startNode, validateConfig, type NodeConfig } from '@punchgate/node'
import type { Command, Io } from '../command.ts'
import { withEnv, type EnvKind } from '../env.ts'
import { createLogger, LOG_LEVELS, type LogLevel } from '../logger.ts'
import { identityOption, lastWins } from '../options.ts'

export interface RunArgs {
  identity?: string
  listen?: string[]
  bootstrap?: string[]
  expose?: string[]
  tunnel?: string[]
  'tunnel-by-name'?: string[]
  'log-level'?: LogLevel
  mdns?: boolean
  autonat?: boolean
}

const ENV_KINDS: { [K in keyof RunArgs]-?: EnvKind } = {
  identity: 'string',
  listen: 'list',
  bootstrap: 'list',
  expose: 'list',
  tunnel: 'list',
  'tunnel-by-name': 'list',
  'log-level': LOG_LEVELS,
  mdns: 'boolean',
  autonat: 'boolean'
}

function repeatable (describe: string) {
  return { type: 'string', array: true, requiresArg: true, describe: `${describe} (repeatable)` } as const
}

export const runCommand: Command<RunArgs> = {
  command: '$0',
  describe: 'run the daemon: expose local services and open tunnels to peers',
  builder: yargs => yargs.options({
    identity: identityOption,
    listen: { ...repeatable("multiaddr to listen on; 'none' for no listener (reachable through the relay only)"), defaultDescription: DEFAULT_LISTEN.join(' ') },
    bootstrap: repeatable('bootstrap peer multiaddr, ending in /p2p/<peer id>; none makes this a public node'),
    expose: repeatable('publish a local TCP service as NAME=HOST:PORT'),
    tunnel: repeatable('listen on BIND (HOST:PORT) and tunnel to service SVC of peer PEER, as PEER:SVC@BIND'),
    'tunnel-by-name': repeatable('listen on BIND and tunnel to whichever peer publishes SVC, as SVC@BIND'),
    'log-level': {
      choices: LOG_LEVELS,
      requiresArg: true,
      coerce: (level: LogLevel | LogLevel[]) => lastWins(level),
      describe: 'least severe level logged',
      defaultDescription: 'info'
    },
    mdns: { type: 'boolean', describe: 'find and join peers on the local network by mDNS', defaultDescription: 'false' },
    autonat: { type: 'boolean', describe: 'ask peers whether this node is publicly reachable', defaultDescription: 'false' }
  }),
  run: async (args, io) => {
    const trap = trapShutdownSignals()
    try {
      return await runDaemon(args, io, trap.signal)
    } finally {
      trap.release()
    }
  }
}

/** What the daemon runs with: flags, else the environment, else the defaults; validated. */
export interface DaemonSettings {
  config: NodeConfig
  identityPath: string
  logLevel: LogLevel
}

/** Throws ConfigError or UsageError (both usage errors) before anything is started. */
export function daemonSettings (args: RunArgs, env: NodeJS.ProcessEnv): DaemonSettings {
  const options = withEnv(args, ENV_KINDS, env)
  const config = validateConfig({
    listen: options.listen,
    bootstrap: options.bootstrap,
    expose: options.expose,
    tunnel: options.tunnel,
    tunnelByName: options['tunnel-by-name'],
    mdns: options.mdns,
    autonat: options.autonat
  })
  return {
    config,
    identityPath: options.identity ?? defaultIdentityPath(env),
    logLevel: options['log-level'] ?? 'info'
  }
}

/** Starts the node, waits for `shutdown` to abort, stops the node. Resolves with the exit code. */
export async function runDaemon (args: RunArgs, io: Io, shutdown: AbortSignal): Promise<number> {
  const settings = daemonSettings(args, io.env)
  const identity = await loadOrCreateIdentity(settings.identityPath)
  const logger = createLogger(settings.logLevel, io)
  const node = await startNode(settings.config, { privateKey: identity.privateKey, logger })
  await aborted(shutdown)
  await node.stop()
  return 0
}

async function aborted (signal: AbortSignal): Promise<void> {
  if (signal.aborted) return
  await new Promise(resolve => signal.addEventListener('abort', resolve, { once: true }))
}

const SHUTDOWN_SIGNALS = ['SIGINT', 'SIGTERM'] as const

/** The part of `process` the trap uses; tests pass an EventEmitter. */
export interface SignalTarget {
  on: (signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void) => unknown
  off: (signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void) => unknown
  exit: (code: number) => void
}

/**
 * The first SIGINT/SIGTERM aborts `signal` for a clean stop. A second one exits at once
 * with the shell's 128+signo code: the way out when a clean stop hangs.
 */
export function trapShutdownSignals (target: SignalTarget = process): { signal: AbortSignal, release: () => void } {
  const controller = new AbortController()
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      target.exit(128 + constants.signals[signal])
      return
    }
    controller.abort(signal)
  }
  for (const name of SHUTDOWN_SIGNALS) target.on(name, onSignal)
  return {
    signal: controller.signal,
    release: () => { for (const name of SHUTDOWN_SIGNALS) target.off(name, onSignal) }
  }
}
