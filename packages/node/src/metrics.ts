/**
 * The `--metrics HOST:PORT` endpoint: Prometheus text at `/metrics`, holding libp2p's own
 * metrics (fed into the same registry by @libp2p/prometheus-metrics) and Punchgate's tunnel
 * counters, which are driven by the node's events so they count exactly what is logged.
 */
import { createServer, type Server } from 'node:http'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { HostPort } from './config.ts'
import { BindError } from './errors.ts'
import type { NodeEvents } from './events.ts'
import type { NodeStatus } from './status.ts'

/** What the endpoint reads from the node: its events, and a status snapshot at scrape time. */
export interface MetricsSource {
  readonly events: NodeEvents
  status: () => NodeStatus
}

export interface MetricsServerInit {
  registry: Registry
  node: MetricsSource
}

/** Emitted by the hole-punching code; counted by name so this module needs no change when it lands. */
const HOLEPUNCH_OUTCOMES = ['succeeded', 'failed'] as const

const TUNNEL_STATUSES = ['resolving', 'connecting', 'punching', 'direct', 'relayed', 'failed'] as const

/** The address actually bound (a host name resolved): 127/8, ::1, or 127/8 mapped into IPv6. */
function isLoopback (ip: string): boolean {
  return /^(::ffff:)?127\./i.test(ip) || ip === '::1'
}

/** The registry the endpoint serves; libp2p's own metrics are fed into it too. */
export function createRegistry (): Registry {
  return new Registry()
}

export class MetricsServer {
  readonly registry: Registry
  private readonly node: MetricsSource
  private readonly server: Server

  constructor (init: MetricsServerInit) {
    this.registry = init.registry
    this.node = init.node
    registerTunnelMetrics(init.registry, init.node)
    this.server = createServer((req, res) => {
      if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try /metrics\n')
        return
      }
      this.registry.metrics().then(
        text => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`)
      )
    })
  }

  /** Resolves with the scrape URL, e.g. `http://127.0.0.1:9464/metrics`. */
  async listen (addr: HostPort): Promise<string> {
    const spec = `${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}`
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new BindError('metrics', spec, spec, err.code === 'EADDRINUSE' ? 'address already in use' : (err.code ?? err.message)))
      }
      this.server.once('error', onError)
      this.server.listen({ host: addr.host, port: addr.port }, () => {
        this.server.off('error', onError)
        resolve()
      })
    })
    const bound = this.server.address()
    const port = bound != null && typeof bound === 'object' ? bound.port : addr.port
    const url = `http://${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${port}/metrics`
    this.node.events.emitEvent('metrics.listening', { url })
    const host = bound != null && typeof bound === 'object' ? bound.address : addr.host
    if (!isLoopback(host)) this.node.events.emitEvent('metrics.exposed', { addr: spec })
    return url
  }

  async close (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>(resolve => this.server.close(() => resolve()))
  }
}

function registerTunnelMetrics (registry: Registry, node: MetricsSource): void {
  const registers = [registry]
  const { events } = node

  const opened = new Counter({
    name: 'punchgate_tunnel_connections_total',
    help: 'Tunnelled TCP connections accepted end to end, by side (client: tunnel or connect end; server: expose end) and path',
    labelNames: ['side', 'service', 'path'] as const,
    registers
  })
  const open = new Gauge({
    name: 'punchgate_tunnel_connections_open',
    help: 'Tunnelled TCP connections open right now',
    labelNames: ['side'] as const,
    registers
  })
  const closed = new Counter({
    name: 'punchgate_tunnel_connections_closed_total',
    help: 'Tunnelled connections finished, by result (ok: both ends closed cleanly; error: either end reset)',
    labelNames: ['side', 'service', 'result'] as const,
    registers
  })
  const bytes = new Counter({
    name: 'punchgate_tunnel_bytes_total',
    help: 'Bytes carried by finished tunnelled connections; direction in = from the peer, out = to the peer',
    labelNames: ['side', 'service', 'direction'] as const,
    registers
  })
  // No service label: on the server side the name is whatever a remote peer asked for.
  const rejected = new Counter({
    name: 'punchgate_tunnel_rejections_total',
    help: 'Tunnel requests refused, by side and wire reason',
    labelNames: ['side', 'reason'] as const,
    registers
  })
  const holepunch = new Counter({
    name: 'punchgate_holepunch_total',
    help: 'Hole-punch attempts by outcome',
    labelNames: ['outcome'] as const,
    registers
  })
  const rtt = new Histogram({
    name: 'punchgate_peer_rtt_seconds',
    help: 'Round-trip times of the periodic peer pings (peer.rtt)',
    labelNames: ['path'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers
  })
  for (const outcome of HOLEPUNCH_OUTCOMES) {
    holepunch.inc({ outcome }, 0)
    events.on(`holepunch.${outcome}`, () => holepunch.inc({ outcome }))
  }
  for (const side of ['client', 'server'] as const) open.set({ side }, 0)

  events.onEvent('tunnel.opened', e => {
    opened.inc({ side: e.side, service: e.service, path: e.path })
    open.inc({ side: e.side })
  })
  events.onEvent('tunnel.closed', e => {
    open.dec({ side: e.side })
    closed.inc({ side: e.side, service: e.service, result: e.error == null ? 'ok' : 'error' })
    bytes.inc({ side: e.side, service: e.service, direction: 'in' }, e.bytesIn)
    bytes.inc({ side: e.side, service: e.service, direction: 'out' }, e.bytesOut)
  })
  events.onEvent('tunnel.rejected', e => rejected.inc({ side: e.side, reason: e.reason }))
  events.onEvent('peer.rtt', e => rtt.observe({ path: e.path }, e.rttMs / 1000))

  // Gauges of state, read from a status snapshot at scrape time.
  const current = (): NodeStatus => node.status()
  new Gauge({
    name: 'punchgate_tunnels',
    help: 'Configured tunnels by state (direct and relayed are live on that path)',
    labelNames: ['status'] as const,
    registers,
    collect () {
      for (const status of TUNNEL_STATUSES) {
        this.set({ status }, current().tunnels.filter(t => t.status === status).length)
      }
    }
  })
  new Gauge({
    name: 'punchgate_peers',
    help: 'Connected peers by best path',
    labelNames: ['path'] as const,
    registers,
    collect () {
      const peers = current().peers
      this.set({ path: 'direct' }, peers.filter(p => p.path === 'direct').length)
      this.set({ path: 'relay' }, peers.filter(p => p.path === 'relay').length)
    }
  })
  new Gauge({
    name: 'punchgate_relay_reserved',
    help: '1 while this private node holds a relay reservation',
    registers,
    collect () {
      this.set(current().relay.state === 'reserved' ? 1 : 0)
    }
  })
  new Gauge({
    name: 'punchgate_phase',
    help: 'The node phase: 1 for the current one',
    labelNames: ['phase'] as const,
    registers,
    collect () {
      const phase = current().phase
      for (const p of ['joining', 'ready', 'shutting-down']) this.set({ phase: p }, p === phase ? 1 : 0)
    }
  })
}
