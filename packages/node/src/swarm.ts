/**
 * Builds the libp2p node from a validated config. Roles follow from the config
 * (config.ts: startsPublic): public means DHT server and relay server; private, DHT
 * client and relay client. Everything protocol-specific to Punchgate lives elsewhere.
 *
 * No @libp2p/dcutr: we speak its protocol ourselves (holepunch/puncher.ts says why), over a
 * TCP transport that dials from its listening port (transport/reuseport-tcp.ts).
 */
import { createLibp2p, type Libp2p } from 'libp2p'
import { quic } from '@chainsafe/libp2p-quic'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, identifyPush } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import type { Registry } from 'prom-client'
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import type { PrivateKey } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'
import type { AddressManager, TransportManager } from '@libp2p/interface-internal'
import { mayBePublic, startsPublic, type NodeConfig } from './config.ts'
import { DHT_PROTOCOL, MAX_RELAY_RESERVATIONS } from './constants.ts'
import { relayConnectionLimit, relayGater, relayTrusted } from './relay.ts'
import { reuseportTcp } from './transport/reuseport-tcp.ts'
import { udxTransport } from './transport/udx/transport.ts'
import { announceable } from './holepunch/candidates.ts'
import { socketTls } from './socket-tls.ts'
import { lazyNoise } from './lazy-noise.ts'
import { libp2pLogger } from './libp2p-logger.ts'

/**
 * Ping streams one connection may carry at once, each way. Two pingers share the ping
 * service: libp2p's connection monitor (every 10 s, per connection, aborting the
 * connection when a ping fails) and the RTT reporter (rtt.ts). With @libp2p/ping's
 * default of one outbound stream, a monitor ping that overlapped a slow RTT ping failed
 * with "too many outbound protocol streams" and the monitor cut a healthy connection,
 * tunnels and all: seen under load in the bench (docs/performance.md).
 */
const MAX_PING_STREAMS = 4

/** Per-stream receive window: large enough for fast links, small enough to bound memory per stream. */
const STREAM_WINDOW_BYTES = 4 * 1024 * 1024

/** The internals the runner needs that libp2p does not put on its public API. */
export interface SwarmInternals {
  transportManager: TransportManager
  addressManager: AddressManager
}

export interface Services {
  dht: KadDHT
  ping: Ping
  internals: SwarmInternals
  [name: string]: unknown
}

export type Swarm = Libp2p<Services>

/**
 * A public node's explicit listen addresses (a fixed IP and port, not 0.0.0.0 or port 0)
 * are what the operator says it is reachable at. libp2p would hold them back until AutoNAT
 * verifies them, which never happens in a small mesh, and a relay that does not advertise
 * its address hands its clients no usable circuit address.
 */
