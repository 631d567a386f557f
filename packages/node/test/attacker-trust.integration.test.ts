/**
 * Impostor and sybil providers (issue 18): a by-name tunnel connects only to a provider it
 * trusts. The pinned (first-used) provider goes away and an impostor that publishes the same
 * name never receives a byte; twelve sybils that publish the name do not hide the trusted one.
 */
import { describe, it, before, after, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Socket } from 'node:net'
import { DHT_PROTOCOL, KnownProviders, MAX_PROVIDERS, type PunchgateNode } from '../src/index.ts'
import { serviceKey } from '../src/discovery.ts'
import { connectTo, echoServer, event, portOf, random, roundTrip, sha256, tcpAddr, tcpService, testNode, type TcpService } from './fixtures.ts'

const SYBILS = 12

/** A target that records every byte it receives: what an impostor would capture. */
async function recordingSink (): Promise<TcpService & { received: () => number }> {
  let received = 0
  const service = await tcpService((socket: Socket) => socket.on('data', (chunk: Buffer) => { received += chunk.length }))
  return { ...service, received: () => received }
}

/** An impostor: a full Punchgate node publishing `echo` in front of a recording sink; counts the tunnel requests it gets. */
async function impostorNode (boot: string): Promise<{ node: PunchgateNode, sink: Awaited<ReturnType<typeof recordingSink>>, requests: () => number }> {
  const sink = await recordingSink()
  const node = await testNode({ bootstrap: [boot], allowAny: true, expose: [`echo=127.0.0.1:${sink.port}`] })
  let requests = 0
  node.events.onEvent('tunnel.opened', () => { requests++ })
  node.events.onEvent('tunnel.rejected', () => { requests++ })
  await event(node, 'service.published', e => e.name === 'echo')
  return { node, sink, requests: () => requests }
}

/** A bare libp2p peer in the Punchgate DHT that publishes a provider record for `name` and serves nothing. */
async function sybil (boot: string, name: string): Promise<Libp2p> {
  const peer = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({ protocol: DHT_PROTOCOL, clientMode: true, peerInfoMapper: passthroughMapper })
    }
  })
  await peer.dial(multiaddr(boot))
  await peer.contentRouting.provide(await serviceKey(name), { signal: AbortSignal.timeout(20_000) })
  return peer
}

async function stopAll (nodes: Array<PunchgateNode | undefined>): Promise<void> {
  await Promise.all(nodes.map(async n => n?.stop({ drainMs: 0 })))
}

describe('an impostor provider', () => {
  let dir: string
  // Each test has a DHT of its own: provider records of an earlier test's peers would linger in a shared one.
  let bootstrap: PunchgateNode | undefined
  let boot: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'punchgate-trust-'))
  })

  beforeEach(async () => {
    bootstrap = await testNode()
    boot = tcpAddr(bootstrap)
  })

  afterEach(async () => {
    await bootstrap?.stop({ drainMs: 0 })
  })

  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('publishing the pinned service after the real provider dies never receives a byte, and the tunnel says why', async (t) => {
    const echo = await echoServer()
    const file = join(dir, 'tofu.known-providers')
    const real = await testNode({ bootstrap: [boot], allowAny: true, expose: [`echo=127.0.0.1:${echo.port}`] })
    let client: PunchgateNode | undefined
    let impostor: Awaited<ReturnType<typeof impostorNode>> | undefined
    let local: Socket | undefined
    try {
      await event(real, 'service.published', e => e.name === 'echo')
      client = await testNode({ bootstrap: [boot], tunnelByName: ['echo@127.0.0.1:0'], knownProviders: file })
      const tunnel = client.tunnels()[0]?.tunnel ?? ''
      const pinned = event(client, 'provider.pinned')
      await event(client, 'tunnel.activated', e => e.peer === real.peerId)
      assert.deepEqual(await pinned, { tunnel, service: 'echo', peer: real.peerId, file })
      assert.match(await readFile(file, 'utf8'), new RegExp(`^echo ${real.peerId}  # first seen \\d{4}-`, 'm'))
      const port = portOf(client.tunnels()[0]?.bind ?? '')
      const data = random(64 * 1024)
      assert.equal(sha256(await roundTrip(port, data)), sha256(data))

      impostor = await impostorNode(boot)
      const warned = event(client, 'provider.untrusted', e => e.peer === impostor?.node.peerId)
      await real.stop({ drainMs: 0 })
      assert.deepEqual(await warned, { tunnel, service: 'echo', peer: impostor.node.peerId })

      // A user connects while only the impostor is up; the client keeps looking and keeps refusing it.
      local = await connectTo(port)
      local.on('error', () => {})
      local.write('password=hunter2\n')
      let rounds = 0
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${rounds} lookup rounds`)), 30_000)
        client?.events.onEvent('service.resolved', e => {
          if (e.providers.includes(impostor?.node.peerId ?? '') && ++rounds === 3) { clearTimeout(timer); resolve() }
        })
      })
      let warnings = 0
      client.events.onEvent('provider.untrusted', () => { warnings++ })
      await event(client, 'service.resolved')
      assert.equal(warnings, 0, 'warned once per tunnel and peer, not on every retry')

      assert.equal(impostor.sink.received(), 0, 'the impostor\'s target received nothing')
      assert.equal(impostor.requests(), 0, 'the impostor never got a tunnel request')
      const info = client.tunnels()[0]
      assert.ok(info?.status !== 'direct' && info?.status !== 'relayed', `tunnel is ${info?.status}`)
      assert.deepEqual(client.status().tunnels[0]?.untrusted, [impostor.node.peerId])
      t.diagnostic(`${rounds} lookups found the impostor; it got ${impostor.sink.received()} bytes`)
    } finally {
      local?.destroy()
      await stopAll([client, impostor?.node, real])
      await Promise.all([echo.close(), impostor?.sink.close()])
    }
  })

  it('is all there is for a pinned service: the tunnel stays down and says why; after `trust forget` the running daemon accepts it', async () => {
    const file = join(dir, 'pinned.known-providers')
    const gone = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    await writeFile(file, `echo ${gone}  # first seen 2026-01-01T00:00:00.000Z\n`, { mode: 0o600 })
    let client: PunchgateNode | undefined
    let impostor: Awaited<ReturnType<typeof impostorNode>> | undefined
    try {
      impostor = await impostorNode(boot)
      client = await testNode({ bootstrap: [boot], tunnelByName: ['echo@127.0.0.1:0'], knownProviders: file })
      const tunnel = client.tunnels()[0]?.tunnel ?? ''
      const why = await event(client, 'tunnel.no-trusted-provider')
      assert.deepEqual(why, {
        tunnel, service: 'echo', untrusted: [impostor.node.peerId], reason: 'no trusted provider; `punchgate trust forget echo` to accept another'
      })
      const info = client.status().tunnels[0]
      assert.equal(info?.reason, why.reason)
      assert.deepEqual(info?.untrusted, [impostor.node.peerId])
      assert.equal(info?.status === 'direct' || info?.status === 'relayed', false)
      assert.equal(impostor.requests(), 0)

      // What `punchgate trust forget echo` does, from another process's point of view: the file changes.
      // First use pins the provider before the tunnel goes live on it.
      const activated = event(client, 'tunnel.activated')
      const pinned = event(client, 'provider.pinned', e => e.peer === impostor?.node.peerId)
      assert.equal(await new KnownProviders(file).forget('echo'), gone)
      assert.equal((await activated).peer, impostor.node.peerId, 'the next lookup took the first provider again')
      assert.equal(client.status().tunnels[0]?.reason, undefined)
      await pinned
      assert.match(await readFile(file, 'utf8'), new RegExp(`^echo ${impostor.node.peerId} `, 'm'))
    } finally {
      await stopAll([client, impostor?.node])
      await impostor?.sink.close()
    }
  })

  it('`connect` (openTunnelStream) follows the pin too: refused with the reason, the impostor untouched', async () => {
    const file = join(dir, 'connect.known-providers')
    const gone = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    await writeFile(file, `echo ${gone}\n`, { mode: 0o600 })
    let client: PunchgateNode | undefined
    let impostor: Awaited<ReturnType<typeof impostorNode>> | undefined
    try {
      impostor = await impostorNode(boot)
      client = await testNode({ bootstrap: [boot], knownProviders: file })
      await assert.rejects(client.openTunnelStream({ service: 'echo' }), (err: Error) =>
        err.name === 'NoTrustedProviderError' && err.message.includes('`punchgate trust forget echo`') && err.message.includes(impostor?.node.peerId ?? '?'))
      assert.equal(impostor.requests(), 0)
    } finally {
      await stopAll([client, impostor?.node])
      await impostor?.sink.close()
    }
  })
})

