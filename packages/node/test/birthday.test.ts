/**
 * The birthday method against symmetric NATs (transport/udx/birthday.ts, holepunch/hard-nat.ts):
 * the symmetric side's socket fan-out, the cone side's paced random spray, the choice of who
 * does which, and the DCUtR extension field that carries it. On loopback, real udx sockets.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket, type Socket } from 'node:dgram'
import { once } from 'node:events'
import { createLibp2p, type Libp2p } from 'libp2p'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { TransportManager } from '@libp2p/interface-internal'
import type { Connection, Stream } from '@libp2p/interface'
import type UDX from 'udx-native'
import type { UdxSocket } from 'udx-native'
import { findUdx, udxTransport, type UdxTransport } from '../src/transport/udx/transport.ts'
import { decodeDatagram, encodeDatagram } from '../src/transport/udx/datagrams.ts'
import { BIRTHDAY_SOCKETS, fanOut, hitChance, MIN_PORT, PREDICTION_WINDOW, predictedPorts, randomPorts, spray, SPRAY_BATCH_INTERVAL_MS, SPRAY_PROBES, sprayOrder } from '../src/transport/udx/birthday.ts'
import { chooseBirthday, publicMapping } from '../src/holepunch/hard-nat.ts'
import { decodeHolePunch, encodeHolePunch } from '../src/holepunch/dcutr-wire.ts'
import { decodePunch, encodePunch } from '../src/holepunch/wire.ts'
import { socketTls } from '../src/socket-tls.ts'

type Node = Libp2p<{ internals: { transportManager: TransportManager } }>
const ECHO = '/test/echo/1.0.0'
const probe = (): Uint8Array => encodeDatagram({ type: 'probe', token: new Uint8Array(8) })

const nodes: Node[] = []
const sockets: Socket[] = []
after(async () => {
  for (const s of sockets) s.close()
  await Promise.all(nodes.map(async n => n.stop()))
})

async function node (): Promise<{ node: Node, udx: UdxTransport }> {
  const n = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    transports: [udxTransport({ host: '127.0.0.1' })],
    connectionEncrypters: [socketTls()],
    streamMuxers: [yamux()],
    services: {
      internals: (components: { transportManager: TransportManager }) => ({ get transportManager () { return components.transportManager } })
    }
  }) as Node
  nodes.push(n)
  await n.handle(ECHO, (stream: Stream) => {
    stream.addEventListener('message', evt => { stream.send(evt.data) })
    stream.addEventListener('remoteCloseWrite', () => { void stream.close() })
  })
  const udx = findUdx(n.services.internals.transportManager.getTransports())
  assert.ok(udx != null)
  return { node: n, udx }
}

async function dgram (): Promise<Socket> {
  const s = createSocket('udp4')
  sockets.push(s)
  s.bind(0, '127.0.0.1')
  await once(s, 'listening')
  return s
}

/** Resolves with the distinct source ports of PROBEs `s` receives, once there are `count`. */
async function probeSources (s: Socket, count: number): Promise<number[]> {
  const ports = new Set<number>()
  return await new Promise(resolve => {
    s.on('message', (m, from) => {
      if (decodeDatagram(m)?.type !== 'probe') return
      ports.add(from.port)
      if (ports.size === count) resolve([...ports])
    })
  })
}

async function newUdx (): Promise<UDX> {
  const { default: Udx } = await import('udx-native')
  return new Udx()
}

describe('birthday method: the odds and the ports', () => {
  it('256 sockets x 1024 probes against a random allocator over 1024-65535: ~98% per round', () => {
    const p = hitChance(BIRTHDAY_SOCKETS, SPRAY_PROBES)
    assert.ok(p > 0.975 && p < 0.99, `hit chance ${p}`)
    assert.equal(hitChance(BIRTHDAY_SOCKETS, 0), 0)
  })

  it('random ports are distinct and never below 1024', () => {
    const ports = randomPorts(SPRAY_PROBES)
    assert.equal(ports.length, SPRAY_PROBES)
    assert.equal(new Set(ports).size, SPRAY_PROBES)
    assert.ok(ports.every(p => p >= MIN_PORT && p <= 65535))
  })
})

