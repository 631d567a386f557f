import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PunchgateNode } from '../src/node.ts'
import { echoServer, portOf, random, recordingLogger, roundTrip, sha256, testNode, udpClient, udpEchoServer, until } from './fixtures.ts'

describe('a by-name tunnel to a service the node exposes itself', () => {
  let node: PunchgateNode
  let echo: Awaited<ReturnType<typeof echoServer>>
  let udpEcho: Awaited<ReturnType<typeof udpEchoServer>>
  const logger = recordingLogger()

  before(async () => {
    echo = await echoServer()
    udpEcho = await udpEchoServer()
    // Closed to everyone but another peer: the node's own tunnels pass the list all the same.
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    node = await testNode({
      expose: [`echo=127.0.0.1:${echo.port}?allow=${other}`, `uecho=127.0.0.1:${udpEcho.port}/udp?allow=${other}`],
      tunnelByName: ['echo@127.0.0.1:0', 'uecho@127.0.0.1:0/udp']
    }, { logger })
    // Activation may happen inside start(), before a listener could subscribe.
    await until(() => node.tunnels().every(t => t.status === 'direct'))
  })

  after(async () => {
    await node?.stop({ drainMs: 0 })
    await echo?.close()
    await udpEcho?.close()
  })

  it('goes live on the node itself, without pinning itself as the provider', () => {
    for (const t of node.tunnels()) assert.equal(t.peer, node.peerId)
    assert.deepEqual(logger.records.filter(r => r.event === 'provider.pinned'), [])
  })

  it('carries 1 MiB each way over TCP, byte-exact, through the expose handler', async () => {
    const port = portOf(node.tunnels().find(t => t.service === 'echo')?.bind ?? '')
    const data = random(1024 * 1024)
    const echoed = await roundTrip(port, data)
    assert.equal(sha256(echoed), sha256(data))
    await until(() => logger.records.some(r => r.event === 'tunnel.closed' && r.side === 'server' && r.service === 'echo'))
    const served = logger.records.find(r => r.event === 'tunnel.closed' && r.side === 'server')
    assert.equal(served?.peer, node.peerId)
    assert.equal(served?.bytesIn, data.length)
  })

  it('carries UDP datagrams', async () => {
    const port = portOf(node.tunnels().find(t => t.service === 'uecho')?.bind ?? '')
    const client = await udpClient(port)
    try {
      client.send(Buffer.from('ping over ourselves'))
      const [reply] = await client.waitFor(1)
      assert.equal(reply?.toString(), 'ping over ourselves')
    } finally {
      client.close()
    }
  })
})
