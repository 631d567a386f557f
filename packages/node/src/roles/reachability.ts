/**
 * Roles from reachability (docs/ARCHITECTURE.md, "Roles"). A public node answers the reach
 * probe (reachability/server.ts) and lists the peers it verified for
 * `/punchgate/relays/1.0.0`. A node with `--role auto` and a bootstrap asks its bootstraps
 * to probe it: when one dials one of its TCP listen ports at an address it holds or
 * announces (reachability/decide.ts), it turns public: DHT server, relay server open,
 * splicer bound, reach server on, that address confirmed; then the machine holds the role
 * (`role-changed`) and republishes. It asks again every REACH_REPROBE_MS, and when a
 * bootstrap sees it at a new IP; two failed probes in a row turn it private again.
 */
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { mayBePublic, startsPublic, type NodeConfig } from '../config.ts'
import { REACH_ASK_INTERVAL_MS, REACH_MAX_PORTS, REACH_REPROBE_MS, REACH_TIMEOUT_MS } from '../constants.ts'
import type { NodeEvents } from '../events.ts'
import { pathOf } from '../protocol/expose.ts'
import { askReach } from '../reachability/client.ts'
import { announcedIps, interfaceIps, judgeReach, type ReachVerdict } from '../reachability/decide.ts'
import { ReachServer, type VerifiedPeer } from '../reachability/server.ts'
import type { Loop } from '../runner.ts'
import type { Swarm } from '../swarm.ts'
import type { RelayServerSwitch } from './relay-server.ts'

/** Failed probes in a row that turn a public node private again. */
const FAILURES_TO_STEP_BACK = 2

export interface ReachabilityInit {
  config: NodeConfig
  swarm: Swarm
  events: NodeEvents
  loop: Loop
  /** Whether `peer` is one of our configured bootstraps: the only nodes we ask. */
  isBootstrap: (peer: string) => boolean
  relayServer: RelayServerSwitch
  /** The splicer's side of the switch (roles/relay.ts). */
  splicing: { becomePublic: () => Promise<void>, becomePrivate: () => Promise<void> }
  /** @default { reprobeMs: REACH_REPROBE_MS, minGapMs: REACH_ASK_INTERVAL_MS } */
  timing?: ReachTiming
}

/** Tests only: shorter delays, and loopback taken as a reachable address (a mesh on 127.0.0.1). */
export interface ReachTiming {
  /** How often a node whose role follows the probe asks again. */
  reprobeMs: number
  /** The least time between two probes (a bootstrap answers one per peer per REACH_ASK_INTERVAL_MS). */
  minGapMs: number
  loopback?: boolean
}

/** The role a node starts in, and why, in words. */
export function initialRole (config: NodeConfig): { role: 'public' | 'private', reason: string } {
  if (config.role !== 'auto') return { role: config.role, reason: `--role ${config.role}` }
  if (config.bootstrap.length === 0) return { role: 'public', reason: 'no --bootstrap' }
  if (!mayBePublic(config)) return { role: 'private', reason: '--listen none' }
  return { role: 'private', reason: 'not probed yet: public once a bootstrap reaches one of its TCP ports' }
}

export class Reachability {
  private readonly init: ReachabilityInit
  private readonly swarm: Swarm
  private readonly loop: Loop
  private readonly server: ReachServer
  private serving = false
  /** `--role auto` with a bootstrap: the role follows the probes. */
  private readonly dynamic: boolean
  private readonly timing: ReachTiming
  private failures = 0
  /** When the last probe was asked for, and the IP it saw us at. */
  private lastAsked = -Infinity
  private lastIp?: string
  private timer?: ReturnType<typeof setTimeout>
  private timerAt = Infinity
  private probing = false
  /** Addresses we confirmed to libp2p as ours (reachable), to take back when private. */
  private confirmed: string[] = []

  constructor (init: ReachabilityInit) {
    this.init = init
    this.swarm = init.swarm
    this.loop = init.loop
    this.timing = init.timing ?? { reprobeMs: REACH_REPROBE_MS, minGapMs: REACH_ASK_INTERVAL_MS }
    this.dynamic = init.config.role === 'auto' && init.config.bootstrap.length > 0 && mayBePublic(init.config)
    this.server = new ReachServer({
      connected: peer => this.swarm.getConnections().some(c => c.status === 'open' && c.remotePeer.toString() === peer),
      onProbe: report => init.events.emitEvent('reach.probed', report)
    })
  }

  /** After the swarm started: a public node answers probes; a node whose role follows them closes its relay and waits for a bootstrap. */
  async start (): Promise<void> {
    if (startsPublic(this.init.config)) await this.serve()
    if (!this.dynamic) return
    await this.init.relayServer.closeServer()
    this.swarm.addEventListener('connection:open', evt => {
      if (this.init.isBootstrap(evt.detail.remotePeer.toString()) && pathOf(evt.detail) === 'direct') this.schedule(0)
    })
    // A bootstrap sees us at another IP: the old answer says nothing about the new address.
    this.swarm.addEventListener('peer:identify', evt => {
      const ip = evt.detail.observedAddr?.getComponents()[0]?.value
      if (ip != null && this.lastIp != null && ip !== this.lastIp && this.init.isBootstrap(evt.detail.peerId.toString())) this.schedule(0)
    })
    this.loop.shutdownSignal.addEventListener('abort', () => clearTimeout(this.timer), { once: true })
  }

