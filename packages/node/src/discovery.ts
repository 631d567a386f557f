/**
 * Service discovery over the Kademlia DHT: a service name maps to a content key,
 * providers of that key are the peers exposing the service.
 */
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { Libp2p, PeerInfo } from '@libp2p/interface'
import { MAX_PROVIDERS } from './constants.ts'

/** The DHT key of a service: a CIDv1 (raw) over sha256("/punchgate/svc/" + name). */
export async function serviceKey (name: string): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(`/punchgate/svc/${name}`)))
}

export async function publishService (libp2p: Libp2p, name: string, signal: AbortSignal): Promise<void> {
  await libp2p.contentRouting.provide(await serviceKey(name), { signal })
}

/**
 * Collects up to MAX_PROVIDERS providers, this node excluded, connected peers first
 * (they are the cheapest to use and most likely alive). Their addresses go to the peer store.
 */
export async function findServiceProviders (libp2p: Libp2p, name: string, signal: AbortSignal): Promise<string[]> {
  const self = libp2p.peerId.toString()
  const found = new Map<string, PeerInfo>()
  for await (const provider of libp2p.contentRouting.findProviders(await serviceKey(name), { signal })) {
    const id = provider.id.toString()
    if (id === self || found.has(id)) continue
    found.set(id, provider)
    if (provider.multiaddrs.length > 0) {
      await libp2p.peerStore.merge(provider.id, { multiaddrs: provider.multiaddrs })
    }
    if (found.size >= MAX_PROVIDERS) break
  }
  const connected = new Set(libp2p.getPeers().map(p => p.toString()))
  return [...found.keys()].sort((a, b) => Number(connected.has(b)) - Number(connected.has(a)))
}
