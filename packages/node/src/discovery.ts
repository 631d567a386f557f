/**
 * Service discovery over the Kademlia DHT: a service name maps to a content key,
 * providers of that key are the peers exposing the service.
 */
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { Libp2p, PeerInfo } from '@libp2p/interface'
import { MAX_PROVIDER_RECORDS, MAX_PROVIDERS } from './constants.ts'
import { localScope, usableProviderAddr, type CandidateScope } from './holepunch/candidates.ts'

/** The DHT key of a service: a CIDv1 (raw) over sha256("/punchgate/svc/" + name). */
export async function serviceKey (name: string): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(`/punchgate/svc/${name}`)))
}

export async function publishService (libp2p: Libp2p, name: string, signal: AbortSignal): Promise<void> {
  await libp2p.contentRouting.provide(await serviceKey(name), { signal })
}

/**
 * Collects up to MAX_PROVIDERS providers, this node excluded. Their addresses go to the peer
 * store. With `trusted`, those come first, then connected peers (the cheapest to use and most
 * likely alive), and the lookup reads on past MAX_PROVIDERS until it has seen a trusted one
 * (up to MAX_PROVIDER_RECORDS records), so sybils cannot hide it, and stops TRUSTED_GRACE_MS
 * after it has seen every trusted one. Without (first use), the lookup's order.
 */
/** How long a lookup reads on once it has every trusted provider. */
export const TRUSTED_GRACE_MS = 300

export async function findServiceProviders (libp2p: Libp2p, name: string, signal: AbortSignal, trusted?: ReadonlySet<string>, scope: CandidateScope = localScope()): Promise<string[]> {
  const self = libp2p.peerId.toString()
  const found = new Map<string, PeerInfo>()
  let records = 0
  let trustedSeen = trusted == null
  // Once every trusted provider is in hand, the rest of the query (closer peers, stale
  // addresses: seconds after a network change) is given TRUSTED_GRACE_MS more, enough for
  // the records that came with them (untrusted ones the tunnel's status names), no more.
  const enough = new AbortController()
  let grace: ReturnType<typeof setTimeout> | undefined
  try {
    for await (const provider of libp2p.contentRouting.findProviders(await serviceKey(name), { signal: AbortSignal.any([signal, enough.signal]) })) {
      const id = provider.id.toString()
      if (++records > MAX_PROVIDER_RECORDS) break
      if (id === self || found.has(id)) continue
      if (trusted?.has(id) === true) trustedSeen = true
      found.set(id, provider)
      // A record's addresses are the publisher's word: only those we may dial (candidates.ts usableProviderAddr).
      const multiaddrs = provider.multiaddrs.filter(ma => usableProviderAddr(ma, scope, relay => libp2p.getConnections().some(c => c.remotePeer.toString() === relay)))
      if (multiaddrs.length > 0) {
        await libp2p.peerStore.merge(provider.id, { multiaddrs })
      }
      if (found.size >= MAX_PROVIDERS && trustedSeen) break
      if (grace == null && trusted != null && trusted.size > 0 && [...trusted].every(t => found.has(t))) {
        grace = setTimeout(() => { enough.abort() }, TRUSTED_GRACE_MS)
      }
    }
  } catch (err) {
    if (!enough.signal.aborted || signal.aborted) throw err
  } finally {
    clearTimeout(grace)
  }
  // Before anything is trusted (the first use that will pin a provider), being connected
  // to us is no credential: any peer can connect ahead of time to win the pin. Then the
  // lookup's own order stands.
  if (trusted == null) return [...found.keys()]
  const connected = new Set(libp2p.getPeers().map(p => p.toString()))
  const rank = (id: string): number => (trusted.has(id) ? 2 : 0) + (connected.has(id) ? 1 : 0)
  return [...found.keys()].sort((a, b) => rank(b) - rank(a))
}
