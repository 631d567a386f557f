/**
 * Port mapping's logic against a fake router: which method wins, what is announced, renewal
 * before the lease ends, removal at stop, and that a silent router never holds anything up.
 * The real routers (miniupnpd: NAT-PMP and UPnP-IGD) are in scripts/portmap-lab.sh.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { multiaddr } from '@multiformats/multiaddr'
import { NodeEvents, waitForEvent, type EventMap } from '../src/events.ts'
import { silentLogger } from '../src/logger.ts'
import { defaultGateway, parseRouteTable, type Gateway } from '../src/portmap/gateway.ts'
import { listenPorts } from '../src/portmap/index.ts'
import { answersNatPmp, answersSsdp } from '../src/portmap/probe.ts'
import { decodeMapResponse, encodeMap, pcpClientFor } from '../src/portmap/pcp.ts'
import { PortMapper, type ActiveMapping, type PortMapperInit } from '../src/portmap/portmap.ts'
import { upnpClientFrom, type IgdDevice, type Lease, type MappingClient, type MappingMethod, type MapRequest } from '../src/portmap/client.ts'

const GATEWAY: Gateway = { ip: '192.168.1.1', iface: 'eth0', localIp: '192.168.1.20' }
const FAST = { discoverTimeoutMs: 100, requestTimeoutMs: 100, retryMs: 150, minRenewMs: 10, stopTimeoutMs: 100 }

/** Never settles until `signal` aborts, like a router that does not answer. */
async function silent (signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    signal.addEventListener('abort', () => { reject(new Error('timed out')) }, { once: true })
  })
}

class FakeRouter implements MappingClient {
  readonly method: MappingMethod
  readonly maps: MapRequest[] = []
  readonly unmaps: MapRequest[] = []
  /** What the next map request gets: a lease, an error, or silence. */
  answer: (request: MapRequest) => Lease | Error | 'silent'
  unmapAnswer: 'ok' | 'silent' = 'ok'
  closed = 0

  constructor (method: MappingMethod, answer: FakeRouter['answer']) {
    this.method = method
    this.answer = answer
  }

  async map (request: MapRequest, signal: AbortSignal): Promise<Lease> {
    this.maps.push(request)
    const answer = this.answer(request)
    if (answer === 'silent') return silent(signal)
    if (answer instanceof Error) throw answer
    return answer
  }

  async unmap (request: MapRequest, signal: AbortSignal): Promise<void> {
    this.unmaps.push(request)
    if (this.unmapAnswer === 'silent') await silent(signal)
  }

  async close (): Promise<void> {
    this.closed++
  }
}

const lease = (externalPort: number, lifetimeS = 3600, externalIp = '203.0.113.9'): Lease => ({ externalIp, externalPort, lifetimeS })

interface Harness {
  mapper: PortMapper
  events: NodeEvents
  announced: ActiveMapping[]
  withdrawn: ActiveMapping[]
  created: MappingMethod[]
}

function harness (init: Partial<PortMapperInit> & Pick<PortMapperInit, 'methods'>): Harness {
  const events = new NodeEvents(silentLogger)
  const announced: ActiveMapping[] = []
  const withdrawn: ActiveMapping[] = []
  const created: MappingMethod[] = []
  const methods = init.methods.map(({ method, create }) => ({
    method,
    create: async (gateway: Gateway, signal: AbortSignal) => { created.push(method); return create(gateway, signal) }
  }))
  const mapper = new PortMapper({
    events,
    gateway: async () => GATEWAY,
    ports: () => [{ protocol: 'tcp', port: 4001 }, { protocol: 'udp', port: 4001 }],
    announce: m => announced.push(m),
    withdraw: m => withdrawn.push(m),
    timing: FAST,
    ...init,
    methods
  })
  return { mapper, events, announced, withdrawn, created }
}

function collect<K extends keyof EventMap> (events: NodeEvents, name: K): Array<EventMap[K]> {
  const seen: Array<EventMap[K]> = []
  events.onEvent(name, fields => seen.push(fields))
  return seen
}

