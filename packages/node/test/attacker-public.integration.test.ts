/**
 * A public node (bootstrap, DHT server, relay) against bare libp2p peers: provider records
 * are capped per publishing peer and in total; the relay cuts strangers' relayed
 * connections at --relay-max-bytes but not those between allowed peers; --metrics beyond
 * loopback says so at start.
 */
import { describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PrivateKey, Stream } from '@libp2p/interface'
import { startNode, type PunchgateNode } from '../src/node.ts'
import { validateConfig, type RawConfig } from '../src/config.ts'
import { serviceKey } from '../src/discovery.ts'
import { DHT_PROTOCOL, MAX_PROVIDER_RECORDS_KEPT_PER_PEER } from '../src/constants.ts'
import type { ProviderCaps } from '../src/provider-caps.ts'
import { generateSwarmKey } from '../src/swarm-key.ts'
import { ECHO, echoServer, event, portOf, random, recordingLogger, roundTrip, sha256, tcpAddr, testNode } from './fixtures.ts'

async function publicNode (t: TestContext, raw: RawConfig = {}, providerCaps?: ProviderCaps): Promise<PunchgateNode & { records: Array<Record<string, unknown>> }> {
  const logger = recordingLogger()
  const node = await startNode(validateConfig({ listen: ['/ip4/127.0.0.1/tcp/0'], relaySplice: 'off', ...raw }), {
    privateKey: await generateKeyPair('Ed25519'), logger, ...(providerCaps != null ? { providerCaps } : {})
  })
  t.after(async () => node.stop())
  return Object.assign(node, { records: logger.records })
}

/** A bare DHT client with a listen address (a provider record without one is ignored). */
async function publisher (t: TestContext): Promise<Libp2p<{ dht: KadDHT }>> {
  const peer = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping(), dht: kadDHT({ protocol: DHT_PROTOCOL, clientMode: true, peerInfoMapper: passthroughMapper }) }
  })
  t.after(async () => peer.stop())
  return peer
}

/** Publishes `count` service names from `peer` through `node`, one after another; names start with `prefix`. */
async function publish (peer: Libp2p<{ dht: KadDHT }>, node: PunchgateNode, prefix: string, count: number): Promise<void> {
  await peer.dial(multiaddr(tcpAddr(node)))
  // The public node must be in the client's routing table first (identify tells it the DHT protocol).
  const { routingTable } = peer.services.dht as unknown as { routingTable: { size: number } }
  while (routingTable.size === 0) await new Promise(resolve => setTimeout(resolve, 20))
  for (let i = 0; i < count; i++) {
    await peer.contentRouting.provide(await serviceKey(`${prefix}-${i}`), { signal: AbortSignal.timeout(10_000) })
  }
}

/** How many of the names `prefix-0..count-1` the public node lists `peer` as a provider of. */
async function kept (node: PunchgateNode, peer: Libp2p, prefix: string, count: number): Promise<number> {
  let found = 0
  for (let i = 0; i < count; i++) {
    for await (const provider of node.swarm.contentRouting.findProviders(await serviceKey(`${prefix}-${i}`), { signal: AbortSignal.timeout(5_000) })) {
      if (provider.id.equals(peer.peerId)) { found++; break }
    }
  }
  return found
}

/**
 * `kept`, asked again until it gives `want` or `ms` have passed; the last answer. A DHT
 * client's provide() resolves once it has sent ADD_PROVIDER, which has no reply, so the
 * public node may store the last records a moment after the publisher's loop returns.
 */
