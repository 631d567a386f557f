/**
 * `punchgate netcheck`'s measurement: a short-lived swarm with a throwaway identity and
 * ephemeral ports dials the bootstraps, and each public address it dials tells us (identify's
 * observedAddr) where it saw our connection come from. Our TCP transport dials from its
 * listening port (transport/reuseport-tcp.ts) and QUIC from one client socket per address
 * family, so two observers' answers show how the NAT maps one socket (verdicts.ts). Besides:
 * a reach probe (reachability/client.ts), the router's port-mapping protocols (portmap/probe.ts,
 * default gateway only, skipped with `portMapping: false`) and global IPv6 addresses.
 *
 * Nothing here runs unless asked: the CLI command is the only caller.
 */
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Connection, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { NodeConfig } from '../config.ts'
import { REACH_TIMEOUT_MS } from '../constants.ts'
import { NetcheckError, ReachRefusedError } from '../errors.ts'
import type { Logger } from '../logger.ts'
import type { Gateway } from '../portmap/gateway.ts'
import { askReach } from '../reachability/client.ts'
import { announcedIps, judgeReach } from '../reachability/decide.ts'
import { createSwarm, type Swarm } from '../swarm.ts'
import { canReusePort } from '../transport/reuseport-tcp.ts'
import { askRouter, type RouterAnswers } from './router.ts'
import {
  chooseRole, classifyMapping, globalIPv6, punchMethods, type MappingVerdict, type Observation, type PunchVerdict,
  type ReachResult, type RoleVerdict, type Transport
} from './verdicts.ts'

/** A dial to one observer, identify included. */
const DIAL_TIMEOUT_MS = 8_000
/** How long identify may take after the connection opened. */
const IDENTIFY_TIMEOUT_MS = 5_000
/** NAT-PMP, then PCP and SSDP. */
const ROUTER_TIMEOUT_MS = 3_000
/** Observer addresses per transport: two decide; a third is cheap confirmation. */
const MAX_OBSERVERS = 3
/** Bootstraps tried at most. */
const MAX_BOOTSTRAPS = 4

export interface NetcheckReport {
  observations: Observation[]
  tcp: MappingVerdict & { localPort?: number }
  quic: MappingVerdict
  portMapping: RouterAnswers
  ipv6: string[]
  reach: ReachResult
  role: RoleVerdict
  punch: PunchVerdict[]
}

export interface NetcheckOptions {
  logger: Logger
  signal: AbortSignal
  /** The router to ask; defaults to this host's default gateway (tests pass none). */
  gateway?: () => Promise<Gateway | undefined>
  interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>
}