describe('port mapping', { timeout: 10_000 }, () => {
  it('maps every listen port through the first method the router answers, and announces each', async () => {
    const pmp = async (): Promise<MappingClient> => { throw new Error('no NAT-PMP answer') }
    const router = new FakeRouter('upnp-igd', r => lease(r.internalPort === 4001 && r.protocol === 'udp' ? 4444 : r.externalPort))
    const h = harness({ methods: [{ method: 'nat-pmp', create: pmp }, { method: 'upnp-igd', create: async () => router }] })
    const mapped = collect(h.events, 'portmap.mapped')
    const both = waitForEvent(h.events, 'portmap.mapped', e => e.protocol === 'udp')
    h.mapper.start()
    await both
    assert.deepEqual(h.created, ['nat-pmp', 'upnp-igd'])
    assert.deepEqual(mapped.map(e => [e.protocol, e.internal, e.external, e.method, e.renewed]), [
      ['tcp', '192.168.1.20:4001', '203.0.113.9:4001', 'upnp-igd', false],
      ['udp', '192.168.1.20:4001', '203.0.113.9:4444', 'upnp-igd', false]
    ])
    assert.deepEqual(h.announced.map(m => `${m.protocol} ${m.internalIp}:${m.internalPort} -> ${m.externalIp}:${m.externalPort}`),
      ['tcp 192.168.1.20:4001 -> 203.0.113.9:4001', 'udp 192.168.1.20:4001 -> 203.0.113.9:4444'])
    assert.deepEqual(router.maps.map(r => r.externalPort), [4001, 4001], 'asks for the same external port as the internal one')
    assert.deepEqual(h.mapper.mappings().map(m => m.method), ['upnp-igd', 'upnp-igd'])
    await h.mapper.stop()
  })

  it('renews halfway through the lease, keeping the external port, and re-announces only a moved address', async () => {
    let calls = 0
    const router = new FakeRouter('nat-pmp', r => {
      calls++
      // Third request (first renewal of tcp): the router moved the mapping to another port.
      return lease(calls === 3 ? 5000 : r.externalPort, 0.2)
    })
    const h = harness({ methods: [{ method: 'nat-pmp', create: async () => router }] })
    const renewals = collect(h.events, 'portmap.mapped')
    const started = Date.now()
    const renewed = waitForEvent(h.events, 'portmap.mapped', e => e.renewed && e.protocol === 'udp')
    h.mapper.start()
    await renewed
    const ms = Date.now() - started
    assert.ok(ms >= 90 && ms < 1000, `renewed after ${ms} ms, for a 200 ms lease`)
    assert.deepEqual(router.maps.slice(2).map(r => [r.protocol, r.externalPort]), [['tcp', 4001], ['udp', 4001]],
      'a renewal asks for the port it holds')
    assert.deepEqual(renewals.map(e => [e.protocol, e.external, e.renewed]), [
      ['tcp', '203.0.113.9:4001', false], ['udp', '203.0.113.9:4001', false],
      ['tcp', '203.0.113.9:5000', true], ['udp', '203.0.113.9:4001', true]
    ])
    assert.deepEqual(h.withdrawn.map(m => m.externalPort), [4001], 'the old tcp address is withdrawn')
    assert.deepEqual(h.announced.map(m => `${m.protocol}/${m.externalPort}`), ['tcp/4001', 'udp/4001', 'tcp/5000'])
    await h.mapper.stop()
  })

  it('withdraws a mapping whose renewals fail until the lease ends, then starts over', async () => {
    let failing = false
    const router = new FakeRouter('nat-pmp', r => failing ? new Error('refused') : lease(r.externalPort, 0.3))
    const h = harness({ methods: [{ method: 'nat-pmp', create: async () => router }], ports: () => [{ protocol: 'tcp', port: 4001 }] })
    const removed = collect(h.events, 'portmap.removed')
    await new Promise<void>(resolve => { h.events.once('portmap.mapped', () => resolve()); h.mapper.start() })
    failing = true
    const mappedAt = Date.now()
    const expired = waitForEvent(h.events, 'portmap.removed')
    await expired
    const ms = Date.now() - mappedAt
    assert.ok(ms >= 250 && ms < 1500, `withdrawn after ${ms} ms, for a 300 ms lease`)
    assert.ok(router.maps.length >= 3, `renewal retried before the lease ended (${router.maps.length} requests)`)
    assert.deepEqual(removed.map(e => [e.external, e.reason]), [['203.0.113.9:4001', 'expired']])
    assert.deepEqual(h.withdrawn.map(m => m.externalPort), [4001])
    assert.deepEqual(h.mapper.mappings(), [])
    assert.equal(router.closed, 1)
    // After retryMs the router is asked afresh; it answers again.
    failing = false
    await waitForEvent(h.events, 'portmap.mapped', e => !e.renewed)
    assert.deepEqual(h.created, ['nat-pmp', 'nat-pmp'])
    await h.mapper.stop()
  })

  it('deletes every mapping on stop and withdraws its address', async () => {
    const router = new FakeRouter('upnp-igd', r => lease(r.externalPort))
    const h = harness({ methods: [{ method: 'upnp-igd', create: async () => router }] })
    const removed = collect(h.events, 'portmap.removed')
    const both = waitForEvent(h.events, 'portmap.mapped', e => e.protocol === 'udp')
    h.mapper.start()
    await both
    await h.mapper.stop()
    assert.deepEqual(router.unmaps.map(r => `${r.protocol}/${r.internalPort}->${r.externalPort}`).sort(), ['tcp/4001->4001', 'udp/4001->4001'])
    assert.deepEqual(removed.map(e => [e.protocol, e.reason, e.error]), [['tcp', 'stopped', undefined], ['udp', 'stopped', undefined]])
    assert.equal(h.withdrawn.length, 2)
    assert.deepEqual(h.mapper.mappings(), [])
    assert.equal(router.closed, 1)
    await h.mapper.stop()
    assert.equal(router.unmaps.length, 2, 'stop is idempotent')
  })

  it('stops within its timeout when the router does not answer the deletion', async () => {
    const router = new FakeRouter('nat-pmp', r => lease(r.externalPort))
    router.unmapAnswer = 'silent'
    const h = harness({ methods: [{ method: 'nat-pmp', create: async () => router }], ports: () => [{ protocol: 'tcp', port: 4001 }] })
    const removed = collect(h.events, 'portmap.removed')
    await new Promise<void>(resolve => { h.events.once('portmap.mapped', () => resolve()); h.mapper.start() })
    const started = Date.now()
    await h.mapper.stop()
    const ms = Date.now() - started
    assert.ok(ms < FAST.stopTimeoutMs + 400, `stop took ${ms} ms`)
    assert.equal(removed[0]?.reason, 'stopped')
    assert.match(removed[0]?.error ?? '', /\S/, 'the unconfirmed deletion says why')
    assert.equal(h.withdrawn.length, 1, 'the address is withdrawn all the same')
  })

  it('deletes a mapping the router granted while the node was stopping, and never announces it', async () => {
    let grant: ((lease: Lease) => void) | undefined
    const unmaps: MapRequest[] = []
    const slow: MappingClient = {
      method: 'nat-pmp',
      // A router whose answer arrives after stop began (the request was already on its way).
      map: async () => new Promise<Lease>(resolve => { grant = resolve }),
      unmap: async request => { unmaps.push(request) },
      close: async () => {}
    }
    const h = harness({ methods: [{ method: 'nat-pmp', create: async () => slow }], ports: () => [{ protocol: 'tcp', port: 4001 }] })
    h.mapper.start()
    while (grant == null) await new Promise(resolve => setImmediate(resolve))
    const stopping = h.mapper.stop()
    grant(lease(4001))
    await stopping
    assert.deepEqual(unmaps.map(r => r.externalPort), [4001])
    assert.deepEqual(h.announced, [])
    assert.deepEqual(h.mapper.mappings(), [])
  })

  it('costs a debug line when no router answers, never blocks, and stops at once while still asking', async () => {
    const never = async (_gateway: Gateway, signal: AbortSignal): Promise<MappingClient> => silent(signal)
    const h = harness({ methods: [{ method: 'nat-pmp', create: never }, { method: 'upnp-igd', create: never }] })
    const failed = waitForEvent(h.events, 'portmap.failed')
    const started = Date.now()
    h.mapper.start()
    assert.ok(Date.now() - started < 20, 'start returns at once')
    const failure = await failed
    assert.equal(failure.gateway, GATEWAY.ip)
    assert.match(failure.error, /nat-pmp: timed out; upnp-igd: timed out/)
    assert.deepEqual(h.announced, [])
    // The next attempt (retryMs later) is under way when stop comes: stop does not wait for its timeouts.
    await waitForEvent(h.events, 'portmap.failed')
    const again = harness({ methods: [{ method: 'nat-pmp', create: never }] })
    again.mapper.start()
    await new Promise(resolve => setTimeout(resolve, 10))
    const stopping = Date.now()
    await Promise.all([h.mapper.stop(), again.mapper.stop()])
    assert.ok(Date.now() - stopping < 50, `stop took ${Date.now() - stopping} ms`)
  })

  it('asks nobody without a default gateway, or without a listen port on its interface', async () => {
    const router = new FakeRouter('nat-pmp', r => lease(r.externalPort))
    const noGateway = harness({ methods: [{ method: 'nat-pmp', create: async () => router }], gateway: async () => undefined })
    const failed = waitForEvent(noGateway.events, 'portmap.failed')
    noGateway.mapper.start()
    assert.match((await failed).error, /no IPv4 default gateway/)
    const noPorts = harness({ methods: [{ method: 'nat-pmp', create: async () => router }], ports: () => [] })
    const failedToo = waitForEvent(noPorts.events, 'portmap.failed')
    noPorts.mapper.start()
    assert.match((await failedToo).error, /no listen port on 192\.168\.1\.20/)
    assert.deepEqual([noGateway.created, noPorts.created, router.maps], [[], [], []])
    await Promise.all([noGateway.mapper.stop(), noPorts.mapper.stop()])
  })
})

