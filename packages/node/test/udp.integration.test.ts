import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { PunchgateNode } from '../src/node.ts'
import { MAX_DATAGRAM_BYTES } from '../src/protocol/datagram.ts'
import { echoServer, event, portOf, until, random, tcpAddr, testNode, udpClient, udpEchoServer, type UdpEchoServer } from './fixtures.ts'

/**
 * How long the steady flow runs. CI keeps the default of a few seconds; set
 * PUNCHGATE_TEST_UDP_FLOW_MS=300000 for the five-minute run.
 */
const FLOW_MS = Number(process.env.PUNCHGATE_TEST_UDP_FLOW_MS ?? 4_000)
/** Shorter than the flow, longer than the gap between its packets: the flow must keep its session alive. */
const IDLE_MS = 2_000
const IDLE = `${IDLE_MS / 1000}s`

describe('UDP tunnels on loopback', () => {
  let bootstrap: PunchgateNode
  let provider: PunchgateNode
  let consumer: PunchgateNode
  let echo: UdpEchoServer
  let tcpEcho: Awaited<ReturnType<typeof echoServer>>
  const ports = new Map<string, number>()
  const byName = 'dns@127.0.0.1:0/udp'
  let byPeer: string
  let unknown: string
  let wrongTransport: string

  before(async () => {
    echo = await udpEchoServer()
    tcpEcho = await echoServer()
    bootstrap = await testNode()
    provider = await testNode({
      bootstrap: [tcpAddr(bootstrap)],
      allowAny: true,
      expose: [`dns=127.0.0.1:${echo.port}/udp`, `tcp=127.0.0.1:${tcpEcho.port}`],
      udpIdleTimeout: IDLE
    })
    await event(provider, 'service.published', e => e.name === 'dns')
    byPeer = `${provider.peerId}:dns@127.0.0.1:0/udp`
    unknown = `${provider.peerId}:nope@127.0.0.1:0/udp`
    wrongTransport = `${provider.peerId}:tcp@127.0.0.1:0/udp`
    consumer = await testNode({
      bootstrap: [tcpAddr(bootstrap)],
      tunnelByName: [byName],
      tunnel: [byPeer, unknown, wrongTransport],
      udpIdleTimeout: IDLE
    })
    for (const t of consumer.tunnels()) ports.set(t.tunnel, portOf(t.bind))
    await Promise.all([byName, byPeer, unknown, wrongTransport].map(async id => event(consumer, 'tunnel.activated', e => e.tunnel === id)))
  })

  after(async () => {
    await Promise.all([consumer?.stop(), provider?.stop(), bootstrap?.stop()])
    await echo?.close()
    await tcpEcho?.close()
  })

  it('delivers each datagram whole, from empty to 65,507 bytes, and routes the replies back', async () => {
    const client = await udpClient(ports.get(byName) ?? 0)
    try {
      const sizes = [0, 1, 1400, 9000, MAX_DATAGRAM_BYTES]
      const sent: Buffer[] = []
      for (const size of sizes) {
        const data = random(size)
        sent.push(data)
        client.send(data)
        // One at a time, so the n-th reply is the n-th datagram: nothing merged, split or reordered.
        await client.waitFor(sent.length)
      }
      assert.deepEqual(client.received.map(d => d.length), sizes)
      for (const [i, data] of sent.entries()) assert.ok(client.received[i]?.equals(data), `datagram ${i} byte-exact`)
    } finally {
      client.close()
    }
  })

  it('gives two local senders only their own replies', async () => {
    const a = await udpClient(ports.get(byPeer) ?? 0)
    const b = await udpClient(ports.get(byPeer) ?? 0)
    try {
      const count = 50
      for (let i = 0; i < count; i++) {
        a.send(Buffer.from(`a-${i}`))
        b.send(Buffer.from(`b-${i}`))
      }
      const [fromA, fromB] = await Promise.all([a.waitFor(count), b.waitFor(count)])
      assert.deepEqual(new Set(fromA.map(d => d.toString())), new Set(Array.from({ length: count }, (_, i) => `a-${i}`)))
      assert.deepEqual(new Set(fromB.map(d => d.toString())), new Set(Array.from({ length: count }, (_, i) => `b-${i}`)))
    } finally {
      a.close()
      b.close()
    }
  })

  it(`keeps a steady WireGuard-like flow on one session for ${FLOW_MS} ms, past the ${IDLE} idle timeout`, async () => {
    const client = await udpClient(ports.get(byName) ?? 0)
    const sender = `127.0.0.1:${client.port}`
    let sessions = 0
    const countSessions = (e: { sender?: string }): void => { if (e.sender === sender) sessions++ }
    consumer.events.on('tunnel.opened', countSessions)
    // How a session ended, should one end mid-flow, on either side.
    const closes: Array<{ closedBy?: string, at: number }> = []
    const recordClose = (e: { sender?: string, transport?: string }): void => { if (e.sender === sender) closes.push({ ...e, at: Date.now() - started }) }
    // The provider's events name no sender: its sessions that opened during this test.
    const recordServerClose = (e: { transport?: string, ms: number }): void => {
      const at = Date.now() - started
      if (e.transport === 'udp' && at - e.ms >= 0) closes.push({ ...e, at })
    }
    consumer.events.on('tunnel.closed', recordClose)
    provider.events.on('tunnel.closed', recordServerClose)
    const started = Date.now()
    try {
      // A handshake initiation, then data packets at a steady pace, each answered.
      client.send(random(148))
      await client.waitFor(1)
      let sent = 1
      let lost = 0
      while (Date.now() - started < FLOW_MS) {
        client.send(random(1420))
        sent++
        // UDP may lose a datagram, and a WireGuard-like peer carries on: wait for the answer
        // a while (less than the idle timeout, which must not fire), then send the next.
        await client.waitFor(sent - lost, 1_000).catch(() => { lost++ })
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      const tunnel = consumer.tunnels().find(t => t.tunnel === byName)
      const report = `${lost} of ${sent} datagrams unanswered, ${sessions} session(s); tunnel ${JSON.stringify(tunnel)}; closed: ${JSON.stringify(closes)}`
      // The idle timer never fired on either side, however busy the machine.
      assert.deepEqual(closes.filter(c => c.closedBy === 'idle'), [], report)
      // In CI a session sometimes ended after about 2 minutes without an error (not
      // explained yet; docs/reliability.md): the next datagram opened a new one, and the one
      // in between was lost. More than 1 loss in 500 is a fault.
      assert.ok(lost <= Math.max(1, sent / 500), report)
      if (lost > 0 || sessions > 1) console.error(`udp flow: ${report}`)
    } finally {
      consumer.events.off('tunnel.opened', countSessions)
      consumer.events.off('tunnel.closed', recordClose)
      provider.events.off('tunnel.closed', recordServerClose)
      client.close()
    }
  })

  it('keeps a busy session when the wall clock jumps forward (NTP, a VM resumed)', async () => {
    const client = await udpClient(ports.get(byName) ?? 0)
    const sender = `127.0.0.1:${client.port}`
    let sessions = 0
    const countSessions = (e: { sender?: string }): void => { if (e.sender === sender) sessions++ }
    consumer.events.on('tunnel.opened', countSessions)
    const wallClock = Date.now
    const sleep = async (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
    try {
      const opened = event(consumer, 'tunnel.opened', e => e.sender === sender)
      client.send(Buffer.from('0'))
      await opened
      const openedAt = performance.now()
      await client.waitFor(1)
      // Datagrams every 100 ms until just before the session's first idle check (the idle
      // timeout after it opened); around that check the wall clock is an hour ahead.
      let sent = 1
      while (performance.now() - openedAt < IDLE_MS - 250) {
        client.send(Buffer.from(String(sent++)))
        await client.waitFor(sent)
        await sleep(100)
      }
      Date.now = () => wallClock() + 3_600_000
      await sleep(IDLE_MS + 250 - (performance.now() - openedAt))
      Date.now = wallClock
      for (let i = 0; i < 3; i++) {
        client.send(Buffer.from(String(sent++)))
        await client.waitFor(sent)
      }
    } finally {
      Date.now = wallClock
      consumer.events.off('tunnel.opened', countSessions)
      client.close()
    }
    assert.equal(sessions, 1, 'the session was closed as idle and opened again')
  })

  it('closes an idle session, and the next datagram from that sender opens a new one', async () => {
    const client = await udpClient(ports.get(byName) ?? 0)
    const sender = `127.0.0.1:${client.port}`
    try {
      client.send(Buffer.from('first'))
      await client.waitFor(1)
      const closed = await event(consumer, 'tunnel.closed', e => e.sender === sender, 10_000)
      assert.equal(closed.transport, 'udp')
      assert.equal(closed.closedBy, 'idle')
      assert.equal(closed.datagramsOut, 1)
      assert.equal(closed.datagramsIn, 1)
      const reopened = event(consumer, 'tunnel.opened', e => e.sender === sender)
      client.send(Buffer.from('second'))
      await reopened
      await client.waitFor(2)
      assert.equal(client.received[1]?.toString(), 'second')
    } finally {
      client.close()
    }
  })

  it('drops and counts datagrams for a service the peer does not expose; nothing reaches a target', async () => {
    const client = await udpClient(ports.get(unknown) ?? 0)
    const echoed = echo.received()
    try {
      const rejected = event(consumer, 'tunnel.rejected', e => e.tunnel === unknown)
      const serverSide = event(provider, 'tunnel.rejected', e => e.service === 'nope')
      for (let i = 0; i < 3; i++) client.send(Buffer.from(`lost-${i}`))
      assert.equal((await rejected).reason, 'unknown-service')
      assert.equal((await serverSide).reason, 'unknown-service')
      for (let i = 0; i < 2; i++) client.send(Buffer.from(`lost-late-${i}`))
      const dropped = (): number => consumer.tunnels().find(t => t.tunnel === unknown)?.dropped ?? 0
      // No event per dropped datagram (that would flood the log): wait, bounded, for the socket to have read them.
      await until(() => dropped() >= 5)
      assert.equal(dropped(), 5)
      assert.equal(client.received.length, 0)
      assert.equal(echo.received(), echoed)
    } finally {
      client.close()
    }
  })

  it('refuses a UDP session to a TCP service with wrong-transport', async () => {
    const client = await udpClient(ports.get(wrongTransport) ?? 0)
    try {
      const rejected = event(consumer, 'tunnel.rejected', e => e.tunnel === wrongTransport)
      client.send(Buffer.from('x'))
      assert.equal((await rejected).reason, 'wrong-transport')
      assert.equal(tcpEcho.connections(), 0)
    } finally {
      client.close()
    }
  })
})
