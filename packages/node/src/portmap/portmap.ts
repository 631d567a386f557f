/**
 * Port mapping (docs/nat-traversal.md, "Port mapping"): a private node asks its own default
 * gateway to forward the libp2p listen ports (TCP, and QUIC's UDP port) to it, announces the
 * external address while the lease holds, renews it halfway through, and deletes it on stop.
 *
 * It never holds up the node: start() returns at once and the work runs in the background,
 * each request bounded by a timeout; a router that does not answer costs a debug line
 * (`portmap.failed`) and another try RETRY_MS later. Methods are tried in order (NAT-PMP,
 * PCP, then UPnP-IGD); the first that maps a port is kept for renewals.
 */
import {
  PORTMAP_DISCOVER_TIMEOUT_MS, PORTMAP_LIFETIME_S, PORTMAP_MIN_RENEW_MS, PORTMAP_REQUEST_TIMEOUT_MS, PORTMAP_RETRY_MS, PORTMAP_STOP_TIMEOUT_MS
} from '../constants.ts'
import type { NodeEvents } from '../events.ts'
import type { Gateway } from './gateway.ts'
import type { ClientFactory, MappingClient, MappingMethod, MappingProtocol, MapRequest } from './client.ts'

export interface PortMapTiming {
  /** Finding the router's service, per method. */
  discoverTimeoutMs: number
  /** One map or unmap request. */
  requestTimeoutMs: number
  /** The lease asked for. */
  lifetimeS: number
  /** After no router answered, or every mapping was lost: the next try. */
  retryMs: number
  /** A failing renewal is retried no sooner than this. */
  minRenewMs: number
  /** Deleting the mappings at stop, all at once. */
  stopTimeoutMs: number
}

export const DEFAULT_PORTMAP_TIMING: PortMapTiming = {
  discoverTimeoutMs: PORTMAP_DISCOVER_TIMEOUT_MS,
  requestTimeoutMs: PORTMAP_REQUEST_TIMEOUT_MS,
  lifetimeS: PORTMAP_LIFETIME_S,
  retryMs: PORTMAP_RETRY_MS,
  minRenewMs: PORTMAP_MIN_RENEW_MS,
  stopTimeoutMs: PORTMAP_STOP_TIMEOUT_MS
}

/** A listen port to map. */
export interface LocalPort {
  protocol: MappingProtocol
  port: number
}

/** A mapping the router granted: what `status` shows and the address manager announces. */
export interface ActiveMapping {
  protocol: MappingProtocol
  internalIp: string
  internalPort: number
  externalIp: string
  externalPort: number
  method: MappingMethod
  gateway: string
  /** Epoch ms when the lease runs out unless renewed. */
  expiresAt: number
}

export interface MappingMethodEntry {
  method: MappingMethod
  create: ClientFactory
}

export interface PortMapperInit {
  events: NodeEvents
  /** The router to ask: the default gateway of our routing table (gateway.ts). */
  gateway: () => Promise<Gateway | undefined>
  /** Methods in the order they are tried. */
  methods: MappingMethodEntry[]
  /** Our listen ports reachable from that gateway (on its interface's address). */
  ports: (gateway: Gateway) => LocalPort[]
  /** Called when a mapping is granted (or its external address changed), and when it is gone. */
  announce: (mapping: ActiveMapping) => void
  withdraw: (mapping: ActiveMapping) => void
  timing?: Partial<PortMapTiming>
}

const key = (p: LocalPort): string => `${p.protocol}/${p.port}`
const hostPort = (ip: string, port: number): string => `${ip}:${port}`
const message = (err: unknown): string => err instanceof Error ? err.message : String(err)

export class PortMapper {
  private readonly init: PortMapperInit
  private readonly timing: PortMapTiming
  private readonly active = new Map<string, ActiveMapping>()
  private readonly shutdown = new AbortController()
  private client?: MappingClient
  private gatewayUsed?: Gateway
  private timer?: ReturnType<typeof setTimeout>
  private job?: Promise<void>

  constructor (init: PortMapperInit) {
    this.init = init
    this.timing = { ...DEFAULT_PORTMAP_TIMING, ...init.timing }
  }

  /** Begins in the background; returns at once. */
  start (): void {
    this.after(0, async () => this.mapAll())
  }

  /** The mappings held now. */
  mappings (): ActiveMapping[] {
    return [...this.active.values()].map(m => ({ ...m }))
  }

  /** Stops renewing and deletes every mapping, within stopTimeoutMs. Idempotent. */
  async stop (): Promise<void> {
    if (this.shutdown.signal.aborted) return
    this.shutdown.abort()
    clearTimeout(this.timer)
    // The running job's requests end with the shutdown signal.
    await this.job
    const client = this.client
    const removals = [...this.active.entries()].map(async ([k, m]) => {
      this.active.delete(k)
      this.init.withdraw(m)
      let error: string | undefined
      try {
        if (client == null) throw new Error('no client')
        await client.unmap(this.requestOf(m), AbortSignal.timeout(this.timing.stopTimeoutMs))
      } catch (err) {
        // The router keeps the mapping until its lease ends: nothing more we can do.
        error = message(err)
      }
      this.emitRemoved(m, 'stopped', error)
    })
    await Promise.all(removals)
    await client?.close().catch(() => {})
    this.client = undefined
  }

  private get stopped (): boolean {
    return this.shutdown.signal.aborted
  }

