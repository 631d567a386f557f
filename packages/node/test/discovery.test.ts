import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Libp2p, PeerId, PeerInfo } from '@libp2p/interface'
import { findServiceProviders, TRUSTED_GRACE_MS } from '../src/discovery.ts'
import { localScope } from '../src/holepunch/candidates.ts'

async function peer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

/** Just what findServiceProviders uses of libp2p: a DHT that yields `providers` in order, `connected` peers. */
function fakeLibp2p (self: PeerId, providers: PeerId[], connected: PeerId[]): Libp2p {
  return {
    peerId: self,
    contentRouting: {
      async * findProviders (): AsyncGenerator<PeerInfo> {
        for (const id of providers) yield { id, multiaddrs: [] }
      }
    },
    peerStore: { merge: async () => {} },
    getPeers: () => connected,
    getConnections: () => []
  } as unknown as Libp2p
}

describe('findServiceProviders', () => {
  it('before anything is pinned, a peer that connected to us ahead of time is not moved to the front', async () => {
    const [self, honest, early] = await Promise.all([peer(), peer(), peer()])
    const found = await findServiceProviders(fakeLibp2p(self, [honest, early], [early]), 'ssh', AbortSignal.timeout(5_000), undefined, localScope())
    assert.deepEqual(found, [honest.toString(), early.toString()])
  })

  it('with trusted providers: trusted first, then connected ones, then the rest', async () => {
    const [self, a, b, c] = await Promise.all([peer(), peer(), peer(), peer()])
    const found = await findServiceProviders(fakeLibp2p(self, [a, b, c], [b]), 'ssh', AbortSignal.timeout(5_000), new Set([c.toString()]), localScope())
    assert.deepEqual(found, [c.toString(), b.toString(), a.toString()])
  })

  it('reads on only briefly once every trusted provider is in hand: a query that drags on is not waited out', async () => {
    const [self, a, pinned, late] = await Promise.all([peer(), peer(), peer(), peer()])
    const libp2p = {
      ...fakeLibp2p(self, [], []),
      contentRouting: {
        async * findProviders (_key: unknown, options: { signal: AbortSignal }): AsyncGenerator<PeerInfo> {
          yield { id: pinned, multiaddrs: [] }
          yield { id: a, multiaddrs: [] }
          // A lookup after a network change: closer peers at dead addresses, seconds each.
          await new Promise((_resolve, reject) => options.signal.addEventListener('abort', () => reject(options.signal.reason), { once: true }))
          yield { id: late, multiaddrs: [] }
        }
      }
    } as unknown as Libp2p
    const started = Date.now()
    const found = await findServiceProviders(libp2p, 'ssh', AbortSignal.timeout(10_000), new Set([pinned.toString()]), localScope())
    assert.deepEqual(found, [pinned.toString(), a.toString()])
    assert.ok(Date.now() - started < TRUSTED_GRACE_MS + 2_000, `took ${Date.now() - started} ms`)
  })

  it('a lookup aborted by its caller still fails', async () => {
    const [self, pinned] = await Promise.all([peer(), peer()])
    const libp2p = {
      ...fakeLibp2p(self, [], []),
      contentRouting: {
        async * findProviders (_key: unknown, options: { signal: AbortSignal }): AsyncGenerator<PeerInfo> {
          await new Promise((_resolve, reject) => options.signal.addEventListener('abort', () => reject(options.signal.reason), { once: true }))
          yield { id: pinned, multiaddrs: [] }
        }
      }
    } as unknown as Libp2p
    await assert.rejects(findServiceProviders(libp2p, 'ssh', AbortSignal.timeout(200), new Set([pinned.toString()]), localScope()))
  })
})
