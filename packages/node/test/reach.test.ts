/**
 * `/punchgate/reach/1.0.0`: who may ask (any peer on a direct connection, once per interval),
 * what it can make a public node do (TCP dials to the connection's own remote IP only, at
 * most 2 ports, 8 in flight in all), what the node keeps (verified public peers, still
 * connected ones only), and a loopback round trip with real dial-backs.
 */
import { after, before, describe, it, mock } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import type { Libp2p } from 'libp2p'
import { lpStream, streamPair } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { plainNode } from './fixtures.ts'
import { ReachRefusedError } from '../src/errors.ts'
import { askReach } from '../src/reachability/client.ts'
import { ReachServer, type DialBack, type ProbeConnection } from '../src/reachability/server.ts'
import { decodeAnswer, decodeRequest, encodeRequest } from '../src/reachability/wire.ts'
import { announcedIps, judgeReach } from '../src/reachability/decide.ts'
import { validateConfig } from '../src/config.ts'
import { Reachability, type ReachabilityInit } from '../src/roles/reachability.ts'

const frame = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value))

function conn (peer: string, addr: string, direct = true): ProbeConnection {
  return { remotePeer: { toString: () => peer } as never, direct, remoteAddr: multiaddr(addr) }
}

/** Sends `request` to `server`'s handler over a stream pair and returns the decoded answer. */
async function probe (server: ReachServer, connection: ProbeConnection, request: unknown = { ports: [4001] }): Promise<unknown> {
  const [local, remote] = await streamPair()
  const lp = lpStream(local)
  const handled = server.handler(remote, connection)
  await lp.write(frame(request))
  const answer = JSON.parse(new TextDecoder().decode((await lp.read({ signal: AbortSignal.timeout(5_000) })).subarray()))
  await handled
  return answer
}

/** A dial-back that records its targets and answers from `open` (host:port strings). */
function fakeDialBack (open: string[] = []): { dial: DialBack, dialed: string[] } {
  const dialed: string[] = []
  return {
    dialed,
    dial: async (host, port) => {
      dialed.push(`${host}:${port}`)
      return open.includes(`${host}:${port}`)
    }
  }
}

describe('reach request and answer frames', () => {
  it('a request names 1 or 2 distinct TCP ports, 1-65535', () => {
    assert.deepEqual(decodeRequest(encodeRequest([4001])), [4001])
    assert.deepEqual(decodeRequest(encodeRequest([4001, 4002])), [4001, 4002])
    for (const bad of [[], [0], [65536], [1.5], ['4001'], [1, 2, 3], [7, 7]]) {
      assert.equal(decodeRequest(frame({ ports: bad })), undefined, JSON.stringify(bad))
    }
    assert.equal(decodeRequest(frame([4001])), undefined)
    assert.equal(decodeRequest(new Uint8Array([0xff, 0xfe])), undefined)
  })

  it('an answer keeps only the ports asked for; an unknown refusal reads as bad-request', () => {
    assert.deepEqual(decodeAnswer(frame({ ip: '11.0.0.5', reachable: [4001, 22], unreachable: [4002, 'x'] }), [4001, 4002]),
      { ip: '11.0.0.5', reachable: [4001], unreachable: [4002] })
    assert.deepEqual(decodeAnswer(frame({ error: 'go-away' }), [4001]), { error: 'bad-request' })
    assert.throws(() => decodeAnswer(frame({ ip: 5 }), [4001]), /no ip/)
  })
})

describe('what a reach answer makes of the role', () => {
  const ours = ['11.0.0.3', '10.1.0.2', '127.0.0.1', '2001:db8::3']
  it('public only when a port answered at an address this host holds or announces', () => {
    assert.deepEqual(judgeReach({ ip: '11.0.0.3', reachable: [4001], unreachable: [4002] }, ours, 'B'),
      { reachable: true, reason: 'B reached 11.0.0.3:4001', addrs: ['/ip4/11.0.0.3/tcp/4001'] })
    assert.deepEqual(judgeReach({ ip: '2001:db8::3', reachable: [4001], unreachable: [] }, ours, 'B').addrs, ['/ip6/2001:db8::3/tcp/4001'])
    assert.deepEqual(judgeReach({ ip: '198.51.100.7', reachable: [4001], unreachable: [] }, [...ours, ...announcedIps(['/ip4/198.51.100.7/tcp/4001'])], 'B').reachable, true)
  })

  it('private when nothing answered, when reached only through a NAT (full cone, port forward), or only on loopback', () => {
    const closed = judgeReach({ ip: '11.0.0.3', reachable: [], unreachable: [4001] }, ours, 'B')
    assert.deepEqual(closed, { reachable: false, reason: 'B could not connect to 11.0.0.3:4001', addrs: [] })
    const nat = judgeReach({ ip: '11.0.0.11', reachable: [4001], unreachable: [] }, ours, 'B')
    assert.equal(nat.reachable, false)
    assert.match(nat.reason, /through a NAT .*--role public or --announce/)
    assert.equal(judgeReach({ ip: '127.0.0.1', reachable: [4001], unreachable: [] }, ours, 'B').reachable, false)
    assert.equal(judgeReach({ ip: '127.0.0.1', reachable: [4001], unreachable: [] }, ours, 'B', { loopback: true }).reachable, true)
  })
})