/** Throws NetcheckError when no bootstrap answered. */
export async function netcheck (config: NodeConfig, options: NetcheckOptions): Promise<NetcheckReport> {
  if (config.bootstrap.length === 0) throw new NetcheckError('netcheck needs a public node to measure against: give --bootstrap')
  const interfaces = Object.values((options.interfaces ?? networkInterfaces)()).flat().filter((i): i is NetworkInterfaceInfo => i != null)
  const router = askRouter(config.portMapping, timeoutSignal(options.signal, ROUTER_TIMEOUT_MS), options.gateway)
  const swarm = await createSwarm({
    ...config,
    // Ephemeral ports, so a daemon running here keeps its own; no relay, no announcements.
    listen: config.swarmKey != null ? [EPHEMERAL_TCP] : [EPHEMERAL_TCP, EPHEMERAL_QUIC],
    announce: [],
    role: 'private',
    relayMode: { mode: 'off' },
    autonat: false,
    mdns: false
  }, await generateKeyPair('Ed25519'))
  const identified = new IdentifyWaiter(swarm)
  try {
    await swarm.start()
    const observations = await observe(swarm, config.bootstrap.slice(0, MAX_BOOTSTRAPS), identified, options)
    const reachedPublicNode = observations.some(o => o.mapped != null)
    if (!reachedPublicNode) {
      const why = observations.find(o => o.error != null)?.error ?? 'no answer'
      throw new NetcheckError(`could not reach any public node (${config.bootstrap.length} bootstrap${config.bootstrap.length === 1 ? '' : 's'}): ${why}`)
    }
    const ownIps = interfaces.map(i => i.address)
    const tcpPort = listenPort(swarm, 'tcp')
    const tcp = { ...classifyMapping(observations.filter(o => o.transport === 'tcp'), ownIps, canReusePort), ...(tcpPort != null ? { localPort: tcpPort } : {}) }
    const quic = classifyMapping(observations.filter(o => o.transport === 'quic'), ownIps)
    const reach = config.role === 'auto'
      ? await probeReach(swarm, observations, tcpPort, [...ownIps, ...announcedIps(config.announce)], options.signal)
      : { outcome: 'not-asked' as const, reason: `--role ${config.role}` }
    const role = chooseRole(config.role, true, reach)
    const portMapping = await router
    return {
      observations,
      tcp,
      quic,
      portMapping,
      ipv6: globalIPv6(interfaces),
      reach,
      role,
      punch: punchMethods({
        role: role.role, tcp: tcp.mapping, udp: quic.mapping, udpPunch: config.udpPunch, reusePort: canReusePort, portMapping, reachOpen: reach.outcome !== 'not-asked' && reach.open, reachedPublicNode,
        ipv6: { addrs: globalIPv6(interfaces), listening: config.listen.some(addr => /^\/ip6\/[^/]+\/tcp\//.test(addr)) }
      })
    }
  } finally {
    identified.close()
    try {
      await swarm.stop()
    } catch (err) {
      options.logger.debug({ err: oneLine(err) }, 'netcheck: stopping the swarm failed')
    }
  }
}

/** Ports of our own for the measurement (QUIC cannot run in a --swarm-key mesh). */
const EPHEMERAL_TCP = '/ip4/0.0.0.0/tcp/0'
const EPHEMERAL_QUIC = '/ip4/0.0.0.0/udp/0/quic-v1'

/** Resolves each connection's observed address once identify ran on it. */
class IdentifyWaiter {
  private readonly seen = new Map<string, string | undefined>()
  private readonly waiting = new Map<string, (addr: string | undefined) => void>()
  private readonly swarm: Swarm
  private readonly onIdentify = (evt: CustomEvent<{ connection: Connection, observedAddr?: Multiaddr }>): void => {
    const { connection, observedAddr } = evt.detail
    const addr = observedAddr != null ? hostPort(observedAddr)?.addr : undefined
    const waiter = this.waiting.get(connection.id)
    if (waiter != null) waiter(addr)
    else this.seen.set(connection.id, addr)
  }

  constructor (swarm: Swarm) {
    this.swarm = swarm
    swarm.addEventListener('peer:identify', this.onIdentify)
  }

  async observed (connection: Connection, signal: AbortSignal): Promise<string | undefined> {
    if (this.seen.has(connection.id)) return this.seen.get(connection.id)
    return new Promise((resolve, reject) => {
      const onAbort = (): void => { this.waiting.delete(connection.id); reject(new Error('identify did not answer')) }
      signal.addEventListener('abort', onAbort, { once: true })
      this.waiting.set(connection.id, addr => {
        signal.removeEventListener('abort', onAbort)
        this.waiting.delete(connection.id)
        resolve(addr)
      })
    })
  }

  close (): void {
    this.swarm.removeEventListener('peer:identify', this.onIdentify)
  }
}

/** `ip:port` and the transport of a plain TCP or QUIC multiaddr. */
function hostPort (ma: Multiaddr): { addr: string, ip: string, transport: Transport } | undefined {
  const [ip, proto, ...more] = ma.getComponents()
  if ((ip?.name !== 'ip4' && ip?.name !== 'ip6') || ip.value == null || proto?.value == null) return undefined
  // After the transport, at most the peer id: nothing relayed, nothing wrapped (ws, tls).
  const quic = proto.name === 'udp' && more[0]?.name === 'quic-v1'
  const tail = quic ? more.slice(1) : more
  const transport = proto.name === 'tcp' ? 'tcp' : quic ? 'quic' : undefined
  if (transport == null || tail.length > 1 || (tail.length === 1 && tail[0]?.name !== 'p2p')) return undefined
  return { addr: ip.name === 'ip6' ? `[${ip.value}]:${proto.value}` : `${ip.value}:${proto.value}`, ip: ip.value, transport }
}

function listenPort (swarm: Swarm, transport: Transport): number | undefined {
  for (const ma of swarm.services.internals.transportManager.getAddrs()) {
    const hp = hostPort(ma)
    if (hp?.transport === transport) return Number(hp.addr.slice(hp.addr.lastIndexOf(':') + 1))
  }
  return undefined
}

function timeoutSignal (signal: AbortSignal, ms: number): AbortSignal {
  return AbortSignal.any([signal, AbortSignal.timeout(ms)])
}

/**
 * Dials each bootstrap, then the bootstrap's other listen addresses on the same IP (a second
 * TCP port, its QUIC port), each over a connection of its own, and records where each saw us.
 */
async function observe (swarm: Swarm, bootstraps: string[], identified: IdentifyWaiter, options: NetcheckOptions): Promise<Observation[]> {
  const observations: Observation[] = []
  const dialed = new Set<string>()
  const count = (t: Transport): number => observations.filter(o => o.transport === t).length
  const one = async (peer: PeerId, target: Multiaddr, force: boolean): Promise<void> => {
    const hp = hostPort(target)
    if (hp == null || dialed.has(`${hp.transport} ${hp.addr}`) || count(hp.transport) >= MAX_OBSERVERS) return
    dialed.add(`${hp.transport} ${hp.addr}`)
    const observation: Observation = { transport: hp.transport, peer: peer.toString(), observer: hp.addr }
    observations.push(observation)
    const signal = timeoutSignal(options.signal, DIAL_TIMEOUT_MS)
    try {
      const connection = await swarm.dial(target.getComponents().some(c => c.name === 'p2p') ? target : target.encapsulate(`/p2p/${peer.toString()}`), { signal, force })
      const mapped = await identified.observed(connection, timeoutSignal(signal, IDENTIFY_TIMEOUT_MS))
      if (mapped != null) observation.mapped = mapped
      else observation.error = 'the public node did not say where it saw us'
    } catch (err) {
      observation.error = oneLine(err)
      options.logger.debug({ observer: hp.addr, err: observation.error }, 'netcheck: dial failed')
    }
  }
  for (const text of bootstraps) {
    if (options.signal.aborted) break
    let ma: Multiaddr
    let peer: PeerId
    try {
      ma = multiaddr(text)
      const id = ma.getComponents().findLast(c => c.name === 'p2p')?.value
      if (id == null) continue
      peer = peerIdFromString(id)
    } catch {
      continue
    }
    await one(peer, ma, false)
    const known = await swarm.peerStore.get(peer).then(p => p.addresses.map(a => a.multiaddr), () => [])
    for (const other of sameHost(ma, known)) await one(peer, other, true)
  }
  return observations
}

/**
 * The addresses a bootstrap lists (identify) that netcheck may dial as further observers:
 * plain TCP or QUIC on the IP we dialed it at. A bootstrap cannot point our dials at any
 * other host.
 */
export function sameHost (dialed: Multiaddr, listed: Multiaddr[]): Multiaddr[] {
  const ip = hostPort(dialed)?.ip
  return ip == null ? [] : listed.filter(ma => hostPort(ma)?.ip === ip)
}

/** Asks the first bootstrap that saw us over TCP whether it can dial our TCP listen port. */
async function probeReach (swarm: Swarm, observations: Observation[], tcpPort: number | undefined, ours: string[], signal: AbortSignal): Promise<ReachResult> {
  if (tcpPort == null) return { outcome: 'not-asked', reason: 'no TCP listener to probe' }
  const asked = observations.find(o => o.transport === 'tcp' && o.mapped != null)
  if (asked == null) return { outcome: 'not-asked', reason: 'no public node answered over TCP' }
  try {
    const answer = await askReach(swarm, peerIdFromString(asked.peer), [tcpPort], timeoutSignal(signal, REACH_TIMEOUT_MS))
    const verdict = judgeReach(answer, ours, `bootstrap ${asked.peer.slice(0, 4)}...${asked.peer.slice(-4)}`)
    return {
      outcome: verdict.reachable ? 'reachable' : 'unreachable',
      peer: asked.peer,
      ip: answer.ip,
      port: tcpPort,
      open: answer.reachable.includes(tcpPort),
      reason: verdict.reason
    }
  } catch (err) {
    const error = err as Error
    if (error.name === ReachRefusedError.NAME) {
      const reason = (error as ReachRefusedError).reason
      const hint = reason === 'too-soon' || reason === 'busy' ? '; run netcheck again in 30 s' : ''
      return { outcome: 'not-asked', reason: `the public node refused the reach probe (${reason})${hint}` }
    }
    if (error.name === 'UnsupportedProtocolError') return { outcome: 'not-asked', reason: 'the public node does not answer reach probes (an older version)' }
    return { outcome: 'not-asked', reason: `the reach probe failed: ${oneLine(err)}` }
  }
}

function oneLine (err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ').slice(0, 200)
}
