/**
 * The default command: run the daemon until SIGINT or SIGTERM, then stop it cleanly.
 * It logs nothing itself; every record comes from the library's events.
 */
import { constants } from 'node:os'
import { resolve } from 'node:path'
import type { Options } from 'yargs'
import {
  ControlServer, DEFAULT_LISTEN, DRAIN_TIMEOUT_MS, parseDuration, DEFAULT_RTT_INTERVAL_MS, defaultControlPath, defaultIdentityPath, loadOrCreateIdentity,
  readAllowFile, readSwarmKey, readTrustFile, ROLE_SETTINGS, startNode, validateConfig, type NodeConfig, type RoleSetting
} from '@punchgate/node'
import type { Command, Io } from '../command.ts'
import { blameConfigFile, readConfigFile, type ConfigFile } from '../config-file.ts'
import { withEnv, type EnvKind } from '../env.ts'
import { createLogger, LOG_LEVELS, type LogLevel } from '../logger.ts'
import { controlOption, identityOption, knownProvidersOption, knownProvidersPathFor, lastWins } from '../options.ts'

export interface RunArgs {
  identity?: string
  role?: RoleSetting
  listen?: string[]
  announce?: string[]
  bootstrap?: string[]
  expose?: string[]
  tunnel?: string[]
  'tunnel-by-name'?: string[]
  'log-level'?: LogLevel
  mdns?: boolean
  autonat?: boolean
  'port-mapping'?: boolean
  'udp-punch'?: boolean
  'udp-punch-port'?: number
  control?: string
  metrics?: string
  'rtt-interval'?: number
  allow?: string[]
  'allow-file'?: string
  'allow-any'?: boolean
  'expose-net'?: string[]
  'max-sessions'?: string
  'max-sessions-per-peer'?: string
  'max-connections'?: string
  'relay-mode'?: string
  'relay-allow'?: 'any' | 'allowed'
  'relay-max-reservations'?: string
  'relay-max-bytes'?: string
  'relay-max-duration'?: string
  'relay-splice'?: string
  'swarm-key'?: string
  'udp-idle-timeout'?: string
  'drain-timeout'?: string
  trust?: string[]
  'trust-file'?: string
  'known-providers'?: string
  config?: string
}

const RELAY_ALLOW = ['any', 'allowed'] as const

const ENV_KINDS: { [K in keyof RunArgs]-?: EnvKind } = {
  identity: 'path',
  role: ROLE_SETTINGS,
  listen: 'list',
  announce: 'list',
  bootstrap: 'list',
  expose: 'specs',
  tunnel: 'list',
  'tunnel-by-name': 'list',
  'log-level': LOG_LEVELS,
  mdns: 'boolean',
  autonat: 'boolean',
  'port-mapping': 'boolean',
  'udp-punch': 'boolean',
  'udp-punch-port': 'number',
  control: 'path',
  metrics: 'string',
  'rtt-interval': 'number',
  allow: 'list',
  'allow-file': 'path',
  'allow-any': 'boolean',
  'expose-net': 'specs',
  'max-sessions': 'string',
  'max-sessions-per-peer': 'string',
  'max-connections': 'string',
  'relay-mode': 'string',
  'relay-allow': RELAY_ALLOW,
  'relay-max-reservations': 'string',
  'relay-max-bytes': 'string',
  'relay-max-duration': 'string',
  'relay-splice': 'string',
  'swarm-key': 'path',
  'udp-idle-timeout': 'string',
  'drain-timeout': 'string',
  trust: 'list',
  'trust-file': 'path',
  'known-providers': 'path',
  config: 'path'
}

/** A config file takes every daemon option but --config itself. */
const { config: _config, ...FILE_KINDS } = ENV_KINDS

/** Reads and checks a daemon config file (`--config`); throws ConfigFileError. */
export function readDaemonConfigFile (path: string): ConfigFile {
  return readConfigFile(path, FILE_KINDS)
}

