/**
 * Two public nodes; a provider reachable only through relays and a consumer, both private.
 * The provider holds a relay slot on each public node and its provider record reaches both.
 * The public node the by-name tunnel runs through dies: bytes flow again, byte-exact, by
 * name, through the other one, within a bound.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { PunchgateNode } from '../src/node.ts'
import { connectTo, echoServer, event, portOf, random, sha256, tcpAddr, testNode, until, type EchoServer } from './fixtures.ts'

/** The bound for the NAT lab (first byte <= 15 s after the kill); loopback must do well within it. */
const FIRST_BYTE_BOUND_MS = 15_000

/** Sends `data` on a new connection to the tunnel and resolves with the echo once it is all back. */
async function echoThrough (port: number, data: Buffer): Promise<{ echoed: Buffer, firstByteMs: number }> {
  const started = Date.now()
  const socket = await connectTo(port)
  const chunks: Buffer[] = []
  let firstByteMs = -1
  let received = 0
  socket.on('data', (chunk: Buffer) => {
    if (firstByteMs < 0) firstByteMs = Date.now() - started
    chunks.push(chunk)
    received += chunk.byteLength
    if (received >= data.byteLength) socket.end()
  })
  socket.write(data)
  await once(socket, 'close')
  return { echoed: Buffer.concat(chunks), firstByteMs }
}

/** The relay (peer id) a relayed connection from `from` to `to` goes through, if there is one. */
function relayOf (from: PunchgateNode, to: PunchgateNode): string | undefined {
  for (const c of from.swarm.getConnections()) {
    if (c.remotePeer.toString() !== to.peerId || c.status !== 'open') continue
    const match = /\/p2p\/([^/]+)\/p2p-circuit/.exec(c.remoteAddr.toString())
    if (match != null) return match[1]
  }
  return undefined
}

describe('a private node keeps two relays', () => {
  let p1: PunchgateNode
  let p2: PunchgateNode
  let provider: PunchgateNode
  let consumer: PunchgateNode
  let echo: EchoServer
  let port = 0
  const stopped = new Set<PunchgateNode>()

  before(async () => {
    echo = await echoServer()
    ;[p1, p2] = await Promise.all([testNode(), testNode()])
    const bootstrap = [tcpAddr(p1), tcpAddr(p2)]
    // No listen address: reachable through a relay only, as behind a NAT.
    provider = await testNode({ bootstrap, listen: ['none'], allowAny: true, expose: [`echo=127.0.0.1:${echo.port}`] }, { loopbackCandidates: true })
    await until(() => provider.status().relay.relays?.filter(r => r.status === 'reserved').length === 2, 15_000, 50)
    consumer = await testNode({ bootstrap, tunnelByName: ['echo@127.0.0.1:0'] }, { loopbackCandidates: true })
    await event(consumer, 'tunnel.activated')
    const [tunnel] = consumer.tunnels()
    if (tunnel == null) throw new Error('no tunnel')
    port = portOf(tunnel.bind)
  })

  after(async () => {
    await Promise.all([consumer, provider, p1, p2].filter(n => n != null && !stopped.has(n)).map(async n => n.stop({ drainMs: 0 })))
    await echo?.close()
  })

  it('holds a slot on both public nodes, its circuits through each in its addresses', () => {
    const relay = provider.status().relay
    assert.equal(relay.state, 'reserved')
    assert.deepEqual(new Set(relay.relays?.map(r => r.peer)), new Set([p1.peerId, p2.peerId]))
    for (const p of [p1, p2]) assert.ok(relay.addrs.some(a => a.includes(`/p2p/${p.peerId}/p2p-circuit`)), relay.addrs.join(' '))
  })

  it('when the public node its tunnel runs through dies, the tunnel comes back by name through the other, byte-exact', async () => {
    const data = random(256 * 1024)
    const before = await echoThrough(port, data)
    assert.equal(sha256(before.echoed), sha256(data))

    const through = relayOf(consumer, provider)
    assert.ok(through === p1.peerId || through === p2.peerId, `tunnel runs through ${String(through)}`)
    const [dead, survivor] = through === p1.peerId ? [p1, p2] : [p2, p1]
    stopped.add(dead)
    const killedAt = Date.now()
    await dead.stop({ drainMs: 0 })

    // A new connection right after the kill waits for the tunnel to come back, then echoes.
    const after = await echoThrough(port, data)
    const firstByteMs = Date.now() - killedAt - (after.echoed.length > 0 ? 0 : 0)
    assert.equal(sha256(after.echoed), sha256(data), 'byte-exact after the relay loss')
    assert.ok(after.firstByteMs >= 0 && firstByteMs <= FIRST_BYTE_BOUND_MS, `first byte ${after.firstByteMs} ms after connecting, ${firstByteMs} ms after the kill`)
    assert.equal(relayOf(consumer, provider), survivor.peerId)
    console.log(`relay failover: first byte ${after.firstByteMs} ms after connecting (${Date.now() - killedAt} ms after the kill, transfer included)`)

    // The provider keeps its slot on the survivor; the lost relay's slot waits out its backoff.
    const relay = provider.status().relay
    assert.ok(relay.relays?.some(r => r.peer === survivor.peerId && r.status === 'reserved'), JSON.stringify(relay.relays))
    assert.ok(relay.addrs.every(a => !a.includes(`/p2p/${dead.peerId}/p2p-circuit`)), relay.addrs.join(' '))
  })
})
