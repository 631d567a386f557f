/**
 * The compared setups. Each ends in the same target process and exposes one local TCP
 * port; `roots` are the processes in the middle, whose CPU and memory are measured.
 *   raw     the target itself: the ceiling
 *   socat   a plain user-space TCP relay (fork per connection, TCP_NODELAY)
 *   ssh     ssh -L through a throwaway sshd on loopback (OpenSSH defaults)
 *   direct  a punchgate tunnel between two daemons connected directly
 *   relay   a punchgate tunnel whose provider is reachable only through a relay daemon
 *   floor-tcp  a plain Node TCP forwarder (bench/floor.ts): Node's own floor, no TLS
 *   floor-tls  two Node processes, a new TLS 1.3 connection per tunnel connection: the
 *              least a Node tunnel with encryption costs, no libp2p (not in the default set)
 *   floor-mux  the same with one TLS connection and a minimal stream mux (no throughput steps)
 *   floor-libp2p  two js-libp2p nodes with Punchgate's connection stack and none of Punchgate
 *              (bench/floor-libp2p.ts): what js-libp2p itself costs
 *   floor-libp2p-mux  the same with floor-mux's mux inside one libp2p stream (no throughput steps)
 *   via-socat / via-node  a direct tunnel whose one connection passes through a bare relay
 *              (socat, or floor-tcp's Node pipe): the best a relay in the middle can do, as a
 *              splicing relay carries the same TLS bytes
 */
import { execFile } from 'node:child_process'
import { build, type Plugin } from 'esbuild'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { connect } from 'node:net'
import { promisify } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { Proc, freePort } from './proc.ts'
import { memory } from './procstat.ts'
import { MODE_ECHO } from './target.ts'
import { NODE_BUNDLE } from '../packages/cli/bundle-options.ts'

const run = promisify(execFile)
const root = join(import.meta.dirname, '..')
export const PUNCHGATE = join(root, 'packages/cli/bin/punchgate.js')
const READY_MS = 60_000

export type SetupName = 'raw' | 'socat' | 'ssh' | 'direct' | 'relay' | 'floor-tcp' | 'floor-tls' | 'floor-mux' | 'floor-libp2p' | 'floor-libp2p-mux' | 'via-socat' | 'via-node' | 'via-wan'

export const SETUP_LABELS: Record<SetupName, string> = {
  raw: 'raw TCP',
  socat: 'socat',
  ssh: 'ssh -L',
  direct: 'punchgate direct',
  relay: 'punchgate relay',
  'floor-tcp': 'node floor, tcp',
  'floor-tls': 'node floor, tls',
  'floor-mux': 'node floor, mux',
  'floor-libp2p': 'js-libp2p floor',
  'floor-libp2p-mux': 'js-libp2p floor, mux',
  'via-socat': 'direct via socat',
  'via-node': 'direct via node pipe',
  'via-wan': 'direct, 100 ms RTT'
}

/** The one-way delay of via-wan's path (bench/floor.ts delay): a round trip of 100 ms. */
const WAN_DELAY_MS = 50

export interface Setup {
  name: SetupName
  port: number
  /** Processes between the client and the target (trees: children count too). */
  roots: number[]
  /** How the setup ended up connected, for the report (e.g. the transport a tunnel took). */
  detail: string
  /** How the tunnel left its path (a relayed one gone direct, a connection dropped) since `sinceMs`, if it did. */
  changed?: (sinceMs: number) => string | undefined
  /** The private daemons among `roots` (a tunnel's two ends, not the relay). */
  daemons?: number[]
  /** Starts a fresh client of this kind against the running servers: its time to first byte. */
  coldStart?: (n: number, settleMs: number) => Promise<ColdStart>
}

export interface ColdStart {
  /** From spawning the client's process to the first byte echoed through its local port (ms). */
  firstByteMs: number
  /** The client's RSS once idle, holding its tunnels (punchgate: a private daemon with two). */
  idleRssBytes?: number
}

/**
 * Connects to `port` until a byte comes back through it: a refused connect (nothing
 * listening yet) or one closed before its echo is tried again. Resolves at the echo.
 */