describe('port mapping: which router, which ports', { timeout: 10_000 }, () => {
  const TABLE = [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
    'wg0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0', // a default route without a gateway (a VPN)
    'wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0',
    'eth0\t00000000\t0100020A\t0003\t0\t0\t100\t00000000\t0\t0\t0',
    'eth0\t0000020A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0'
  ].join('\n')

  it('reads the default routes with a gateway from /proc/net/route, lowest metric first', () => {
    assert.deepEqual(parseRouteTable(TABLE), [{ iface: 'eth0', gateway: '10.2.0.1' }, { iface: 'wlan0', gateway: '192.168.1.1' }])
    assert.deepEqual(parseRouteTable(''), [])
  })

  it('pairs the gateway with our IPv4 address on its interface', async () => {
    const iface = (address: string, family: 'IPv4' | 'IPv6' = 'IPv4') => ({ address, family, internal: false, netmask: '', mac: '', cidr: null }) as never
    const interfaces = () => ({ eth0: [iface('fe80::1', 'IPv6'), iface('10.2.0.2')], wlan0: [iface('192.168.1.5')] })
    assert.deepEqual(await defaultGateway({ readRoutes: async () => TABLE, interfaces }), { ip: '10.2.0.1', iface: 'eth0', localIp: '10.2.0.2' })
    assert.equal(await defaultGateway({ readRoutes: async () => { throw new Error('ENOENT') }, interfaces }), undefined)
  })

  it('maps the TCP and QUIC listen ports bound on the gateway interface, nothing else', () => {
    const addrs = ['/ip4/127.0.0.1/tcp/4001', '/ip4/10.2.0.2/tcp/4001', '/ip4/10.2.0.2/udp/4001/quic-v1', '/ip4/10.9.0.2/tcp/4002',
      '/ip4/10.2.0.2/tcp/4003/ws', '/ip4/10.2.0.2/tcp/4001', '/ip6/::1/tcp/4001'].map(a => multiaddr(a))
    assert.deepEqual(listenPorts(addrs, '10.2.0.2'), [{ protocol: 'tcp', port: 4001 }, { protocol: 'udp', port: 4001 }])
    assert.deepEqual(listenPorts(addrs, '192.168.9.9'), [])
  })
})

