/**
 * Builds the libp2p node from a validated config. Roles follow from the config: no
 * bootstrap means public (DHT server, relay server); with one, private (DHT client,
 * relay client). Everything protocol-specific to Punchgate lives elsewhere.
 */
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { quic } from '@chainsafe/libp2p-quic'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { dcutr } from '@libp2p/dcutr'
import { autoNAT } from '@libp2p/autonat'
import { mdns } from '@libp2p/mdns'
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import type { PrivateKey } from '@libp2p/interface'
import type { AddressManager, TransportManager } from '@libp2p/interface-internal'
import type { NodeConfig } from './config.ts'
import { DHT_PROTOCOL } from './constants.ts'
import { socketTls } from './socket-tls.ts'

/** Per-stream receive window: large enough for fast links, small enough to bound memory per stream. */
const STREAM_WINDOW_BYTES = 4 * 1024 * 1024

/** The internals the runner needs that libp2p does not put on its public API. */
export interface SwarmInternals {
  transportManager: TransportManager
  addressManager: AddressManager
}

export interface Services {
  dht: KadDHT
  internals: SwarmInternals
  [name: string]: unknown
}

export type Swarm = Libp2p<Services>

export async function createSwarm (config: NodeConfig, privateKey: PrivateKey): Promise<Swarm> {
  const isPublic = config.bootstrap.length === 0
  const services: Record<string, (components: any) => unknown> = {
    identify: identify(),
    ping: ping(),
    dcutr: dcutr(),
    dht: kadDHT({
      protocol: DHT_PROTOCOL,
      clientMode: !isPublic,
      // Lab, LAN and loopback addresses are real here; the default mapper would drop them.
      peerInfoMapper: passthroughMapper,
      allowQueryWithZeroPeers: isPublic
    }),
    // Getters, not the components object itself: libp2p would treat that as a startable service.
    internals: (components: SwarmInternals): SwarmInternals => ({
      get transportManager () { return components.transportManager },
      get addressManager () { return components.addressManager }
    })
  }
  if (isPublic) {
    services.relay = circuitRelayServer({
      reservations: {
        maxReservations: config.relay.maxReservations,
        defaultDataLimit: config.relay.maxBytes,
        defaultDurationLimit: config.relay.maxDurationMs
      }
    })
  }
  if (config.autonat) services.autonat = autoNAT()

  return createLibp2p({
    privateKey,
    start: false,
    addresses: { listen: config.listen, announce: config.announce },
    transports: [tcp(), quic(), circuitRelayTransport({ reservationCompletionTimeout: 10_000 })],
    // @libp2p/tls's protocol, run on the TCP socket itself where it can (socket-tls.ts).
    connectionEncrypters: [socketTls(), noise()],
    streamMuxers: [yamux({
      maxInboundStreams: 4096,
      maxOutboundStreams: 4096,
      streamOptions: {
        maxStreamWindowSize: STREAM_WINDOW_BYTES
      }
    })],
    peerDiscovery: config.mdns ? [mdns()] : [],
    services
  }) as unknown as Promise<Swarm>
}
