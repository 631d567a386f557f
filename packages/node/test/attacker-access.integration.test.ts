/**
 * An attacker with a fresh key, a bare libp2p peer that speaks the tunnel protocol itself,
 * against a node configured the way Punchgate now insists on: every service has a list.
 * It is refused on its peer id and the target never sees a connection; an allowed peer
 * asking an `--expose-net ::/0` for IPv4 loopback in IPv6 clothing is refused too.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PrivateKey, Stream } from '@libp2p/interface'
import { ConfigError, TUNNEL_PROTOCOL, TunnelRejectedError, type PunchgateNode } from '../src/index.ts'
import type { TunnelRequest } from '../src/protocol/handshake.ts'
import { requestTunnel } from '../src/protocol/request.ts'
import { echoServer, random, sha256, tcpAddr, testNode, type EchoServer } from './fixtures.ts'

/** A bare libp2p peer with the given key: no Punchgate code on its side. */
async function barePeer (privateKey: PrivateKey): Promise<Libp2p> {
  return createLibp2p({ privateKey, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
}

/** Asks `node` for a tunnel; resolves with the open stream, or with the reason it was refused. */
async function ask (peer: Libp2p, node: PunchgateNode, request: TunnelRequest): Promise<{ stream: Stream } | { refused: string }> {
  const stream = await peer.dialProtocol(multiaddr(tcpAddr(node)), TUNNEL_PROTOCOL)
  try {
    await requestTunnel(stream, request, AbortSignal.timeout(10_000))
    return { stream }
  } catch (err) {
    if (!(err instanceof TunnelRejectedError)) throw err
    return { refused: err.reason }
  }
}

/** Sends `data` through an accepted tunnel stream and collects what comes back. */
async function echoThrough (stream: Stream, data: Uint8Array): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  const received = (async () => {
    for await (const chunk of stream) chunks.push(chunk.subarray())
  })()
  stream.send(data)
  await stream.close()
  await received
  return Buffer.concat(chunks)
}

describe('an attacker with a fresh key', () => {
  let echo: EchoServer
  let provider: PunchgateNode
  let friend: Libp2p
  let stranger: Libp2p

  before(async () => {
    echo = await echoServer()
    const friendKey = await generateKeyPair('Ed25519')
    provider = await testNode({
      allow: [peerIdFromPrivateKey(friendKey).toString()],
      expose: [`echo=127.0.0.1:${echo.port}`],
      exposeNet: [`v6=::/0:${echo.port}`, `loopback=127.0.0.0/8:${echo.port}`]
    })
    friend = await barePeer(friendKey)
    stranger = await barePeer(await generateKeyPair('Ed25519'))
  })

  after(async () => {
    await Promise.all([friend?.stop(), stranger?.stop()])
    await provider?.stop({ drainMs: 0 })
    await echo?.close()
  })

  it('cannot start a node that exposes a service without saying who may use it', async () => {
    await assert.rejects(testNode({ expose: [`echo=127.0.0.1:${echo.port}`] }),
      (err: unknown) => err instanceof ConfigError && /nobody may use this service yet/.test(err.message))
  })

  it('is refused on its peer id, and the target never sees a connection', async () => {
    assert.deepEqual(await ask(stranger, provider, { service: 'echo' }), { refused: 'not-allowed' })
    assert.deepEqual(await ask(stranger, provider, { service: 'v6', destination: { host: '::1', port: echo.port } }), { refused: 'not-allowed' })
    assert.equal(echo.connections(), 0, 'the target saw no connection from the stranger')

    // The same request from the listed peer goes through: the refusal was about who asked.
    const answer = await ask(friend, provider, { service: 'echo' })
    assert.ok('stream' in answer, 'the listed peer is admitted')
    const data = random(4096)
    assert.equal(sha256(await echoThrough(answer.stream, data)), sha256(data))
    assert.equal(echo.connections(), 1)
  })

  it('does not reach IPv4 loopback as ::ffff:127.0.0.1 through --expose-net ::/0, even when allowed', async () => {
    const before = echo.connections()
    for (const host of ['::ffff:127.0.0.1', '::ffff:7f00:1', '::1']) {
      assert.deepEqual(await ask(friend, provider, { service: 'v6', destination: { host, port: echo.port } }),
        { refused: 'destination-not-allowed' }, host)
    }
    assert.equal(echo.connections(), before, 'the loopback target saw no connection')

    // A network that names loopback itself does reach it, mapped address included.
    const answer = await ask(friend, provider, { service: 'loopback', destination: { host: '::ffff:127.0.0.1', port: echo.port } })
    assert.ok('stream' in answer, 'admitted through 127.0.0.0/8')
    const data = random(1024)
    assert.equal(sha256(await echoThrough(answer.stream, data)), sha256(data))
    assert.equal(echo.connections(), before + 1)
  })
})