describe('port mapping: UPnP-IGD asks only the gateway', { timeout: 10_000 }, () => {
  /** A device on the fake LAN that records what it was asked. */
  function device (host: string, family: 'IPv4' | 'IPv6' = 'IPv4'): IgdDevice & { asked: string[] } {
    const asked: string[] = []
    return {
      host,
      family,
      asked,
      map: async (internalPort, _internalHost, options) => {
        asked.push(`map ${options.protocol} ${internalPort}`)
        return { externalHost: '203.0.113.9', externalPort: options.externalPort }
      },
      remove: async (externalPort, protocol) => { asked.push(`remove ${protocol} ${externalPort}`) }
    }
  }

  /** An SSDP search that yields these answers in order, then waits until its signal ends it. */
  function lan (...devices: IgdDevice[]) {
    return async () => ({
      findGateways: async function * (options: { signal: AbortSignal }) {
        for (const d of devices) yield d
        await silent(options.signal).catch(() => {})
      }
    })
  }

  it('maps through the device on the gateway address, not through another LAN host that answered first', async () => {
    const rogue = device('192.168.1.66')
    const v6 = device('192.168.1.1', 'IPv6')
    const router = device(GATEWAY.ip)
    const client = await upnpClientFrom(lan(rogue, v6, router))(GATEWAY, AbortSignal.timeout(1000))
    const got = await client.map({ protocol: 'tcp', internalPort: 4001, externalPort: 4001, lifetimeS: 60 }, AbortSignal.timeout(1000))
    assert.deepEqual(got, { externalIp: '203.0.113.9', externalPort: 4001, lifetimeS: 3600 }, 'UPnP leases are an hour at least')
    assert.deepEqual([rogue.asked, v6.asked, router.asked], [[], [], ['map TCP 4001']])
  })

  it('gives up when only other hosts answer', async () => {
    const rogue = device('192.168.1.66')
    await assert.rejects(upnpClientFrom(lan(rogue))(GATEWAY, AbortSignal.timeout(100)), /no UPnP-IGD v2 device answered on the gateway/)
    assert.deepEqual(rogue.asked, [])
  })

  it('deletes each mapping by its own external port and protocol', async () => {
    const router = device(GATEWAY.ip)
    const client = await upnpClientFrom(lan(router))(GATEWAY, AbortSignal.timeout(1000))
    await client.unmap({ protocol: 'tcp', internalPort: 4001, externalPort: 4001, lifetimeS: 60 }, AbortSignal.timeout(1000))
    await client.unmap({ protocol: 'udp', internalPort: 4001, externalPort: 4002, lifetimeS: 60 }, AbortSignal.timeout(1000))
    assert.deepEqual(router.asked, ['remove TCP 4001', 'remove UDP 4002'])
  })
})