describe('birthday method: the cone side\'s spray', () => {
  function fakeSocket (): { socket: UdxSocket, sent: Array<{ port: number, host: string, at: number }> } {
    const sent: Array<{ port: number, host: string, at: number }> = []
    const socket = { trySend: (_b: Uint8Array, port: number, host: string) => { sent.push({ port, host, at: Date.now() }) } } as unknown as UdxSocket
    return { socket, sent }
  }

  it('sends at most SPRAY_PROBES PROBEs, only to the one IP, to distinct ports, paced in batches', async () => {
    const { socket, sent } = fakeSocket()
    const started = Date.now()
    const n = await spray(socket, '11.0.0.12', AbortSignal.timeout(10_000), 50)
    assert.equal(n, 50)
    assert.equal(sent.length, 50)
    assert.deepEqual([...new Set(sent.map(s => s.host))], ['11.0.0.12'])
    assert.equal(new Set(sent.map(s => s.port)).size, 50)
    // 10 batches of 5: 9 pauses of 20 ms (250/s)
    assert.ok(Date.now() - started >= 9 * SPRAY_BATCH_INTERVAL_MS - 5, `paced (${Date.now() - started} ms)`)
  })

  it('a spray asked for more than the cap sends the cap; an abort stops it at once', async () => {
    const { socket, sent } = fakeSocket()
    const controller = new AbortController()
    const sending = spray(socket, '11.0.0.12', controller.signal, 100_000)
    setTimeout(() => { controller.abort() }, 100)
    const n = await sending
    assert.ok(n < 100, `stopped early (${n} sent)`)
    assert.equal(sent.length, n)
    assert.ok(SPRAY_PROBES === 1024 && randomPorts(100_000).length === 65536 - MIN_PORT, 'the cap and the port range')
  })
})

describe('birthday method: the symmetric side\'s fan-out', () => {
  it('opens at most 256 sockets that each PROBE the target; the one that hears the target wins, a stranger\'s packet does not, the others close', async () => {
    const udx = await newUdx()
    const target = await dgram()
    const stranger = await dgram()
    const open = new Set<UdxSocket>()
    const seen = probeSources(target, BIRTHDAY_SOCKETS)
    const controller = new AbortController()
    const winning = fanOut(udx, { host: '127.0.0.1', port: target.address().port }, { count: 10_000, signal: controller.signal, open })
    const ports = await seen
    assert.equal(open.size, BIRTHDAY_SOCKETS, 'capped at BIRTHDAY_SOCKETS')
    stranger.send(probe(), ports[0]!, '127.0.0.1')
    target.send(Buffer.from('not ours'), ports[1]!, '127.0.0.1')
    target.send(probe(), ports[5]!, '127.0.0.1')
    const winner = await winning
    assert.equal(winner.address().port, ports[5], 'the socket that heard the target, not the one a stranger or garbage reached')
    assert.deepEqual([...open], [winner], 'every other socket closed')
    controller.abort()
    open.delete(winner)
    await winner.close()
  })

  it('an abort closes every socket and rejects', async () => {
    const udx = await newUdx()
    const target = await dgram()
    const open = new Set<UdxSocket>()
    const seen = probeSources(target, 8)
    const controller = new AbortController()
    const fanning = fanOut(udx, { host: '127.0.0.1', port: target.address().port }, { count: 8, signal: controller.signal, open })
    await seen
    controller.abort()
    await assert.rejects(fanning)
    assert.equal(open.size, 0)
  })
})