  /** Runs `job` after `ms`, unless stopped; one job at a time. */
  private after (ms: number, job: () => Promise<void>): void {
    if (this.stopped) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.job = job().catch(err => {
        this.init.events.emitEvent('portmap.failed', { error: message(err) })
      })
    }, ms)
    // A pending renewal alone does not keep the process alive.
    this.timer.unref?.()
  }

  private signal (ms: number): AbortSignal {
    return AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(ms)])
  }

  /** Finds the router and a method it answers, and maps every port. */
  private async mapAll (): Promise<void> {
    const gateway = await this.init.gateway()
    if (this.stopped) return
    if (gateway == null) {
      this.init.events.emitEvent('portmap.failed', { error: 'no IPv4 default gateway in the routing table' })
      this.after(this.timing.retryMs, async () => this.mapAll())
      return
    }
    const ports = this.init.ports(gateway)
    if (ports.length === 0) {
      // Listening on loopback only (or on another interface): nothing the router could forward.
      this.init.events.emitEvent('portmap.failed', { gateway: gateway.ip, error: `no listen port on ${gateway.localIp} to map` })
      return
    }
    const errors: string[] = []
    for (const { method, create } of this.init.methods) {
      if (this.stopped) return
      let client: MappingClient
      try {
        client = await create(gateway, this.signal(this.timing.discoverTimeoutMs))
      } catch (err) {
        errors.push(`${method}: ${this.stopped ? 'stopped' : message(err)}`)
        continue
      }
      this.client = client
      this.gatewayUsed = gateway
      const failures = await this.mapPorts(ports)
      if (this.active.size > 0) {
        this.scheduleRenewal()
        return
      }
      this.client = undefined
      await client.close().catch(() => {})
      errors.push(`${method}: ${failures.join(', ')}`)
    }
    if (this.stopped) return
    this.init.events.emitEvent('portmap.failed', { gateway: gateway.ip, error: errors.join('; ') })
    this.after(this.timing.retryMs, async () => this.mapAll())
  }

  private requestOf (m: Pick<ActiveMapping, 'protocol' | 'internalPort' | 'externalPort'>): MapRequest {
    return { protocol: m.protocol, internalPort: m.internalPort, externalPort: m.externalPort, lifetimeS: this.timing.lifetimeS }
  }

  /** Maps (or renews) each port; returns why the ones that failed did. */
  private async mapPorts (ports: LocalPort[]): Promise<string[]> {
    const client = this.client
    const gateway = this.gatewayUsed
    if (client == null || gateway == null) return ['no client']
    const failures: string[] = []
    for (const port of ports) {
      if (this.stopped) break
      const previous = this.active.get(key(port))
      const request = this.requestOf({ protocol: port.protocol, internalPort: port.port, externalPort: previous?.externalPort ?? port.port })
      try {
        const lease = await client.map(request, this.signal(this.timing.requestTimeoutMs))
        const mapping: ActiveMapping = {
          protocol: port.protocol,
          internalIp: gateway.localIp,
          internalPort: port.port,
          externalIp: lease.externalIp,
          externalPort: lease.externalPort,
          method: client.method,
          gateway: gateway.ip,
          expiresAt: Date.now() + lease.lifetimeS * 1000
        }
        const moved = previous == null || previous.externalIp !== mapping.externalIp || previous.externalPort !== mapping.externalPort
        if (this.stopped) {
          // Granted as we stopped: kept only so that stop() deletes it, never announced.
          this.active.set(key(port), mapping)
          break
        }
        if (previous != null && moved) this.init.withdraw(previous)
        this.active.set(key(port), mapping)
        if (moved) this.init.announce(mapping)
        this.init.events.emitEvent('portmap.mapped', {
          protocol: mapping.protocol,
          internal: hostPort(mapping.internalIp, mapping.internalPort),
          external: hostPort(mapping.externalIp, mapping.externalPort),
          method: mapping.method,
          gateway: mapping.gateway,
          lifetimeS: lease.lifetimeS,
          renewed: previous != null
        })
      } catch (err) {
        failures.push(`${key(port)}: ${this.stopped ? 'stopped' : message(err)}`)
      }
    }
    return failures
  }

  /** Renews halfway through the shortest lease; a failing renewal retries until the lease ends. */
  private scheduleRenewal (): void {
    const now = Date.now()
    const next = Math.min(...[...this.active.values()].map(m => {
      const left = m.expiresAt - now
      return Math.min(Math.max(left / 2, this.timing.minRenewMs), left)
    }))
    this.after(Math.max(0, next), async () => this.renew())
  }

  private async renew (): Promise<void> {
    const gateway = this.gatewayUsed
    if (gateway == null) return
    // The ports asked for now: a listener may have gone (or come) since.
    const ports = this.init.ports(gateway)
    await this.mapPorts(ports)
    if (this.stopped) return
    const wanted = new Set(ports.map(key))
    const now = Date.now()
    for (const [k, m] of this.active) {
      if (wanted.has(k) && m.expiresAt > now) continue
      this.active.delete(k)
      this.init.withdraw(m)
      this.emitRemoved(m, wanted.has(k) ? 'expired' : 'unused')
      if (!wanted.has(k)) {
        await this.client?.unmap(this.requestOf(m), this.signal(this.timing.requestTimeoutMs)).catch(() => {})
      }
    }
    if (this.active.size > 0) {
      this.scheduleRenewal()
      return
    }
    // Every mapping is gone (the router forgot us, or stopped answering): start over later.
    await this.client?.close().catch(() => {})
    this.client = undefined
    this.after(this.timing.retryMs, async () => this.mapAll())
  }

  private emitRemoved (m: ActiveMapping, reason: 'stopped' | 'expired' | 'unused', error?: string): void {
    this.init.events.emitEvent('portmap.removed', {
      protocol: m.protocol,
      internal: hostPort(m.internalIp, m.internalPort),
      external: hostPort(m.externalIp, m.externalPort),
      method: m.method,
      reason,
      ...(error != null ? { error } : {})
    })
  }
}
