/**
 * Dials leave from the listening port of the target's family (transport/reuseport-tcp.ts):
 * a peer behind a NAT or a stateful IPv6 firewall is reached only by the address:port the
 * other side saw us at, so an IPv6 dial must not come from an ephemeral port. On loopback,
 * with the real transport (the `loopback` test option lets loopback dials reuse the port).
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createLibp2p, type Libp2p } from 'libp2p'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Connection } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { canReusePort, dialBinding, reuseportTcp } from '../src/transport/reuseport-tcp.ts'
import { socketTls } from '../src/socket-tls.ts'

const nodes: Libp2p[] = []
// Both at once: that crashed Node (SIGSEGV in TLSWrap::ClearOut) until socket-tls.ts freed
// the OpenSSL state off OpenSSL's stack (freeSslOffStack).
after(async () => { await Promise.all(nodes.map(async n => n.stop())) })

async function node (listen: string[]): Promise<Libp2p> {
  const n = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen },
    transports: [reuseportTcp({}, { loopback: true })],
    connectionEncrypters: [socketTls()],
    streamMuxers: [yamux()]
  })
  nodes.push(n)
  return n
}

function port (ma: Multiaddr): number {
  return Number(ma.getComponents().find(c => c.name === 'tcp')?.value)
}

function addrOf (n: Libp2p, family: 'ip4' | 'ip6'): Multiaddr {
  const addr = n.getMultiaddrs().find(a => a.getComponents()[0]?.name === family)
  assert.ok(addr, `listening on ${family}`)
  return addr
}

/** The connection `b` accepted from `a`, once `a` dialled `target`. */
async function accepted (a: Libp2p, b: Libp2p, target: Multiaddr): Promise<Connection> {
  const inbound = new Promise<Connection>(resolve => {
    b.addEventListener('connection:open', evt => { if (evt.detail.remotePeer.equals(a.peerId)) resolve(evt.detail) })
  })
  await a.dial(target, { signal: AbortSignal.timeout(5_000) })
  return inbound
}

describe('reuseport dials', { skip: !canReusePort && 'SO_REUSEPORT dials are Linux only' }, () => {
  const dualStack = ['/ip4/127.0.0.1/tcp/0', '/ip6/::1/tcp/0']

  it('an IPv6 dial leaves from the IPv6 listening port, an IPv4 dial from the IPv4 one', async () => {
    const [a, b, c] = [await node(dualStack), await node(dualStack), await node(dualStack)]
    const ipv6 = await accepted(a, b, addrOf(b, 'ip6'))
    assert.equal(ipv6.remoteAddr.getComponents()[0]?.name, 'ip6')
    assert.equal(port(ipv6.remoteAddr), port(addrOf(a, 'ip6')), 'B sees A at its IPv6 listening port')
    const ipv4 = await accepted(a, c, addrOf(c, 'ip4'))
    assert.equal(port(ipv4.remoteAddr), port(addrOf(a, 'ip4')), 'C sees A at its IPv4 listening port')
    assert.notEqual(port(addrOf(a, 'ip4')), port(addrOf(a, 'ip6')), 'two listeners, two ports: the test tells them apart')
  })

  it('a node listening on IPv4 only dials IPv6 from an ephemeral port (and still connects)', async () => {
    const [a, b] = [await node(['/ip4/127.0.0.1/tcp/0']), await node(dualStack)]
    const conn = await accepted(a, b, addrOf(b, 'ip6'))
    assert.notEqual(port(conn.remoteAddr), port(addrOf(a, 'ip4')))
  })
})

describe('dialBinding: which port a dial leaves from', () => {
  const listening = [multiaddr('/ip4/10.1.0.2/tcp/4001'), multiaddr('/ip6/2001:db9:a::2/tcp/4002'), multiaddr('/ip6/fd00::2/tcp/4002')]

  it('binds an IPv6 dial to the IPv6 listener\'s port on ::, an IPv4 dial to the IPv4 one\'s on 0.0.0.0', () => {
    assert.deepEqual(dialBinding(multiaddr('/ip6/2001:db9:b::2/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'), listening), { host: '::', port: 4002 })
    assert.deepEqual(dialBinding(multiaddr('/ip4/11.0.0.12/tcp/4001'), listening), { host: '0.0.0.0', port: 4001 })
  })

  it('leaves a dial on an ephemeral port for a family we do not listen on, loopback, relayed or mapped addresses', () => {
    assert.equal(dialBinding(multiaddr('/ip6/2001:db9:b::2/tcp/4001'), [multiaddr('/ip4/10.1.0.2/tcp/4001')]), undefined)
    assert.equal(dialBinding(multiaddr('/ip4/11.0.0.12/tcp/4001'), [multiaddr('/ip6/2001:db9:a::2/tcp/4002')]), undefined)
    assert.equal(dialBinding(multiaddr('/ip6/::1/tcp/4001'), listening), undefined)
    assert.equal(dialBinding(multiaddr('/ip4/127.0.0.1/tcp/4001'), listening), undefined)
    assert.equal(dialBinding(multiaddr('/ip6/::ffff:b00:c/tcp/4001'), listening), undefined)
    assert.equal(dialBinding(multiaddr('/ip4/11.0.0.2/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA/p2p-circuit'), listening), undefined)
    assert.deepEqual(dialBinding(multiaddr('/ip6/::1/tcp/4001'), listening, true), { host: '::', port: 4002 }, 'tests let loopback reuse the port')
  })

  it('ignores a listener on port 0 (not bound yet)', () => {
    assert.equal(dialBinding(multiaddr('/ip6/2001:db9:b::2/tcp/4001'), [multiaddr('/ip6/::/tcp/0')]), undefined)
  })
})