describe('birthday method: a udx connection over the winning socket', () => {
  it('the fan-out side dials the peer over the socket its PROBE reached; the connection is TLS to the right peer and echoes', async () => {
    const a = await node()
    const b = await node()
    const bSocket = (b.udx as unknown as { socket: UdxSocket }).socket
    // B plays the cone side: it answers the first fan-out socket it hears from (in the lab its spray finds one).
    const heard = new Promise<number>(resolve => {
      bSocket.on('message', (m, from) => { if (decodeDatagram(m)?.type === 'probe') resolve(from.port) })
    })
    const inbound = new Promise<Connection>(resolve => {
      b.node.addEventListener('connection:open', evt => { resolve(evt.detail) })
    })
    const dialing = a.udx.birthdayDial({ host: '127.0.0.1', port: b.udx.port! }, b.node.peerId.toString(), AbortSignal.timeout(5_000))
    const port = await heard
    void b.udx.probe([{ host: '127.0.0.1', port }], AbortSignal.timeout(2_000))
    const connection = await dialing
    assert.equal(connection.remotePeer.toString(), b.node.peerId.toString())
    assert.equal((await inbound).remoteAddr.toString(), `/ip4/127.0.0.1/udp/${port}/udx/p2p/${a.node.peerId.toString()}`, 'B sees the winning socket')
    const stream = await connection.newStream(ECHO)
    const back = new Promise<string>(resolve => { stream.addEventListener('message', evt => { resolve(Buffer.from(evt.data.subarray()).toString()) }) })
    stream.send(Buffer.from('over the winning socket'))
    assert.equal(await back, 'over the winning socket')
    await assert.rejects(a.udx.birthdayDial({ host: '127.0.0.1', port: b.udx.port! }, b.node.peerId.toString(), AbortSignal.timeout(1)), 'aborted')
    await connection.close()
  })

  it('one fan-out at a time, one spray at a time', async () => {
    const a = await node()
    const target = await dgram()
    const controller = new AbortController()
    const seen = probeSources(target, BIRTHDAY_SOCKETS)
    const first = a.udx.birthdayDial({ host: '127.0.0.1', port: target.address().port }, a.node.peerId.toString(), controller.signal)
    await seen
    await assert.rejects(a.udx.birthdayDial({ host: '127.0.0.1', port: target.address().port }, a.node.peerId.toString(), controller.signal), /runs already/)
    const spraying = a.udx.sprayProbes('127.0.0.2', controller.signal)
    assert.equal(await a.udx.sprayProbes('127.0.0.2', controller.signal), 0, 'a second spray sends nothing')
    controller.abort()
    await assert.rejects(first)
    assert.ok(await spraying < SPRAY_PROBES)
  })
})

describe('birthday method: who does which, and the wire', () => {
  const cone = ['/ip4/11.0.0.12/udp/5000', '/ip4/10.2.0.2/udp/5000']
  const symmetric = ['/ip4/11.0.0.11/udp/48017', '/ip4/10.1.0.2/udp/5000']

  it('only when exactly one side looks symmetric; that side fans out', () => {
    assert.equal(chooseBirthday(symmetric, cone), 'initiator')
    assert.equal(chooseBirthday(cone, symmetric), 'responder')
    assert.equal(chooseBirthday(symmetric, symmetric), undefined, 'both symmetric: no known mapping to meet at')
    assert.equal(chooseBirthday(cone, cone), undefined, 'the plain UDP punch works')
    assert.equal(chooseBirthday([], symmetric), undefined)
  })

  it('targets only the peer\'s public IPv4 mapping', () => {
    assert.deepEqual(publicMapping(['/ip4/10.2.0.2/udp/5000', '/ip4/11.0.0.12/udp/5000']), { host: '11.0.0.12', port: 5000 })
    assert.equal(publicMapping(['/ip4/10.2.0.2/udp/5000', '/ip4/192.168.1.2/udp/7', '/ip4/127.0.0.1/udp/7', '/ip4/0.0.0.0/udp/7', '/ip4/224.0.0.1/udp/7', '/ip4/169.254.1.1/udp/7']), undefined)
  })

  it('DCUtR extension field 1004 carries the offer and the choice; unknown values are dropped; the JSON wire never carries it', () => {
    for (const hardNat of ['offer', 'sender-fans-out', 'receiver-fans-out'] as const) {
      const decoded = decodeHolePunch(encodeHolePunch({ type: 'connect', addrs: [], udp: cone, hardNat }))
      assert.equal(decoded.type === 'connect' && decoded.hardNat, hardNat)
    }
    const bytes = encodeHolePunch({ type: 'connect', addrs: [] })
    const odd = Uint8Array.from([...bytes, 0xe0, 0x3e, 9]) // field 1004, varint 9
    const decoded = decodeHolePunch(odd)
    assert.equal(decoded.type === 'connect' && decoded.hardNat, undefined)
    const json = decodePunch(encodePunch({ type: 'connect', addrs: [], hardNat: 'offer' }))
    assert.equal(json.type === 'connect' && json.hardNat, undefined)
    assert.ok(!new TextDecoder().decode(encodePunch({ type: 'connect', addrs: [], hardNat: 'offer' })).includes('hardNat'))
  })
})

