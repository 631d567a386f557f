// A plain js-libp2p node, as anyone would write one: @libp2p/tcp, circuit relay transport,
// identify and @libp2p/dcutr, TLS and yamux. Nothing of Punchgate's. scripts/dcutr-lab.sh runs
// it in the NAT lab against a Punchgate daemon.
//
//   node dcutr-plain-peer.mjs --listen PORT [--announce MULTIADDR] [--dial MULTIADDR] [--relay MULTIADDR]
//
// --announce: the address it tells peers (js-libp2p's DCUtR sends only verified or announced
// addresses). --dial: a peer to dial (e.g. a relayed address) once started. --relay: a relay
// to hold a reservation on, so that others can dial it through the relay.
// Prints one JSON object per line: {"event":"started",...}, {"event":"connection",...},
// {"event":"reserved"} once it has a relayed address.
import { parseArgs } from 'node:util'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { dcutr } from '@libp2p/dcutr'
import { multiaddr } from '@multiformats/multiaddr'

const { values } = parseArgs({ options: { listen: { type: 'string' }, announce: { type: 'string' }, dial: { type: 'string' }, relay: { type: 'string' } } })
const print = (o) => console.log(JSON.stringify({ t: Date.now(), ...o }))

const node = await createLibp2p({
  addresses: {
    listen: [`/ip4/0.0.0.0/tcp/${values.listen ?? '0'}`, ...(values.relay != null ? [`${values.relay}/p2p-circuit`] : [])],
    ...(values.announce != null ? { appendAnnounce: [values.announce] } : {})
  },
  transports: [tcp(), circuitRelayTransport()],
  connectionEncrypters: [tls()],
  streamMuxers: [yamux()],
  services: { identify: identify(), dcutr: dcutr() }
})

node.addEventListener('connection:open', (evt) => {
  const c = evt.detail
  print({ event: 'connection', peer: c.remotePeer.toString(), addr: c.remoteAddr.toString(), direction: c.direction, direct: !c.remoteAddr.toString().includes('/p2p-circuit') })
})
node.addEventListener('connection:close', (evt) => {
  const c = evt.detail
  print({ event: 'connection-closed', peer: c.remotePeer.toString(), addr: c.remoteAddr.toString() })
})
let reserved = false
node.addEventListener('self:peer:update', () => {
  if (reserved || !node.getMultiaddrs().some(ma => ma.toString().includes('/p2p-circuit'))) return
  reserved = true
  print({ event: 'reserved', addrs: node.getMultiaddrs().map(String) })
})
print({ event: 'started', peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })

if (values.dial != null) {
  try {
    const c = await node.dial(multiaddr(values.dial))
    print({ event: 'dialled', addr: c.remoteAddr.toString() })
  } catch (err) {
    print({ event: 'dial-failed', error: err.message })
  }
}

const stop = async () => { await node.stop(); process.exit(0) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