async function keptSettled (node: PunchgateNode, peer: Libp2p, prefix: string, count: number, want: number, ms = 5_000): Promise<number> {
  const deadline = Date.now() + ms
  for (;;) {
    const found = await kept(node, peer, prefix, count)
    if (found === want || Date.now() > deadline) return found
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

function eventsNamed (records: Array<Record<string, unknown>>, name: string): Array<Record<string, unknown>> {
  return records.filter(r => r.event === name)
}

/** A bare peer that relays through `relay`: with `listen`, it reserves a slot there and echoes ECHO streams on limited connections. */
async function relayPeer (t: TestContext, privateKey: PrivateKey, relay: string, listen: boolean): Promise<Libp2p> {
  const peer = await createLibp2p({
    privateKey,
    addresses: { listen: listen ? [`${relay}/p2p-circuit`] : [] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
  t.after(async () => peer.stop())
  if (listen) {
    await peer.handle(ECHO, (stream: Stream) => {
      stream.addEventListener('message', evt => { stream.send(evt.data) })
      stream.addEventListener('remoteCloseWrite', () => { void stream.close() })
    }, { runOnLimitedConnection: true })
    while (!peer.getMultiaddrs().some(a => a.toString().includes('/p2p-circuit'))) {
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  }
  return peer
}

/** Sends `data` to `to`'s echo through the relay; resolves with what came back before the stream ended (cut or not). */
async function echoThroughRelay (from: Libp2p, relay: string, to: Libp2p, data: Uint8Array): Promise<{ back: Buffer, limited: boolean }> {
  const stream = await from.dialProtocol(multiaddr(`${relay}/p2p-circuit/p2p/${to.peerId.toString()}`), ECHO, { runOnLimitedConnection: true })
  const limited = from.getConnections(to.peerId).some(c => c.limits != null)
  const chunks: Uint8Array[] = []
  const ended = new Promise<void>(resolve => {
    stream.addEventListener('message', evt => { chunks.push(evt.data.subarray()) })
    stream.addEventListener('close', () => resolve())
    stream.addEventListener('remoteCloseWrite', () => resolve())
  })
  try {
    for (let at = 0; at < data.byteLength; at += 16 * 1024) {
      if (!stream.send(data.subarray(at, at + 16 * 1024))) await stream.onDrain()
    }
    await stream.close()
  } catch {
    // Cut by the relay while sending: what came back is what counts.
  }
  await ended
  return { back: Buffer.concat(chunks), limited }
}

describe('a public node against hostile peers', () => {
  it('keeps at most the per-peer cap of provider records from one publisher, refuses the rest, and says so once', { timeout: 120_000 }, async t => {
    const node = await publicNode(t)
    const attacker = await publisher(t)
    const published = MAX_PROVIDER_RECORDS_KEPT_PER_PEER + 6
    await publish(attacker, node, 'flood', published)
    assert.equal(await keptSettled(node, attacker, 'flood', published, MAX_PROVIDER_RECORDS_KEPT_PER_PEER), MAX_PROVIDER_RECORDS_KEPT_PER_PEER)
    const refused = eventsNamed(node.records, 'provider.refused')
    // One line for the first refusal; the other five wait for the next minute's line.
    assert.deepEqual(refused, [{ event: 'provider.refused', peer: attacker.peerId.toString(), reason: 'peer-cap', refused: 1 }])

    // Another peer's records are still kept: the cap is per publisher.
    const honest = await publisher(t)
    await publish(honest, node, 'honest', 2)
    assert.equal(await keptSettled(node, honest, 'honest', 2, 2), 2)
  })

  it('keeps at most the total cap of provider records across publishers', { timeout: 120_000 }, async t => {
    const node = await publicNode(t, {}, { perPeer: 64, total: 10 })
    const first = await publisher(t)
    const second = await publisher(t)
    await publish(first, node, 'first', 8)
    await publish(second, node, 'second', 8)
    assert.equal(await keptSettled(node, first, 'first', 8, 8), 8)
    assert.equal(await keptSettled(node, second, 'second', 8, 2), 2)
    assert.deepEqual(eventsNamed(node.records, 'provider.refused').map(r => [r.peer, r.reason]), [[second.peerId.toString(), 'total-cap']])
  })

  it('relays allowed peers without a byte cap, while strangers are cut at --relay-max-bytes', { timeout: 120_000 }, async t => {
    const keys = await Promise.all([0, 1, 2, 3].map(async () => generateKeyPair('Ed25519')))
    const [allowedA, allowedB, strangerA, strangerB] = keys as [PrivateKey, PrivateKey, PrivateKey, PrivateKey]
    const node = await publicNode(t, {
      relayMaxBytes: '256KiB',
      allow: [peerIdFromPrivateKey(allowedA).toString(), peerIdFromPrivateKey(allowedB).toString()]
    })
    const relay = tcpAddr(node)
    const data = random(2 * 1024 * 1024)

    const allowedListener = await relayPeer(t, allowedB, relay, true)
    const allowedDialer = await relayPeer(t, allowedA, relay, false)
    const trusted = await echoThroughRelay(allowedDialer, relay, allowedListener, data)
    assert.equal(trusted.limited, false, 'the relay sent no limits for two allowed peers')
    assert.equal(sha256(trusted.back), sha256(data), 'all 2 MiB came back')

    const strangerListener = await relayPeer(t, strangerB, relay, true)
    const strangerDialer = await relayPeer(t, strangerA, relay, false)
    const stranger = await echoThroughRelay(strangerDialer, relay, strangerListener, data)
    assert.equal(stranger.limited, true, 'the relay sent its limits to strangers')
    assert.ok(stranger.back.byteLength < 256 * 1024, `cut at 256 KiB both ways together: ${stranger.back.byteLength} bytes came back`)

    // One stranger end is enough for the cap.
    const mixed = await echoThroughRelay(strangerDialer, relay, allowedListener, data)
    assert.equal(mixed.limited, true)
    assert.ok(mixed.back.byteLength < 256 * 1024, `${mixed.back.byteLength} bytes came back`)
  })

  it('in a swarm-key mesh, two members\' tunnel through the relay is spliced and not cut at --relay-max-bytes', { timeout: 120_000 }, async t => {
    const swarmKey = generateSwarmKey()
    const echo = await echoServer()
    t.after(async () => echo.close())
    const relay = await testNode({ swarmKey, relayMaxBytes: '256KiB' })
    t.after(async () => relay.stop({ drainMs: 0 }))
    const provider = await testNode({ swarmKey, listen: ['none'], bootstrap: [tcpAddr(relay)], expose: [`echo=127.0.0.1:${echo.port}`] })
    t.after(async () => provider.stop({ drainMs: 0 }))
    await event(provider, 'service.published')
    const consumer = await testNode({ swarmKey, listen: ['none'], bootstrap: [tcpAddr(relay)], tunnel: [`${provider.peerId}:echo@127.0.0.1:0`] })
    t.after(async () => consumer.stop({ drainMs: 0 }))
    const spliced = event(consumer, 'splice.opened')
    assert.equal((await event(consumer, 'tunnel.activated')).path, 'relay')
    await spliced
    const data = random(2 * 1024 * 1024)
    assert.equal(sha256(await roundTrip(portOf(consumer.tunnels()[0]?.bind ?? ''), data)), sha256(data))
    assert.ok((relay.status().splice?.copied ?? 0) >= 2 * data.byteLength, 'the tunnel took the splice')
  })

  it('warns at start when --metrics listens beyond loopback, and not on loopback', async t => {
    const exposed = await publicNode(t, { metrics: '0.0.0.0:0' })
    assert.deepEqual(eventsNamed(exposed.records, 'metrics.exposed'), [{ event: 'metrics.exposed', addr: '0.0.0.0:0' }])
    const local = await publicNode(t, { metrics: '127.0.0.1:0' })
    assert.equal(eventsNamed(local.records, 'metrics.listening').length, 1)
    assert.deepEqual(eventsNamed(local.records, 'metrics.exposed'), [])
  })
})