function explicitAddrs (listen: string[]): string[] {
  return listen.filter(addr => !/^\/ip[46]\/(0\.0\.0\.0|::)\//.test(addr) && !/\/(tcp|udp)\/0(\/|$)/.test(addr))
}

/**
 * `registry`, when given, receives libp2p's own metrics (the `--metrics` endpoint serves it).
 * `datastore`: where the DHT keeps records (a public node's caps them: provider-caps.ts).
 * `relayOpen`: whether the relay server takes reservations now (a node that may become
 * public runs one from the start, closed while it is private: roles/relay-server.ts).
 */
export async function createSwarm (
  config: NodeConfig, privateKey: PrivateKey, registry?: Registry, datastore?: Datastore, relayOpen: () => boolean = () => true
): Promise<Swarm> {
  const isPublic = startsPublic(config)
  const useRelays = config.relayMode.mode !== 'off'
  const services: Record<string, (components: any) => unknown> = {
    identify: identify(),
    // Tells connected peers when our protocols change: a node that turns public starts
    // handling the relay protocol, and its bootstrap vouches only for peers that list it.
    identifyPush: identifyPush(),
    ping: ping({ maxOutboundStreams: MAX_PING_STREAMS, maxInboundStreams: MAX_PING_STREAMS }),
    dht: kadDHT({
      protocol: DHT_PROTOCOL,
      clientMode: !isPublic,
      // Lab, LAN and loopback addresses are real here; the default mapper would drop them.
      peerInfoMapper: passthroughMapper,
      allowQueryWithZeroPeers: isPublic,
      // Every query waits for the first self-query, which kad-dht starts 1 s after start by
      // default: a tunnel's first lookup sat idle ~0.7 s of its ~1 s (issue 19). At 0 it runs
      // as soon as the routing table has a peer (the bootstrap, once identified).
      initialQuerySelfInterval: 0
    }),
    // Getters, not the components object itself: libp2p would treat that as a startable service.
    internals: (components: SwarmInternals): SwarmInternals => ({
      get transportManager () { return components.transportManager },
      get addressManager () { return components.addressManager }
    })
  }
  if (mayBePublic(config)) {
    services.relay = circuitRelayServer({
      reservations: {
        maxReservations: config.relay.maxReservations,
        defaultDataLimit: config.relay.maxBytes,
        defaultDurationLimit: config.relay.maxDurationMs
      },
      // Mesh members and allowed peers relay without a byte or duration cap (relay.ts).
      connectionLimit: relayConnectionLimit(relayTrusted(config))
    })
  }
  // Optional services are loaded only when asked for: each module costs memory (docs/performance.md).
  if (config.autonat) services.autonat = (await import('@libp2p/autonat')).autoNAT()
  const discovery = config.mdns ? [(await import('@libp2p/mdns')).mdns()] : []
  const metrics = registry != null ? (await import('@libp2p/prometheus-metrics')).prometheusMetrics({ registry }) : undefined

  const logger = libp2pLogger()
  return createLibp2p({
    privateKey,
    start: false,
    ...(logger != null ? { logger } : {}),
    addresses: {
      listen: config.listen,
      announce: config.announce,
      appendAnnounce: isPublic ? explicitAddrs(config.listen) : [],
      // No loopback, link-local or unspecified address leaves this node (nor a circuit through one).
      announceFilter: announceable
    },
    transports: [
      reuseportTcp(),
      // QUIC has its own handshake that a private-network key cannot wrap (config.ts refuses QUIC addresses then).
      ...(config.swarmKey == null ? [quic()] : []),
      // UDP punching (on unless --no-udp-punch): one UDP socket that punches, accepts and dials (transport/udx/).
      ...(config.udpPunch ? [udxTransport({ port: config.udpPunchPort })] : []),
      // --relay-mode off: direct connections only, so no relayed dials.
      // Reservations run side by side: libp2p's queue of one stalled the second of our two
      // slots behind its own relay discovery's join of the first (relays/choice.ts).
      ...(useRelays ? [circuitRelayTransport({ reservationCompletionTimeout: 10_000, reservationConcurrency: MAX_RELAY_RESERVATIONS })] : [])
    ],
    // Loaded only with a key: @libp2p/pnet compiles a WebAssembly module when it loads (lazy-noise.ts).
    ...(config.swarmKey != null ? { connectionProtector: (await import('@libp2p/pnet')).preSharedKey({ psk: config.swarmKey }) } : {}),
    connectionGater: relayGater(config, relayOpen),
    // @libp2p/tls's protocol, run on the TCP socket itself where it can (socket-tls.ts);
    // Noise for peers without it, loaded when one comes (lazy-noise.ts).
    connectionEncrypters: [socketTls(), lazyNoise()],
    streamMuxers: [yamux({
      maxInboundStreams: 4096,
      maxOutboundStreams: 4096,
      streamOptions: {
        maxStreamWindowSize: STREAM_WINDOW_BYTES
      }
    })],
    // Each relay slot holds a connection: libp2p's default of 300 would cap a big relay (config.ts).
    connectionManager: { maxConnections: config.maxConnections },
    peerDiscovery: discovery,
    ...(metrics != null ? { metrics } : {}),
    ...(datastore != null ? { datastore } : {}),
    services
  }) as unknown as Promise<Swarm>
}