describe('reach server: what a stranger can make it do', () => {
  it('dials only the remote IP of the connection the request came on, at the ports asked', async () => {
    const { dial, dialed } = fakeDialBack(['11.0.0.5:4001'])
    const server = new ReachServer({ connected: () => true, dialBack: dial })
    // Extra fields naming another address are ignored: there is no way to name one.
    const answer = await probe(server, conn('a', '/ip4/11.0.0.5/tcp/50000'), { ports: [4001, 4002], ip: '10.0.0.1', addr: '/ip4/10.0.0.1/tcp/22' })
    assert.deepEqual(answer, { ip: '11.0.0.5', reachable: [4001], unreachable: [4002] })
    assert.deepEqual(dialed.sort(), ['11.0.0.5:4001', '11.0.0.5:4002'])
  })

  it('refuses a relayed or spliced connection without dialing', async () => {
    const { dial, dialed } = fakeDialBack()
    const server = new ReachServer({ connected: () => true, dialBack: dial })
    assert.deepEqual(await probe(server, conn('a', '/ip4/11.0.0.2/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA/p2p-circuit', false)), { error: 'not-direct' })
    // An unlimited circuit or a splice can claim direct; its address still names the relay.
    assert.deepEqual(await probe(server, conn('b', '/ip4/11.0.0.2/tcp/4002/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA/p2p-circuit/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA')), { error: 'not-direct' })
    assert.deepEqual(dialed, [])
  })

  it('refuses a malformed request without dialing', async () => {
    const { dial, dialed } = fakeDialBack()
    const server = new ReachServer({ connected: () => true, dialBack: dial })
    assert.deepEqual(await probe(server, conn('a', '/ip4/11.0.0.5/tcp/1'), { ports: [1, 2, 3] }), { error: 'bad-request' })
    assert.deepEqual(await probe(server, conn('b', '/ip4/11.0.0.5/tcp/1'), { ports: [0] }), { error: 'bad-request' })
    assert.deepEqual(dialed, [])
  })

  it('takes one request per peer per 30 s, and 4 per remote IP', async () => {
    let now = 0
    const { dial, dialed } = fakeDialBack()
    const server = new ReachServer({ connected: () => true, dialBack: dial, now: () => now })
    assert.deepEqual(await probe(server, conn('a', '/ip4/11.0.0.5/tcp/1')), { ip: '11.0.0.5', reachable: [], unreachable: [4001] })
    assert.deepEqual(await probe(server, conn('a', '/ip4/11.0.0.6/tcp/1')), { error: 'too-soon' }, 'a peer from another IP is the same peer')
    // Fresh peer ids from one IP: 4 probes of it in all.
    for (const peer of ['b', 'c', 'd']) assert.equal((await probe(server, conn(peer, '/ip4/11.0.0.5/tcp/1')) as { ip?: string }).ip, '11.0.0.5')
    assert.deepEqual(await probe(server, conn('e', '/ip4/11.0.0.5/tcp/1')), { error: 'too-soon' })
    assert.equal(dialed.length, 4)
    now += 30_000
    assert.equal((await probe(server, conn('a', '/ip4/11.0.0.5/tcp/1')) as { ip?: string }).ip, '11.0.0.5')
  })

  it('holds at most 8 dial-backs in flight in all; the next asker is told busy', async () => {
    let release = (): void => {}
    const released = new Promise<void>(resolve => { release = resolve })
    let started = 0
    const hanging: DialBack = async () => { started++; await released; return false }
    const server = new ReachServer({ connected: () => true, dialBack: hanging })
    const pending = [1, 2, 3, 4].map(async i => probe(server, conn(`p${i}`, `/ip4/11.0.0.${i}/tcp/1`), { ports: [4001, 4002] }))
    while (server.dialsInFlight < 8) await new Promise(resolve => setImmediate(resolve))
    assert.deepEqual(await probe(server, conn('late', '/ip4/11.0.0.9/tcp/1')), { error: 'busy' })
    assert.equal(started, 8)
    release()
    await Promise.all(pending)
    assert.equal(server.dialsInFlight, 0)
    assert.equal((await probe(server, conn('later', '/ip4/11.0.0.10/tcp/1')) as { ip?: string }).ip, '11.0.0.10')
  })

  it('gives every dial-back at most its timeout', async () => {
    const server = new ReachServer({
      connected: () => true,
      dialTimeoutMs: 50,
      dialBack: async (_host, _port, signal) => { await once(signal, 'abort'); return false }
    })
    const started = Date.now()
    assert.deepEqual(await probe(server, conn('a', '/ip4/11.0.0.5/tcp/1')), { ip: '11.0.0.5', reachable: [], unreachable: [4001] })
    assert.ok(Date.now() - started < 2_000)
  })

  it('lists verified peers while they stay connected and reachable, newest first', async () => {
    let now = 0
    const connected = new Set(['a', 'b'])
    const open = ['11.0.0.5:4001', '11.0.0.6:4001']
    const server = new ReachServer({ connected: peer => connected.has(peer), dialBack: async (h, p) => open.includes(`${h}:${p}`), now: () => now })
    await probe(server, conn('a', '/ip4/11.0.0.5/tcp/1'))
    await probe(server, conn('b', '/ip4/11.0.0.6/tcp/1'))
    await probe(server, conn('c', '/ip4/11.0.0.7/tcp/1'))
    assert.deepEqual(server.verifiedPublicPeers(), [
      { peer: 'b', addrs: ['/ip4/11.0.0.6/tcp/4001'] },
      { peer: 'a', addrs: ['/ip4/11.0.0.5/tcp/4001'] }
    ])
    connected.delete('b')
    assert.deepEqual(server.verifiedPublicPeers().map(p => p.peer), ['a'])
    // a's port closes: its next probe drops it.
    now += 30_000
    open.shift()
    await probe(server, conn('a', '/ip4/11.0.0.5/tcp/1'))
    assert.deepEqual(server.verifiedPublicPeers(), [])
    // b, back, is forgotten once 15 min pass without a successful probe.
    connected.add('b')
    assert.deepEqual(server.verifiedPublicPeers().map(p => p.peer), ['b'])
    now += 15 * 60_000
    assert.deepEqual(server.verifiedPublicPeers(), [])
  })
})