describe('port mapping: probing the gateway before loading the library', { timeout: 10_000 }, () => {
  const LOOP: Gateway = { ip: '127.0.0.1', iface: 'lo', localIp: '127.0.0.1' }

  /** A fake router on `host`: answers each datagram with `reply(request, count)` (nothing when undefined). */
  async function fakeRouter (t: { after: (fn: () => void) => void }, host: string, reply: (msg: Buffer, count: number) => Buffer | undefined): Promise<{ port: number, received: () => number }> {
    const socket = createSocket('udp4')
    let count = 0
    socket.on('message', (msg, rinfo) => {
      count++
      const answer = reply(msg, count)
      if (answer != null) socket.send(answer, rinfo.port, rinfo.address)
    })
    await new Promise<void>(resolve => socket.bind(0, host, resolve))
    t.after(() => socket.close())
    return { port: socket.address().port, received: () => count }
  }

  const pmpAnswer = (): Buffer => Buffer.from([0, 128, 0, 0, 0, 0, 0, 1, 203, 0, 113, 9])

  it('NAT-PMP: the gateway answering the external address request is a yes, after retransmits when the first requests are lost', async t => {
    const router = await fakeRouter(t, '127.0.0.1', (msg, count) => msg.length === 2 && count >= 3 ? pmpAnswer() : undefined)
    const started = Date.now()
    assert.equal(await answersNatPmp(LOOP, AbortSignal.timeout(3000), { port: router.port }), true)
    assert.equal(router.received(), 3)
    const ms = Date.now() - started
    assert.ok(ms >= 700 && ms < 1500, `answered after 250 + 500 ms of retransmits, took ${ms} ms`)
  })

  it('NAT-PMP: an answer from another address, or an error result, is a no within the timeout', async t => {
    const other = await fakeRouter(t, '127.0.0.2', () => pmpAnswer())
    assert.equal(await answersNatPmp(LOOP, AbortSignal.timeout(400), { host: '127.0.0.2', port: other.port }), false)
    assert.ok(other.received() >= 1)
    const refusing = await fakeRouter(t, '127.0.0.1', () => Buffer.from([0, 128, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0]))
    assert.equal(await answersNatPmp(LOOP, AbortSignal.timeout(400), { port: refusing.port }), false)
  })

  it('NAT-PMP: a router that refuses the port (ICMP port unreachable) is a no at once, not after the timeout', async () => {
    // A port nothing listens on: bind one, note it, close it.
    const free = await new Promise<number>(resolve => {
      const socket = createSocket('udp4')
      socket.bind(0, '127.0.0.1', () => { const { port } = socket.address(); socket.close(() => { resolve(port) }) })
    })
    const started = Date.now()
    assert.equal(await answersNatPmp(LOOP, AbortSignal.timeout(3000), { port: free }), false)
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`)
  })

  const ssdpAnswer = (locationHost: string): Buffer => Buffer.from([
    'HTTP/1.1 200 OK', 'CACHE-CONTROL: max-age=120', `ST: ${'urn:schemas-upnp-org:device:InternetGatewayDevice:2'}`,
    'USN: uuid:x::urn:schemas-upnp-org:device:InternetGatewayDevice:2', 'EXT:', `LOCATION: http://${locationHost}:45629/rootDesc.xml`, '', ''
  ].join('\r\n'))

  it('SSDP: an IGD v2 answer from the gateway, describing itself on the gateway address, is a yes', async t => {
    const router = await fakeRouter(t, '127.0.0.1', msg => msg.toString().startsWith('M-SEARCH') && msg.toString().includes('InternetGatewayDevice:2') ? ssdpAnswer('127.0.0.1') : undefined)
    assert.equal(await answersSsdp(LOOP, AbortSignal.timeout(2000), { host: '127.0.0.1', port: router.port }), true)
  })

  it('SSDP: a description elsewhere, or an answer from another host, is a no', async t => {
    const elsewhere = await fakeRouter(t, '127.0.0.1', () => ssdpAnswer('192.168.1.66'))
    assert.equal(await answersSsdp(LOOP, AbortSignal.timeout(300), { host: '127.0.0.1', port: elsewhere.port }), false)
    const other = await fakeRouter(t, '127.0.0.2', () => ssdpAnswer('127.0.0.1'))
    assert.equal(await answersSsdp(LOOP, AbortSignal.timeout(300), { host: '127.0.0.2', port: other.port }), false)
    assert.ok(elsewhere.received() >= 1 && other.received() >= 1)
  })
})

