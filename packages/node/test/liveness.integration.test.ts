/**
 * A live tunnel's connections are pinged every second (liveness.ts): one that stops
 * answering is dropped within seconds, and the tunnel recovers on its own (issue 19,
 * roaming: the echo stalled 14-35 s until libp2p's monitor noticed).
 * "Stops answering" here: the provider's ping handler reads and never writes, as on a path
 * whose packets a NAT now drops silently.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { PING_PROTOCOL } from '@libp2p/ping'
import type { Stream } from '@libp2p/interface'
import type { PunchgateNode } from '../src/node.ts'
import { LIVENESS_INTERVAL_MS, LIVENESS_TIMEOUT_MS } from '../src/constants.ts'
import { echoServer, event, portOf, random, roundTrip, sha256, tcpAddr, testNode, type EchoServer } from './fixtures.ts'

async function answerPings (node: PunchgateNode, answer: boolean): Promise<void> {
  await node.swarm.unhandle(PING_PROTOCOL)
  await node.swarm.handle(PING_PROTOCOL, (stream: Stream) => {
    if (!answer) return // reads nothing, writes nothing: silence
    stream.addEventListener('message', evt => { stream.send(evt.data) })
  }, { force: true, maxInboundStreams: 8, runOnLimitedConnection: true })
}

describe('liveness', () => {
  let echo: EchoServer | undefined
  const nodes: PunchgateNode[] = []
  after(async () => {
    await Promise.all(nodes.map(async n => n.stop({ drainMs: 0 })))
    await echo?.close()
  })

  it('drops a tunnel connection that stops answering pings within seconds, and the tunnel comes back', async () => {
    echo = await echoServer()
    const bootstrap = await testNode()
    nodes.push(bootstrap)
    const provider = await testNode({ bootstrap: [tcpAddr(bootstrap)], allowAny: true, expose: [`echo=127.0.0.1:${echo.port}`] })
    nodes.push(provider)
    const tunnel = `${provider.peerId}:echo@127.0.0.1:0`
    const consumer = await testNode({ bootstrap: [tcpAddr(bootstrap)], tunnel: [tunnel] })
    nodes.push(consumer)
    await event(consumer, 'tunnel.activated', e => e.tunnel === tunnel)
    const port = portOf(consumer.tunnels()[0]?.bind ?? '')

    const before = consumer.swarm.getConnections().filter(c => c.remotePeer.toString() === provider.peerId)
    await answerPings(provider, false)
    const started = Date.now()
    const dropped = await event(consumer, 'peer.unresponsive', e => e.peer === provider.peerId, 15_000)
    const took = Date.now() - started
    assert.ok(took <= LIVENESS_INTERVAL_MS + LIVENESS_TIMEOUT_MS + 1_500, `noticed after ${took} ms`)
    assert.ok(dropped.ms >= LIVENESS_TIMEOUT_MS - 100)
    const silent = before.find(c => c.remoteAddr.toString() === dropped.addr)
    assert.ok(silent != null && silent.status !== 'open', 'the silent connection is closed')

    await answerPings(provider, true)
    await event(consumer, 'tunnel.activated', e => e.tunnel === tunnel, 15_000)
    const data = random(64 * 1024)
    const echoed = await roundTrip(port, data)
    assert.equal(sha256(echoed), sha256(data))
  })
})