export async function firstEcho (port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const echoed = await new Promise<boolean>(resolve => {
      const socket = connect({ host: '127.0.0.1', port, noDelay: true })
      const done = (ok: boolean): void => { socket.destroy(); resolve(ok) }
      socket.once('connect', () => socket.write(Uint8Array.of(MODE_ECHO, 0x2a)))
      socket.once('data', () => done(true))
      socket.once('error', () => done(false))
      socket.once('close', () => done(false))
      socket.setTimeout(Math.max(1, deadline - Date.now()), () => done(false))
    })
    if (echoed) return
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  throw new Error(`no echo through port ${port} within ${timeoutMs} ms`)
}

/** Transports the daemons listen on: the default is both, as a daemon without --listen does. */
export type Transports = 'tcp' | 'quic' | 'both'

export interface Context {
  dir: string
  logs: string
  targetPort: number
  transports: Transports
  procs: Proc[]
  /** When set, the daemons (and floor-libp2p's two processes) run under `node --cpu-prof` and write their profiles here on exit. */
  cpuProfileDir: string | undefined
  /** Extra Node options for the daemons (e.g. `--trace-gc`), for experiments. */
  daemonNodeOptions: string[]
  /** Extra environment for the daemons (e.g. MALLOC_ARENA_MAX=8), for experiments. */
  daemonEnv: Record<string, string>
  /** The relayed tunnel over the circuit only: the bootstrap does not splice (docs/splice.md). */
  circuit: boolean
}

function spawnProc (ctx: Context, name: string, command: string, args: string[], env?: NodeJS.ProcessEnv): Proc {
  const proc = new Proc(name, command, args, join(ctx.logs, `${name}.log`), env)
  ctx.procs.push(proc)
  return proc
}

/** The port a process we started prints as `listening PORT`, once it does. */
async function listeningPort (proc: Proc): Promise<number> {
  const deadline = Date.now() + READY_MS
  while (Date.now() < deadline) {
    const match = /listening (\d+)/.exec(readFileSync(proc.logFile, 'utf8'))
    if (match != null) return Number(match[1])
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error(`${proc.name} did not start; see ${proc.logFile}`)
}

export async function startTarget (ctx: Context): Promise<number> {
  return await listeningPort(spawnProc(ctx, 'target', process.execPath, [join(import.meta.dirname, 'target.ts'), '0']))
}

const FLOOR = join(import.meta.dirname, 'floor.ts')

/** The Node floor (bench/floor.ts): a plain forwarder, or a TLS consumer and provider pair. */
export async function startFloor (ctx: Context, name: 'floor-tcp' | 'floor-tls' | 'floor-mux'): Promise<Setup> {
  if (name === 'floor-tcp') {
    const proc = spawnProc(ctx, name, process.execPath, [FLOOR, 'forward', String(ctx.targetPort)])
    return { name, port: await listeningPort(proc), roots: [proc.pid], detail: 'node net, pipe' }
  }
  const dir = join(ctx.dir, name)
  mkdirSync(dir, { recursive: true })
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=floor', '-addext', 'subjectAltName=DNS:floor', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')])
  const kind = name === 'floor-tls' ? 'tls' : 'mux'
  const provider = spawnProc(ctx, `${name}-provider`, process.execPath, [FLOOR, `${kind}-provider`, String(ctx.targetPort), dir])
  const providerPort = await listeningPort(provider)
  const consumer = spawnProc(ctx, `${name}-consumer`, process.execPath, [FLOOR, `${kind}-consumer`, String(providerPort), dir])
  const detail = kind === 'tls' ? 'a TLS 1.3 connection per connection' : 'streams on one TLS 1.3 connection'
  return { name, port: await listeningPort(consumer), roots: [consumer.pid, provider.pid], detail }
}

const FLOOR_LIBP2P = join(import.meta.dirname, 'floor-libp2p.ts')

const LIBRARY_SRC = join(root, 'packages/node/src')

/**
 * The library's modules, marked free of side effects for esbuild, which then leaves out
 * each one the floor does not use: it imports three things from the library's index.
 */