function repeatable (describe: string) {
  return { type: 'string', array: true, requiresArg: true, describe: `${describe} (repeatable)` } as const
}

/** A single-value option taken as text (the library parses it and names it in any error); the last one wins. */
function single (describe: string, defaultDescription?: string) {
  return {
    type: 'string',
    requiresArg: true,
    coerce: (value: string | string[]) => lastWins(value),
    describe,
    ...(defaultDescription != null ? { defaultDescription } : {})
  } as const
}

/** The daemon's options; `punchgate up` accepts the same ones and stores them in its env file. */
export const runOptions = {
  identity: identityOption,
  listen: { ...repeatable("multiaddr to listen on; 'none' for no listener (reachable through the relay only)"), defaultDescription: DEFAULT_LISTEN.join(' ') },
  announce: repeatable('multiaddr to advertise instead of the listen addresses, e.g. a VPS\'s public address behind 1:1 NAT'),
  bootstrap: repeatable('bootstrap peer multiaddr, ending in /p2p/<peer id>; none makes this a public node'),
  role: {
    choices: ROLE_SETTINGS,
    requiresArg: true,
    coerce: (value: RoleSetting | RoleSetting[]) => lastWins(value),
    describe: 'public: DHT server, relay and splice host for private peers (with --bootstrap: joins through them too); ' +
      'private: never one (needs --bootstrap); auto: public without --bootstrap, else private',
    defaultDescription: 'auto'
  },
  expose: repeatable('publish a local service as NAME=HOST:PORT[/udp][?allow=PEER_ID,...|any], for the peers of --allow or ?allow= (or --allow-any)'),
  'expose-net': repeatable('let peers choose the destination, inside these networks and ports: NAME=CIDR[,CIDR...]:PORTS[/udp][?allow=PEER_ID,...|any]'),
  tunnel: repeatable('listen on BIND (HOST:PORT[/udp]) and tunnel to service SVC of peer PEER, as PEER:SVC@BIND[>DEST_IP:PORT]'),
  'tunnel-by-name': repeatable('listen on BIND and tunnel to a peer that publishes SVC and is trusted (--trust, ?peer=, else the first one, pinned), as SVC@BIND[/udp][>DEST_IP:PORT][?peer=PEER_ID,...]'),
  trust: repeatable('by-name tunnels (and connect) use only this provider; without --trust, ?peer= or a pin, the first provider used is pinned'),
  'trust-file': single('file of trusted provider ids, one per line, # comments (like --allow-file); adds to --trust'),
  'known-providers': knownProvidersOption,
  config: single('TOML file of daemon options, keyed by the long flag names (docs/configuration.md); flags and the environment beat it'),
  allow: repeatable('only this peer id may use services that have no ?allow= list of their own'),
  'allow-file': single('file of allowed peer ids, one per line, # comments; adds to --allow'),
  'allow-any': {
    type: 'boolean',
    describe: 'open services without a list of their own to every peer that can connect (else such a service stops the daemon at start, except in a --swarm-key mesh, whose members may use it)',
    defaultDescription: 'false'
  },
  'max-sessions': single('tunnelled connections and UDP sessions this node serves at once', 'no limit'),
  'max-sessions-per-peer': single('the same, per peer', 'no limit'),
  'max-connections': single('open libp2p connections at most, all peers together (each relay slot holds one)', '300; a public node: --relay-max-reservations + 100 if more'),
  'swarm-key': single('private network key file (make one with punchgate swarm-key); peers without it cannot connect; TCP only'),
  'relay-mode': single('auto (a bootstrap\'s relay), off (direct only), or the multiaddr of the relay to use', 'auto'),
  'relay-allow': {
    choices: RELAY_ALLOW,
    requiresArg: true,
    coerce: (value: 'any' | 'allowed' | Array<'any' | 'allowed'>) => lastWins(value),
    describe: 'public node: relay for any peer, or only for --allow peers',
    defaultDescription: 'any'
  },
  'relay-max-reservations': single('public node: relay slots held at once', '128'),
  'relay-max-bytes': single('public node: bytes per relayed connection with a stranger (peers on --allow and swarm-key members: no cap)', '4GiB'),
  'relay-max-duration': single('public node: lifetime of a relayed connection with a stranger (peers on --allow and swarm-key members: no cap)', '24h'),
  'relay-splice': single('public node: HOST:PORT where the two ends of a relayed connection meet to be spliced (port 0: any), or off (circuits only)', 'the TCP listen host, its port + 1 (4001: 4002; any when the TCP port is 0)'),
  'drain-timeout': single('on SIGINT/SIGTERM, how long open tunnel connections get to finish (0: cut at once); a second signal exits at once', '8s'),
  'udp-idle-timeout': single('close a UDP session after this long without a datagram either way', '2m'),
  'log-level': {
    choices: LOG_LEVELS,
    requiresArg: true,
    coerce: (level: LogLevel | LogLevel[]) => lastWins(level),
    describe: 'least severe level logged',
    defaultDescription: 'info'
  },
  mdns: { type: 'boolean', describe: 'find and join peers on the local network by mDNS', defaultDescription: 'false' },
  autonat: { type: 'boolean', describe: 'ask peers whether this node is publicly reachable', defaultDescription: 'false' },
  'port-mapping': {
    type: 'boolean',
    describe: 'private node: ask the router (NAT-PMP, PCP, UPnP-IGD) to forward the listen ports and announce the mapped address; --no-port-mapping turns it off',
    defaultDescription: 'true'
  },
  'udp-punch': {
    type: 'boolean',
    describe: 'punch a UDP path (udx) beside the TCP one, and tell peers their UDP mapping; --no-udp-punch turns it off (TCP punching only)',
    defaultDescription: 'true'
  },
  'udp-punch-port': {
    type: 'number',
    requiresArg: true,
    coerce: (port: number | number[]) => lastWins(port),
    describe: 'the UDP port of the UDP punching socket (a public node behind a firewall opens it)',
    defaultDescription: 'any free port'
  },
  control: controlOption,
  metrics: {
    type: 'string',
    requiresArg: true,
    coerce: (addr: string | string[]) => lastWins(addr),
    describe: 'serve Prometheus metrics at http://HOST:PORT/metrics'
  },
  'rtt-interval': {
    type: 'number',
    requiresArg: true,
    coerce: (seconds: number | number[]) => lastWins(seconds),
    describe: 'seconds between pings of connected peers, logged as peer.rtt (0: off)',
    defaultDescription: String(DEFAULT_RTT_INTERVAL_MS / 1000)
  }
} as const satisfies Record<keyof RunArgs, Options>