describe('port mapping: PCP', { timeout: 10_000 }, () => {
  const LOOP: Gateway = { ip: '127.0.0.1', iface: 'lo', localIp: '127.0.0.1' }

  /** A PCP server on loopback: answers ANNOUNCE, and MAP with `result` and the lifetime asked for (capped at 1200 s). */
  async function pcpServer (t: { after: (fn: () => void) => void }, options: { version?: number, result?: number } = {}) {
    const socket = createSocket('udp4')
    const requests: Array<{ opcode: number, lifetimeS: number, nonce: string, protocol: number, internalPort: number, externalPort: number }> = []
    socket.on('message', (msg, rinfo) => {
      const reply = (buf: Buffer): void => { socket.send(buf, rinfo.port, rinfo.address) }
      if (options.version === 0) {
        // A NAT-PMP-only server: "unsupported version", in its own version.
        reply(Buffer.from([0, 128 + (msg[1] ?? 0), 0, 1, 0, 0, 0, 0]))
        return
      }
      const opcode = msg[1] ?? 0
      const lifetimeS = msg.readUInt32BE(4)
      const out = Buffer.from(msg)
      out[1] = 0x80 | opcode
      out[3] = options.result ?? 0
      if (opcode === 0) { reply(out.subarray(0, 24)); return }
      const nonce = msg.subarray(24, 36).toString('hex')
      const protocol = msg[36] ?? 0
      const internalPort = msg.readUInt16BE(40)
      const externalPort = msg.readUInt16BE(42)
      requests.push({ opcode, lifetimeS, nonce, protocol, internalPort, externalPort })
      out.writeUInt32BE(Math.min(lifetimeS, 1200), 4)
      out.writeUInt16BE(externalPort + 1000, 42)
      Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 9]).copy(out, 44)
      reply(out)
    })
    await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', resolve))
    t.after(() => socket.close())
    return { port: socket.address().port, requests }
  }

  it('encodes a MAP request and decodes its answer (RFC 6887 layout)', () => {
    const nonce = Buffer.alloc(12, 7)
    const msg = encodeMap('10.2.0.2', { nonce, protocol: 'udp', internalPort: 4001, externalPort: 4002, lifetimeS: 3600 })
    assert.equal(msg.length, 60)
    assert.deepEqual([msg[0], msg[1], msg.readUInt32BE(4)], [2, 1, 3600])
    assert.deepEqual([...msg.subarray(8, 24)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 10, 2, 0, 2])
    assert.deepEqual([msg[36], msg.readUInt16BE(40), msg.readUInt16BE(42)], [17, 4001, 4002])
    const answer = Buffer.from(msg)
    answer[1] = 0x81
    Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 11, 0, 0, 12]).copy(answer, 44)
    assert.deepEqual(decodeMapResponse(answer), {
      result: 0, lifetimeS: 3600, nonce, protocol: 17, internalPort: 4001, externalPort: 4002, externalIp: '11.0.0.12'
    })
    assert.equal(decodeMapResponse(msg), undefined, 'a request is not an answer')
    assert.equal(decodeMapResponse(answer.subarray(0, 40)), undefined, 'too short')
  })

  it('maps with the lifetime the server grants, renews and deletes with the same nonce', async t => {
    const server = await pcpServer(t)
    const client = await pcpClientFor({ port: server.port })(LOOP, AbortSignal.timeout(2000))
    assert.equal(client.method, 'pcp')
    const request: MapRequest = { protocol: 'tcp', internalPort: 4001, externalPort: 4001, lifetimeS: 3600 }
    assert.deepEqual(await client.map(request, AbortSignal.timeout(2000)), { externalIp: '203.0.113.9', externalPort: 5001, lifetimeS: 1200 })
    await client.map({ ...request, externalPort: 5001 }, AbortSignal.timeout(2000))
    await client.unmap({ ...request, externalPort: 5001 }, AbortSignal.timeout(2000))
    await client.map({ ...request, protocol: 'udp' }, AbortSignal.timeout(2000))
    const [first, renewal, deletion, udp] = server.requests
    assert.deepEqual([first?.protocol, first?.lifetimeS, renewal?.externalPort, deletion?.lifetimeS, udp?.protocol], [6, 3600, 5001, 0, 17])
    assert.equal(renewal?.nonce, first?.nonce)
    assert.equal(deletion?.nonce, first?.nonce)
    assert.notEqual(udp?.nonce, first?.nonce, 'each mapping has its own nonce')
  })

  it('is a no for a NAT-PMP-only server, and a refusal is an error naming the result', async t => {
    const pmp = await pcpServer(t, { version: 0 })
    await assert.rejects(pcpClientFor({ port: pmp.port })(LOOP, AbortSignal.timeout(2000)), /speaks NAT-PMP, not PCP/)
    const refusing = await pcpServer(t, { result: 2 })
    await assert.rejects(pcpClientFor({ port: refusing.port })(LOOP, AbortSignal.timeout(2000)), /PCP NOT_AUTHORIZED/)
  })
})
