/**
 * A light private peer for the scale bench: js-libp2p with what the daemon speaks to a
 * relay (TCP, Punchgate's TLS encrypter, yamux with the daemon's settings, identify,
 * ping, the circuit relay client), and nothing else: no DHT, no tunnels. It holds one
 * relay reservation, made as the daemon makes it (relays/choice.ts: listen on
 * `<relay>/p2p-circuit`). Each dials from its own loopback address (127.0.x.y), as
 * peers on the internet come from their own addresses.
 */
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp, type TCPSocketOptions } from '@libp2p/tcp'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import type { TransportManager } from '@libp2p/interface-internal'
import { socketTls } from '@punchgate/node'

/** How long one reservation may take (libp2p's own default is 5 s; the bench's machine is shared). */
const RESERVATION_TIMEOUT_MS = 30_000

interface Internals { transportManager: TransportManager }

export interface LightClient {
  node: Libp2p<{ internals: Internals }>
  /** Reserves a slot on `relay` (a multiaddr ending in /p2p/<id>); throws if refused or timed out. */
  reserve: (relay: string) => Promise<void>
  /** Whether the reservation's circuit address is still among ours. */
  holds: (relay: string) => boolean
  /** Calls `listener` whenever the last connection to `relay` closes (the slot goes with it). */
  onLost: (relay: string, listener: () => void) => void
}

export async function lightClient (localAddress: string): Promise<LightClient> {
  const node = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    transports: [
      // @libp2p/tcp hands dialOpts to net.connect(), whose localAddress its type leaves out.
      tcp({ dialOpts: { localAddress } as TCPSocketOptions }),
      circuitRelayTransport({ reservationCompletionTimeout: RESERVATION_TIMEOUT_MS })
    ],
    connectionEncrypters: [socketTls()],
    streamMuxers: [yamux({ maxInboundStreams: 4096, maxOutboundStreams: 4096, streamOptions: { maxStreamWindowSize: 4 * 1024 * 1024 } })],
    services: {
      identify: identify(),
      // As the daemon's (swarm.ts MAX_PING_STREAMS): with @libp2p/ping's default of 2 inbound
      // streams, a third ping from the relay (its connection monitor and RTT probes overlapping
      // on a slow machine) was reset, and the relay's monitor cut the connection, slot and all.
      ping: ping({ maxInboundStreams: 4, maxOutboundStreams: 4 }),
      internals: (components: Internals): Internals => ({ get transportManager () { return components.transportManager } })
    }
  })
  await node.start()
  return {
    node,
    reserve: async relay => node.services.internals.transportManager.listen([multiaddr(`${relay}/p2p-circuit`)]),
    holds: relay => node.getMultiaddrs().some(ma => ma.toString().startsWith(`${relay}/p2p-circuit`)),
    onLost: (relay, listener) => {
      const id = relay.slice(relay.lastIndexOf('/p2p/') + 5)
      node.addEventListener('connection:close', evt => {
        if (evt.detail.remotePeer.toString() === id && node.getConnections(evt.detail.remotePeer).length === 0) listener()
      })
    }
  }
}
