/**
 * UDP punching beside TCP (on by default; the test says so explicitly): two private nodes with no TCP listener at all
 * (nothing a TCP punch can reach) learn their UDP mapping from the bootstrap
 * (`/punchgate/udp-observe/1.0.0`), exchange UDP candidates in the punch round, and go
 * direct over udx; a by-name tunnel then runs on that connection, byte-exact. On loopback.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { PunchgateNode } from '../src/node.ts'
import { findUdx } from '../src/transport/udx/transport.ts'
import { echoServer, event, portOf, random, roundTrip, sha256, tcpAddr, testNode, type EchoServer } from './fixtures.ts'

describe('UDP punching', () => {
  let boot: PunchgateNode
  let provider: PunchgateNode
  let consumer: PunchgateNode
  let echo: EchoServer
  let punched: Promise<{ method: string, addr: string }>

  before(async () => {
    echo = await echoServer()
    boot = await testNode({ udpPunch: true })
    const bootstrap = [tcpAddr(boot)]
    // No TCP listener on either side: a TCP punch has nothing to reach.
    provider = await testNode({ bootstrap, listen: ['none'], allowAny: true, expose: [`echo=127.0.0.1:${echo.port}`], udpPunch: true }, { loopbackCandidates: true })
    await event(provider, 'service.published')
    consumer = await testNode({ bootstrap, listen: ['none'], tunnelByName: ['echo@127.0.0.1:0'], udpPunch: true }, { loopbackCandidates: true })
    // Round 1 can be lost to the relayed connection it runs on (a duplicate circuit closed under it); round 2 follows 1 s later.
    punched = event(consumer, 'holepunch.succeeded', f => f.peer === provider.peerId)
  })

  after(async () => {
    await Promise.all([consumer, provider, boot].filter(n => n != null).map(async n => n.stop({ drainMs: 0 })))
    await echo?.close()
  })

  it('goes direct over udx in a punch round, and the tunnel echoes 4 MiB byte-exact on it', async () => {
    const { method, addr } = await punched
    assert.equal(method, 'udp-udx')
    assert.match(addr, /\/udp\/\d+\/udx\//)
    const direct = consumer.swarm.getConnections().filter(c => c.remotePeer.toString() === provider.peerId && !c.remoteAddr.toString().includes('/p2p-circuit'))
    assert.equal(direct.length, 1)
    assert.match(direct[0]!.remoteAddr.toString(), /\/udp\/\d+\/udx\//)
    const [tunnel] = consumer.tunnels()
    const opened = event(consumer, 'tunnel.opened', f => f.side === 'client')
    const data = random(4 * 1024 * 1024)
    const back = await roundTrip(portOf(tunnel!.bind), data)
    assert.equal(sha256(back), sha256(data))
    assert.equal((await opened).path, 'direct')
  })

  it('learned its UDP mapping from the bootstrap: its own udx port, as the bootstrap saw it', () => {
    const udx = findUdx(consumer.swarm.services.internals.transportManager.getTransports())
    assert.ok(udx?.port != null)
    const started = (consumer as unknown as { udpObserver: { mappings: () => string[] } }).udpObserver.mappings()
    assert.deepEqual(started, [`/ip4/127.0.0.1/udp/${udx.port}`])
  })
})