describe(`${SYBILS} sybil providers`, () => {
  let bootstrap: PunchgateNode
  let real: PunchgateNode
  let echo: Awaited<ReturnType<typeof echoServer>>
  let dir: string
  const sybils: Libp2p[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'punchgate-sybil-'))
    echo = await echoServer()
    bootstrap = await testNode()
    const boot = tcpAddr(bootstrap)
    // The sybils publish first, so a lookup that stops at MAX_PROVIDERS sees only them.
    for (let i = 0; i < SYBILS; i++) sybils.push(await sybil(boot, 'echo'))
    real = await testNode({ bootstrap: [boot], allowAny: true, expose: [`echo=127.0.0.1:${echo.port}`] })
    await event(real, 'service.published', e => e.name === 'echo')
  })

  after(async () => {
    await Promise.all(sybils.map(async s => s.stop()))
    await stopAll([real, bootstrap])
    await echo.close()
    await rm(dir, { recursive: true, force: true })
  })

  async function reachesReal (raw: Parameters<typeof testNode>[0]): Promise<string[]> {
    const client = await testNode({ bootstrap: [tcpAddr(bootstrap)], tunnelByName: ['echo@127.0.0.1:0'], ...raw })
    try {
      const resolved = event(client, 'service.resolved')
      const activated = await event(client, 'tunnel.activated')
      assert.equal(activated.peer, real.peerId)
      const data = random(1024 * 1024)
      const echoed = await roundTrip(portOf(client.tunnels()[0]?.bind ?? ''), data)
      assert.equal(echoed.length, data.length)
      assert.equal(sha256(echoed), sha256(data), 'byte-exact through the real provider')
      return (await resolved).providers
    } finally {
      await client.stop({ drainMs: 0 })
    }
  }

  it('with --trust set to the real one, the tunnel reaches it byte-exact', async (t) => {
    const providers = await reachesReal({ trust: [real.peerId] })
    assert.equal(providers[0], real.peerId, 'the trusted provider is listed first')
    assert.ok(providers.length > MAX_PROVIDERS, `the lookup read past ${MAX_PROVIDERS} records to find it (${providers.length})`)
    t.diagnostic(`lookup listed ${providers.length} providers`)
  })

  it('with the real one pinned, the tunnel reaches it byte-exact', async () => {
    const file = join(dir, 'known-providers')
    await writeFile(file, `echo ${real.peerId}\n`, { mode: 0o600 })
    const providers = await reachesReal({ knownProviders: file })
    assert.equal(providers[0], real.peerId)
  })
})