export const runCommand: Command<RunArgs> = {
  command: '$0',
  describe: 'run the daemon: expose local services and open tunnels to peers',
  builder: yargs => yargs.options(runOptions),
  run: async (args, io) => {
    const trap = trapShutdownSignals()
    try {
      return await runDaemon(args, io, trap.signal)
    } finally {
      trap.release()
    }
  }
}

/** What the daemon runs with: flags, else the environment, else the --config file, else the defaults; validated. */
export interface DaemonSettings {
  config: NodeConfig
  identityPath: string
  drainMs: number
  controlPath: string
  logLevel: LogLevel
}

/** Throws ConfigError or UsageError (both usage errors) before anything is started. */
export function daemonSettings (args: RunArgs, env: NodeJS.ProcessEnv): DaemonSettings {
  const given = withEnv(args, ENV_KINDS, env)
  if (given.config == null) return settingsFrom(given, env)
  const file = readDaemonConfigFile(given.config)
  // Flags and the environment beat the file: it fills only the options they left out.
  const fromFile = new Set(Object.keys(file.values).filter(key => given[key as keyof RunArgs] === undefined))
  const options = { ...given } as Record<string, unknown>
  for (const key of fromFile) options[key] = file.values[key]
  try {
    return settingsFrom(options as RunArgs, env)
  } catch (err) {
    throw blameConfigFile(err, file, fromFile)
  }
}