  /**
   * The public peers our reach probe verified and that are still connected, newest first:
   * what `/punchgate/relays/1.0.0` vouches for. Empty on a private node.
   */
  verifiedPublicPeers (): VerifiedPeer[] {
    return this.serving ? this.server.verifiedPublicPeers() : []
  }

  /** Probes in `ms` (or sooner if one is due sooner), never twice within a bootstrap's rate limit. */
  private schedule (ms: number): void {
    if (!this.loop.running) return
    // One reading of the clock: a second one a millisecond later would make `schedule(0)` a
    // negative delay, which Node warns about on stderr (TimeoutNegativeWarning).
    const now = Date.now()
    const at = Math.max(now + ms, this.lastAsked + this.timing.minGapMs)
    if (this.timer != null && this.timerAt <= at) return
    clearTimeout(this.timer)
    this.timerAt = at
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.timerAt = Infinity
      void this.probe()
    }, at - now)
    this.timer.unref()
  }

  /** Asks the connected bootstraps in turn until one answers, then acts on its answer. */
  private async probe (): Promise<void> {
    if (this.probing || !this.loop.running) return
    this.probing = true
    try {
      const verdict = await this.ask()
      if (verdict != null && this.loop.running) await this.apply(verdict)
    } finally {
      this.probing = false
    }
    // After a failure on a public node, check again soon rather than serve on a dead address.
    this.schedule(this.loop.state.role === 'public' && this.failures > 0 ? 0 : this.timing.reprobeMs)
  }

  /** A verdict from the first bootstrap that answers; undefined when none could (none connected, all busy). */
  private async ask (): Promise<ReachVerdict | undefined> {
    const ports = this.tcpPorts()
    if (ports.length === 0) return undefined
    for (const peer of this.connectedBootstraps()) {
      this.lastAsked = Date.now()
      try {
        const answer = await askReach(this.swarm, peer, ports, this.loop.signal(REACH_TIMEOUT_MS))
        this.lastIp = answer.ip
        const ours = [...interfaceIps(), ...announcedIps(this.init.config.announce)]
        return judgeReach(answer, ours, `bootstrap ${shortId(peer.toString())}`, { loopback: this.timing.loopback === true })
      } catch {
        // Refused (asked too soon, busy), an older node without the protocol, or gone: ask the next.
        if (!this.loop.running) return undefined
      }
    }
    return undefined
  }

  private async apply (verdict: ReachVerdict): Promise<void> {
    const role = this.loop.state.role
    if (verdict.reachable) {
      this.failures = 0
      this.confirm(verdict.addrs)
      if (role === 'private') await this.enterPublic()
      this.loop.dispatch({ type: 'role-changed', role: 'public', reason: verdict.reason })
      return
    }
    if (role === 'private') {
      this.loop.dispatch({ type: 'role-changed', role: 'private', reason: verdict.reason })
      return
    }
    this.failures++
    if (this.failures < FAILURES_TO_STEP_BACK) return
    this.failures = 0
    await this.leavePublic()
    this.loop.dispatch({ type: 'role-changed', role: 'private', reason: `${verdict.reason} (${FAILURES_TO_STEP_BACK} probes in a row)` })
  }

  /** DHT server, relay server open, splicer bound, reach probes answered. */
  private async enterPublic (): Promise<void> {
    await this.swarm.services.dht.setMode('server')
    await this.init.relayServer.openServer()
    await this.init.splicing.becomePublic()
    await this.serve()
  }

  private async leavePublic (): Promise<void> {
    await this.swarm.services.dht.setMode('client')
    await this.init.relayServer.closeServer()
    await this.init.splicing.becomePrivate()
    if (this.serving) {
      this.serving = false
      await this.server.close(this.swarm)
    }
    const addressManager = this.swarm.services.internals.addressManager
    for (const addr of this.confirmed.splice(0)) addressManager.removeObservedAddr(multiaddr(addr))
  }

  private async serve (): Promise<void> {
    if (this.serving) return
    this.serving = true
    await this.server.serve(this.swarm)
  }

  /** libp2p holds back public transport addresses until confirmed: the probe confirmed these. */
  private confirm (addrs: string[]): void {
    const addressManager = this.swarm.services.internals.addressManager
    for (const addr of addrs) addressManager.confirmObservedAddr(multiaddr(addr), { type: 'transport' })
    this.confirmed = [...new Set([...this.confirmed, ...addrs])]
  }

  /** Our TCP listen ports (at most REACH_MAX_PORTS). */
  private tcpPorts (): number[] {
    const ports = new Set<number>()
    for (const addr of this.swarm.services.internals.transportManager.getAddrs()) {
      const components = addr.getComponents()
      if (components.some(c => c.name === 'p2p-circuit')) continue
      const tcp = components[1]
      if (tcp?.name === 'tcp' && tcp.value != null) ports.add(Number(tcp.value))
    }
    return [...ports].slice(0, REACH_MAX_PORTS)
  }

  private connectedBootstraps (): PeerId[] {
    const peers = new Map<string, PeerId>()
    for (const c of this.swarm.getConnections()) {
      const id = c.remotePeer.toString()
      if (c.status === 'open' && pathOf(c) === 'direct' && this.init.isBootstrap(id)) peers.set(id, c.remotePeer)
    }
    return [...peers.values()]
  }
}

function shortId (peer: string): string {
  return peer.length > 12 ? `${peer.slice(0, 4)}...${peer.slice(-4)}` : peer
}