const onlyWhatIsUsed: Plugin = {
  name: 'only-what-is-used',
  setup (b) {
    b.onResolve({ filter: /^(@punchgate\/node$|\.)/ }, args => {
      const path = args.path === '@punchgate/node' ? join(LIBRARY_SRC, 'index.ts') : join(args.resolveDir, args.path)
      return path.startsWith(LIBRARY_SRC) ? { path, sideEffects: false } : undefined
    })
  }
}

/**
 * The js-libp2p floor (bench/floor-libp2p.ts), run with the daemon's Node flags and
 * environment, and bundled as the daemon is (packages/cli/bundle-options.ts): run from its source,
 * Node's type stripper and every module's text would stay in its memory, 25 MB the daemon
 * does not carry.
 */
export async function startFloorLibp2p (ctx: Context, name: 'floor-libp2p' | 'floor-libp2p-mux'): Promise<Setup> {
  const mux = name === 'floor-libp2p-mux' ? 'mux-' : ''
  const bundle = join(ctx.dir, `${name}.mjs`)
  await build({
    entryPoints: [FLOOR_LIBP2P],
    outfile: bundle,
    ...NODE_BUNDLE,
    plugins: [onlyWhatIsUsed]
  })
  const env = { ...process.env, ...DAEMON.env, ...ctx.daemonEnv }
  const spawn = (name: string, args: string[]): Proc =>
    spawnProc(ctx, name, process.execPath, [...profileFlags(ctx, name), ...DAEMON.flags, ...DAEMON.lateFlags, ...ctx.daemonNodeOptions, bundle, ...args], env)
  const provider = spawn(`${name}-provider`, [`${mux}provider`, String(ctx.targetPort)])
  const providerPort = await listeningPort(provider)
  const id = /peer (\S+)/.exec(readFileSync(provider.logFile, 'utf8'))?.[1] ?? ''
  const consumer = spawn(`${name}-consumer`, [`${mux}consumer`, String(providerPort), id])
  const detail = `TCP, socket TLS, yamux${mux !== '' ? ', a minimal mux in one stream' : ''}; no Punchgate`
  return { name, port: await listeningPort(consumer), roots: [consumer.pid, provider.pid], detail, daemons: [consumer.pid, provider.pid] }
}

export async function startSocat (ctx: Context): Promise<Setup> {
  const port = await freePort()
  const proc = spawnProc(ctx, 'socat', 'socat', [
    `TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr,nodelay,backlog=4096`,
    `TCP:127.0.0.1:${ctx.targetPort},nodelay`
  ])
  await proc.waitForPort(port, READY_MS)
  return { name: 'socat', port, roots: [proc.pid], detail: 'fork per connection' }
}