function settingsFrom (options: RunArgs, env: NodeJS.ProcessEnv): DaemonSettings {
  const allowFile = options['allow-file']
  const trustFile = options['trust-file']
  const swarmKey = options['swarm-key']
  const config = validateConfig({
    role: options.role,
    listen: options.listen,
    announce: options.announce,
    bootstrap: options.bootstrap,
    expose: options.expose,
    tunnel: options.tunnel,
    tunnelByName: options['tunnel-by-name'],
    mdns: options.mdns,
    autonat: options.autonat,
    portMapping: options['port-mapping'],
    udpPunch: options['udp-punch'],
    udpPunchPort: options['udp-punch-port'],
    metrics: options.metrics,
    rttIntervalMs: options['rtt-interval'] != null ? options['rtt-interval'] * 1000 : undefined,
    allow: [...options.allow ?? [], ...(allowFile != null ? readAllowFile(allowFile) : [])],
    allowAny: options['allow-any'],
    exposeNet: options['expose-net'],
    maxSessions: options['max-sessions'],
    maxSessionsPerPeer: options['max-sessions-per-peer'],
    maxConnections: options['max-connections'],
    relayMode: options['relay-mode'],
    relayAllow: options['relay-allow'],
    relayMaxReservations: options['relay-max-reservations'],
    relayMaxBytes: options['relay-max-bytes'],
    relayMaxDuration: options['relay-max-duration'],
    relaySplice: options['relay-splice'],
    udpIdleTimeout: options['udp-idle-timeout'],
    trust: [...options.trust ?? [], ...(trustFile != null ? readTrustFile(trustFile) : [])],
    knownProviders: resolve(options['known-providers'] ?? knownProvidersPathFor(options.identity ?? defaultIdentityPath(env), env)),
    ...(swarmKey != null ? { swarmKey: readSwarmKey(swarmKey) } : {})
  })
  const identityPath = resolve(options.identity ?? defaultIdentityPath(env))
  return {
    config,
    identityPath,
    controlPath: options.control ?? controlPathFor(identityPath, env),
    logLevel: options['log-level'] ?? 'info',
    drainMs: drainMs(options['drain-timeout'])
  }
}

/**
 * One identity, one daemon: a daemon with an identity of its own (several on one machine,
 * as in the README's walk-through) gets its control socket next to that key file, so they
 * never claim the same socket. The default identity keeps the default socket, where
 * `punchgate status` and `connect` look.
 */
function controlPathFor (identityPath: string, env: NodeJS.ProcessEnv): string {
  return identityPath === resolve(defaultIdentityPath(env)) ? defaultControlPath(env) : `${identityPath}.sock`
}

function drainMs (text: string | undefined): number {
  if (text == null) return DRAIN_TIMEOUT_MS
  return /^\s*0+\s*(ms|s|m|h|d)?\s*$/i.test(text) ? 0 : parseDuration('drain-timeout', text)
}

/** Starts the node, waits for `shutdown` to abort, stops the node. Resolves with the exit code. */
export async function runDaemon (args: RunArgs, io: Io, shutdown: AbortSignal): Promise<number> {
  const settings = daemonSettings(args, io.env)
  // Claimed first: a second daemon is told so before it binds or dials anything.
  const control = await ControlServer.listen(settings.controlPath)
  try {
    const identity = await loadOrCreateIdentity(settings.identityPath)
    const logger = await createLogger(settings.logLevel, io)
    const node = await startNode(settings.config, { privateKey: identity.privateKey, logger })
    control.serve(node)
    await aborted(shutdown)
    await control.close()
    await node.stop({ drainMs: settings.drainMs })
  } finally {
    await control.close()
  }
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