describe('reach probe over loopback', () => {
  let server: Libp2p
  let asker: Libp2p
  let reach: ReachServer
  let open: Server
  const accepted: Socket[] = []

  before(async () => {
    [server, asker] = await Promise.all([plainNode(), plainNode()])
    reach = new ReachServer({ connected: peer => server.getConnections().some(c => c.remotePeer.toString() === peer) })
    await reach.serve(server)
    open = createServer(socket => { accepted.push(socket); socket.on('error', () => {}) })
    open.listen(0, '127.0.0.1')
    await once(open, 'listening')
    await asker.dial(server.getMultiaddrs()[0] ?? multiaddr())
  })

  after(async () => {
    open?.close()
    await Promise.all([server?.stop(), asker?.stop()])
  })

  it('dials back from an ephemeral port: an open port is reachable, a closed one not; the asker is then verified', async () => {
    const port = (open.address() as { port: number }).port
    const closed = createServer()
    closed.listen(0, '127.0.0.1')
    await once(closed, 'listening')
    const closedPort = (closed.address() as { port: number }).port
    closed.close()
    await once(closed, 'close')

    const answer = await askReach(asker, server.peerId, [port, closedPort])
    assert.deepEqual(answer, { ip: '127.0.0.1', reachable: [port], unreachable: [closedPort] })
    const serverPort = Number(server.getMultiaddrs()[0]?.getComponents().find(c => c.name === 'tcp')?.value)
    assert.equal(accepted.length, 1)
    assert.notEqual(accepted[0]?.remotePort, serverPort, 'not from the listen port')
    assert.deepEqual(reach.verifiedPublicPeers(), [{ peer: asker.peerId.toString(), addrs: [`/ip4/127.0.0.1/tcp/${port}`] }])
  })

  it('a second ask within 30 s is refused, in words', async () => {
    await assert.rejects(askReach(asker, server.peerId, [4001]), (err: unknown) => err instanceof ReachRefusedError && err.reason === 'too-soon')
  })

  it('the asker checks its own request before sending it', async () => {
    await assert.rejects(askReach(asker, server.peerId, [1, 2, 3]), /1 to 2 distinct ports/)
  })
})

describe('the reach probe\'s schedule', () => {
  it('a probe due now is set with a delay of 0 or more, even when the clock ticks in between (no TimeoutNegativeWarning on stderr)', async () => {
    const boot = '12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8'
    const config = validateConfig({ bootstrap: [`/ip4/11.0.0.1/tcp/4001/p2p/${boot}`] })
    const swarm = new EventTarget()
    const init = {
      config,
      swarm,
      events: { emitEvent: () => {} },
      loop: { running: true, shutdownSignal: new AbortController().signal, state: { role: 'private' } },
      isBootstrap: (peer: string) => peer === boot,
      relayServer: { closeServer: async () => {} },
      splicing: {}
    } as unknown as ReachabilityInit
    const reachability = new Reachability(init)
    await reachability.start()

    // A clock that moves a millisecond on every reading, and timers that only record their delay.
    let now = 1_000_000
    mock.method(Date, 'now', () => now++)
    const delays: number[] = []
    mock.method(globalThis, 'setTimeout', (_fn: () => void, ms: number) => { delays.push(ms); return { unref: () => {} } })
    try {
      swarm.dispatchEvent(new CustomEvent('connection:open', {
        detail: { remotePeer: { toString: () => boot }, direct: true, remoteAddr: multiaddr(`/ip4/11.0.0.1/tcp/4001/p2p/${boot}`) }
      }))
    } finally {
      mock.restoreAll()
    }
    assert.equal(delays.length, 1, 'one probe scheduled')
    assert.ok((delays[0] ?? -1) >= 0, `delay ${delays[0]} ms`)
  })
})