/** sshd with a throwaway host key and a throwaway client key, loopback only. */
export async function startSsh (ctx: Context): Promise<Setup> {
  const dir = join(ctx.dir, 'ssh')
  mkdirSync(dir, { recursive: true })
  await Promise.all([
    run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]),
    run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')])
  ])
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')))
  // sshd refuses to start without its privilege separation directory.
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 })
  const sshPort = await freePort()
  writeFileSync(join(dir, 'sshd_config'), [
    `ListenAddress 127.0.0.1:${sshPort}`,
    `HostKey ${join(dir, 'host_key')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    'AllowTcpForwarding yes',
    'StrictModes no',
    'UsePAM no',
    // 1,000 connections at once go through one session's channels, not new sessions.
    'MaxStartups 100',
    ''
  ].join('\n'))
  const sshd = spawnProc(ctx, 'sshd', '/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')])
  await sshd.waitForPort(sshPort, READY_MS)
  const client = (name: string, port: number): Proc => spawnProc(ctx, name, 'ssh', [
    '-N', '-T',
    '-L', `127.0.0.1:${port}:127.0.0.1:${ctx.targetPort}`,
    '-p', String(sshPort),
    '-i', join(dir, 'client_key'),
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
    '-o', 'ExitOnForwardFailure=yes',
    `${userInfo().username}@127.0.0.1`
  ])
  const port = await freePort()
  const ssh = client('ssh', port)
  await ssh.waitForPort(port, READY_MS)
  // A second ssh -L to the running sshd: from its spawn to the first byte through it.
  const coldStart = async (n: number): Promise<ColdStart> => {
    const port = await freePort()
    const started = performance.now()
    const proc = client(`ssh-start-${n}`, port)
    try {
      await firstEcho(port, READY_MS)
      return { firstByteMs: performance.now() - started }
    } finally {
      await proc.stop()
    }
  }
  return { name: 'ssh', port, roots: [sshd.pid, ssh.pid], detail: 'OpenSSH defaults', coldStart }
}

function listenArgs (transports: Transports): string[] {
  const args: string[] = []
  if (transports !== 'quic') args.push('--listen', '/ip4/127.0.0.1/tcp/0')
  if (transports !== 'tcp') args.push('--listen', '/ip4/127.0.0.1/udp/0/quic-v1')
  return args
}

/**
 * The environment and Node flags in the bin's shebang (`#!/usr/bin/env -S NAME=VALUE...
 * node FLAGS...`): what a user's daemon runs with.
 */
function shebangSettings (): { env: Record<string, string>, flags: string[], lateFlags: string[] } {
  const text = readFileSync(PUNCHGATE, 'utf8')
  const words = text.split('\n', 1)[0].split(' ').slice(2)
  const node = words.indexOf('node')
  // The V8 flags the bin sets once it runs (its setFlagsFromString line): for code run
  // without the bin, such as the floors.
  const late = /for \(const flag of \[([^\]]*)\]\) setFlagsFromString\(flag\)/.exec(text)?.[1] ?? ''
  const lateFlags = [...late.matchAll(/'([^']+)'/g)].map(match => match[1] as string)
  return { env: environment(words.slice(0, node)), flags: words.slice(node + 1), lateFlags }
}

/** `NAME=VALUE` words as an environment. */
export function environment (words: string[]): Record<string, string> {
  return Object.fromEntries(words.map(word => {
    const at = word.indexOf('=')
    return [word.slice(0, at), word.slice(at + 1)]
  }))
}
/** What a user's daemon runs with: the bin's shebang (environment and Node flags). */
export const DAEMON = shebangSettings()

/** `--cpu-prof` and where its profile goes, when the bench was asked for profiles. */
function profileFlags (ctx: Context, name: string): string[] {
  return ctx.cpuProfileDir != null ? ['--cpu-prof', `--cpu-prof-dir=${ctx.cpuProfileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : []
}

function daemon (ctx: Context, name: string, args: string[]): Proc {
  // The settings the bin's shebang gives the daemon, then the bench's own (later ones win).
  const env = { ...process.env, ...DAEMON.env, ...ctx.daemonEnv }
  return spawnProc(ctx, name, process.execPath, [...profileFlags(ctx, name), ...DAEMON.flags, ...ctx.daemonNodeOptions, PUNCHGATE, ...args], env)
}

async function peerId (ctx: Context, name: string): Promise<{ key: string, id: string }> {
  const key = join(ctx.dir, `${name}.key`)
  const { stdout } = await run(process.execPath, [PUNCHGATE, 'id', '--identity', key])
  return { key, id: stdout.trim() }
}

function transportOf (addr: unknown): string {
  const text = String(addr)
  if (text.includes('/p2p-circuit')) return `circuit over ${text.includes('/quic') ? 'quic' : 'tcp'}`
  return text.includes('/quic') ? 'quic' : 'tcp'
}

/**
 * A bootstrap (public: DHT server and relay), and for each tunnel a provider exposing
 * the target and a consumer tunnelling to it by peer id. Neither end of the relayed
 * tunnel listens (`--listen none`), so it stays on the relay: with a listening consumer,
 * the provider dialled it back after a while and the "relayed" tunnel went direct.
 */
export async function startPunchgate (ctx: Context, which: Array<'direct' | 'relay'>): Promise<Setup[]> {
  const [boot, ...providers] = await Promise.all(['bootstrap', ...which.map(w => `provider-${w}`)].map(async n => peerId(ctx, n)))
  if (boot == null) throw new Error('no bootstrap identity')
  // The daemons of the cold starts, one per kind: each provider lets them all in.
  const starters = await Promise.all(which.map(async kind => peerId(ctx, `start-${kind}`)))
  const startAllow = starters.flatMap(s => ['--allow', s.id])
  const bootPort = await freePort()
  const bootListen = ['--listen', `/ip4/127.0.0.1/tcp/${bootPort}`]
  if (ctx.transports !== 'tcp') bootListen.push('--listen', `/ip4/127.0.0.1/udp/${bootPort}/quic-v1`)
  // Splices on any free port: the default (TCP port + 1) may be one the bench picked for something else.
  const splice = ['--relay-splice', ctx.circuit ? 'off' : '127.0.0.1:0']
  const bootstrap = daemon(ctx, 'bootstrap', ['--identity', boot.key, ...bootListen, ...splice])
  await bootstrap.waitForEvent('node.started', READY_MS)
  const bootAddr = ctx.transports === 'quic'
    ? `/ip4/127.0.0.1/udp/${bootPort}/quic-v1/p2p/${boot.id}`
    : `/ip4/127.0.0.1/tcp/${bootPort}/p2p/${boot.id}`

  return Promise.all(which.map(async (kind, i) => {
    const provider = providers[i]
    if (provider == null) throw new Error('no provider identity')
    const providerListen = kind === 'relay' ? ['--listen', 'none'] : listenArgs(ctx.transports)
    const consumer = await peerId(ctx, `consumer-${kind}`)
    const p = daemon(ctx, `provider-${kind}`, [
      '--identity', provider.key, ...providerListen, '--bootstrap', bootAddr,
      '--expose', `bench=127.0.0.1:${ctx.targetPort}`, '--allow', consumer.id, ...startAllow
    ])
    await p.waitForEvent('service.published', READY_MS)
    const port = await freePort()
    const c = daemon(ctx, `consumer-${kind}`, [
      '--identity', consumer.key, ...(kind === 'relay' ? ['--listen', 'none'] : listenArgs(ctx.transports)),
      '--bootstrap', bootAddr, '--tunnel', `${provider.id}:bench@127.0.0.1:${port}`
    ])
    const activated = await c.waitForEvent('tunnel.activated', READY_MS)
    if (activated.path !== (kind === 'relay' ? 'relay' : 'direct')) {
      throw new Error(`the ${kind} tunnel went live on path ${String(activated.path)}; see ${c.logFile}`)
    }
    const connected = await c.waitForEvent('peer.connected', READY_MS, r => r.peer === provider.id)
    if (kind === 'relay' && !ctx.circuit) {
      // Connections opened before the splice would stay on the circuit: measure the splice.
      await c.waitForEvent('splice.opened', READY_MS, r => r.peer === provider.id)
    }
    const roots = kind === 'relay' ? [c.pid, p.pid, bootstrap.pid] : [c.pid, p.pid]
    const path = kind === 'relay' ? 'relayed' : 'direct'
    const changed = (sinceMs: number): string | undefined => {
      const moved = c.records().find(r => r.event === 'tunnel.state' && r.from === path && Date.parse(String(r.time)) >= sinceMs)
      return moved == null ? undefined : `the tunnel went from ${path} to ${String(moved.to)} at ${String(moved.time)}`
    }
    const detail = kind === 'relay' ? (ctx.circuit ? 'circuit relay' : 'spliced through the relay') : transportOf(connected.addr)
    /**
     * A private daemon started as a user starts one (--bootstrap, tunnels by name) while
     * the bootstrap and the providers run and have published: its time from spawn to the
     * first byte echoed through its first tunnel (this kind's provider, reached as this
     * setup's consumer reaches it), then its idle RSS holding that tunnel and a second one
     * (to the other kind's provider, or a second port to the same one).
     */
    const coldStart = async (n: number, settleMs: number): Promise<ColdStart> => {
      const me = starters[i]
      if (me == null) throw new Error('no identity for the cold start')
      const other = providers[(i + 1) % providers.length] ?? provider
      const [first, second] = [await freePort(), await freePort()]
      const started = performance.now()
      const d = daemon(ctx, `start-${kind}-${n}`, [
        '--identity', me.key, ...(kind === 'relay' ? ['--listen', 'none'] : listenArgs(ctx.transports)), '--bootstrap', bootAddr,
        '--tunnel-by-name', `bench@127.0.0.1:${first}?peer=${provider.id}`,
        '--tunnel-by-name', `bench@127.0.0.1:${second}?peer=${other.id}`
      ])
      try {
        await firstEcho(first, READY_MS)
        const firstByteMs = performance.now() - started
        const active = new Set<unknown>()
        await d.waitForRecord(r => {
          if (r.event === 'tunnel.activated') active.add(r.tunnel)
          return active.size >= 2
        }, 'two tunnels activated', READY_MS)
        await sleep(settleMs)
        return { firstByteMs, idleRssBytes: memory([d.pid]).largestBytes }
      } finally {
        await d.stop()
      }
    }
    return { name: kind, port, roots, detail, changed, daemons: [c.pid, p.pid], coldStart }
  }))
}

/**
 * A direct tunnel (TCP) whose connection passes through a bare relay: the provider listens
 * on a port of its own and announces the relay's, which forwards to it, so the consumer
 * (not listening) dials the relay. The relay is socat (`-b` 128 KiB) or floor-tcp's Node
 * pipe with Node's defaults: no token, no caps, no daemon. Against `relay` (the splice),
 * it is the least a relay in the middle costs on this machine. Its own bootstrap, so the
 * other setups' daemons are not shared.
 */
export async function startVia (ctx: Context, name: 'via-socat' | 'via-node' | 'via-wan'): Promise<Setup> {
  const [boot, provider, consumer] = await Promise.all([`${name}-bootstrap`, `${name}-provider`, `${name}-consumer`].map(async n => peerId(ctx, n)))
  if (boot == null || provider == null || consumer == null) throw new Error('no identities')
  const bootPort = await freePort()
  const bootstrap = daemon(ctx, `${name}-bootstrap`, ['--identity', boot.key, '--listen', `/ip4/127.0.0.1/tcp/${bootPort}`, '--relay-splice', 'off'])
  await bootstrap.waitForEvent('node.started', READY_MS)
  const bootAddr = `/ip4/127.0.0.1/tcp/${bootPort}/p2p/${boot.id}`
  const providerPort = await freePort()
  let relay: Proc
  let relayPort: number
  if (name === 'via-socat') {
    relayPort = await freePort()
    relay = spawnProc(ctx, `${name}-relay`, 'socat', ['-b', '131072',
      `TCP-LISTEN:${relayPort},bind=127.0.0.1,fork,reuseaddr,nodelay`, `TCP:127.0.0.1:${providerPort},nodelay`])
    await relay.waitForPort(relayPort, READY_MS)
  } else {
    const mode = name === 'via-wan' ? ['delay', String(providerPort), String(WAN_DELAY_MS)] : ['forward', String(providerPort)]
    relay = spawnProc(ctx, `${name}-relay`, process.execPath, [FLOOR, ...mode])
    relayPort = await listeningPort(relay)
  }
  const p = daemon(ctx, `${name}-provider`, [
    '--identity', provider.key, '--listen', `/ip4/127.0.0.1/tcp/${providerPort}`, '--announce', `/ip4/127.0.0.1/tcp/${relayPort}`,
    '--bootstrap', bootAddr, '--expose', `bench=127.0.0.1:${ctx.targetPort}`, '--allow', consumer.id
  ])
  await p.waitForEvent('service.published', READY_MS)
  const port = await freePort()
  const c = daemon(ctx, `${name}-consumer`, [
    '--identity', consumer.key, '--listen', 'none', '--bootstrap', bootAddr, '--tunnel', `${provider.id}:bench@127.0.0.1:${port}`
  ])
  const activated = await c.waitForEvent('tunnel.activated', READY_MS)
  const connected = await c.waitForEvent('peer.connected', READY_MS, r => r.peer === provider.id)
  if (activated.path !== 'direct' || !String(connected.addr).includes(`/tcp/${relayPort}/`)) {
    throw new Error(`the ${name} tunnel did not go through ${relayPort} (${String(connected.addr)}, path ${String(activated.path)}); see ${c.logFile}`)
  }
  const through = { 'via-socat': 'socat', 'via-node': 'a node pipe', 'via-wan': `a node pipe holding each chunk ${WAN_DELAY_MS} ms each way` }[name]
  return { name, port, roots: [c.pid, p.pid, relay.pid], detail: `tcp through ${through}`, daemons: [c.pid, p.pid] }
}