describe('birthday method: the round starts it only towards the peer\'s public candidate', () => {
  // A UdpPunch as the node's is: a class whose methods use `this` (udp-observe.ts).
  class FakeUdp {
    calls: string[] = []
    private onSpray: () => void = () => {}
    readonly sprayed = new Promise<void>(resolve => { this.onSpray = resolve })
    candidates (): string[] { return [] }
    mappings (): string[] { return [] }
    async probe (): Promise<void> {}
    async birthdayDial (target: { host: string, port: number }): Promise<void> { this.calls.push(`fan-out ${target.host}:${target.port}`) }
    predicted: number[] = []
    async spray (ip: string, _signal: AbortSignal, predicted: number[] = []): Promise<void> { this.calls.push(`spray ${ip}`); this.predicted = predicted; this.onSpray() }
  }

  async function puncher (udp: FakeUdp): Promise<{ birthday: (...args: unknown[]) => boolean, events: string[] }> {
    const { HolePuncher } = await import('../src/holepunch/puncher.ts')
    const events: string[] = []
    const p = new HolePuncher({
      swarm: {} as never,
      observed: {} as never,
      events: { emitEvent: (name: string, e: { role: string, target: string }) => { events.push(`${name} ${e.role} ${e.target}`) } } as never,
      mayPunchWith: () => true,
      udp
    })
    return { birthday: (p as unknown as { birthday: (...args: unknown[]) => boolean }).birthday.bind(p), events }
  }

  it('sprays the public candidate\'s IP, or fans out to that candidate; with no public candidate, nothing', async () => {
    const udp = new FakeUdp()
    const { birthday, events } = await puncher(udp)
    const signal = AbortSignal.timeout(5_000)
    const theirs = ['/ip4/10.2.0.2/udp/5000', '/ip4/11.0.0.12/udp/4000']
    assert.equal(birthday('peer', 1, false, theirs, signal, 0), true)
    assert.equal(birthday('peer', 1, true, theirs, signal, 0), true)
    assert.equal(birthday('peer', 1, false, ['/ip4/10.2.0.2/udp/5000', '/ip4/127.0.0.1/udp/9'], signal, 0), false)
    await udp.sprayed
    // Port prediction from the public candidate's port only (never the private one's).
    assert.deepEqual(udp.predicted.slice(0, 3), [4001, 4002, 4003])
    assert.equal(udp.predicted.length, PREDICTION_WINDOW)
    assert.deepEqual(udp.calls.sort(), ['fan-out 11.0.0.12:4000', 'spray 11.0.0.12'])
    assert.deepEqual(events.sort(), ['holepunch.birthday fan-out 11.0.0.12:4000', 'holepunch.birthday spray 11.0.0.12:4000'])
  })
})

describe('port prediction: the spray tries the ports after the observed one first', () => {
  it('predicts the ports after each observed port, nearest first, within 1024-65535', () => {
    assert.deepEqual(predictedPorts([30005], 4), [30006, 30007, 30008, 30009])
    assert.deepEqual(predictedPorts([30005, 40000], 2), [30006, 40001, 30007, 40002])
    assert.deepEqual(predictedPorts([65533], 5), [65534, 65535])
    assert.deepEqual(predictedPorts([30005, 30006], 2), [30006, 30007, 30008], 'no port twice')
    assert.equal(predictedPorts([2000, 20000, 40000]).length, SPRAY_PROBES, 'at most the spray\'s budget')
  })

  it('the spray order is the predicted ports, then distinct random ones, in all the budget', () => {
    const predicted = predictedPorts([30005])
    const order = sprayOrder(SPRAY_PROBES, [...predicted, 80, 70000, 30006])
    assert.equal(order.length, SPRAY_PROBES)
    assert.equal(new Set(order).size, SPRAY_PROBES, 'distinct')
    assert.deepEqual(order.slice(0, predicted.length), predicted)
    assert.ok(order.every(p => p >= MIN_PORT && p <= 65535), 'never below 1024 (80 dropped) or above 65535')
    assert.deepEqual(sprayOrder(3, predicted), [30006, 30007, 30008], 'a small budget is all prediction')
  })
})
