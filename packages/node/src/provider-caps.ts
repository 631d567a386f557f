/**
 * Caps on the provider records a public node keeps for other peers (DHT ADD_PROVIDER), per
 * publishing peer and in total. @libp2p/kad-dht has no option for it: it keeps each record
 * as one key, `/dht/provider/<multihash>/<peer id>`, in the datastore libp2p is given, and
 * its hourly sweep deletes expired records from there. This datastore counts those keys
 * and refuses a new one over a cap: the put throws, the ADD_PROVIDER request fails, the
 * record is not kept. Refreshing a record already kept is always allowed.
 */
import { MemoryDatastore } from 'datastore-core/memory'
import type { Key } from 'interface-datastore'
import type { AbortOptions } from '@libp2p/interface'
import { ProviderCapError } from './errors.ts'

/** kad-dht's default datastore prefix (swarm.ts does not change it) and its provider sub-key. */
const PROVIDER_PREFIX = '/dht/provider/'
/**
 * kad-dht's value records (PUT_VALUE): any peer may store one, under a key of its choosing
 * that a fresh key pair makes new each time (`/pk/...`), and nothing expires them. Punchgate
 * never reads them; they are held to the same total as provider records.
 */
const VALUE_PREFIX = '/dht/record/'

export interface ProviderCaps {
  perPeer: number
  total: number
}

export interface ProviderRefusal {
  peer: string
  reason: 'peer-cap' | 'total-cap'
}

export interface ProviderCapsInit extends ProviderCaps {
  /** This node's own peer id: its own records are never refused. */
  self: string
  /** Called on every refused record. */
  onRefused?: (refusal: ProviderRefusal) => void
}

/** The publishing peer of a provider record's key, or undefined for any other key. */
function providerOf (key: Key): string | undefined {
  const text = key.toString()
  if (!text.startsWith(PROVIDER_PREFIX)) return undefined
  return text.slice(text.lastIndexOf('/') + 1)
}

export class CappedProviderStore extends MemoryDatastore {
  private readonly caps: ProviderCaps
  private readonly self: string
  private readonly perPeer = new Map<string, number>()
  private total = 0
  private values = 0
  onRefused?: (refusal: ProviderRefusal) => void

  constructor (init: ProviderCapsInit) {
    super()
    this.caps = { perPeer: init.perPeer, total: init.total }
    this.self = init.self
    this.onRefused = init.onRefused
  }

  /** Provider records kept now, this node's own included. */
  get records (): number {
    return this.total
  }

  /** MemoryDatastore answers synchronously: the count and the store change in the same tick, so concurrent puts cannot both pass a cap. */
  private holds (key: Key): boolean {
    return super.has(key) as boolean
  }

  put (key: Key, value: Uint8Array, options?: AbortOptions): Key | Promise<Key> {
    if (key.toString().startsWith(VALUE_PREFIX) && !this.holds(key)) {
      if (this.values >= this.caps.total) throw new ProviderCapError(`DHT value record refused: total-cap (${this.caps.total})`)
      this.values++
      return super.put(key, value, options)
    }
    const peer = providerOf(key)
    if (peer == null || this.holds(key)) return super.put(key, value, options)
    const count = this.perPeer.get(peer) ?? 0
    if (peer !== this.self) {
      const reason = count >= this.caps.perPeer ? 'peer-cap' : this.total >= this.caps.total ? 'total-cap' : undefined
      if (reason != null) {
        this.onRefused?.({ peer, reason })
        throw new ProviderCapError(`provider record from ${peer} refused: ${reason}`)
      }
    }
    this.perPeer.set(peer, count + 1)
    this.total++
    return super.put(key, value, options)
  }

  delete (key: Key, options?: AbortOptions): void | Promise<void> {
    if (key.toString().startsWith(VALUE_PREFIX) && this.holds(key)) this.values--
    const peer = providerOf(key)
    if (peer != null && this.holds(key)) {
      const count = (this.perPeer.get(peer) ?? 1) - 1
      if (count === 0) this.perPeer.delete(peer)
      else this.perPeer.set(peer, count)
      this.total--
    }
    return super.delete(key, options)
  }
}

/**
 * Refusals for the log: the first at once, then at most one per `intervalMs`, carrying how
 * many were refused since the last one reported. State is two numbers, whatever the peers.
 */
export function refusalReporter (report: (refusal: ProviderRefusal & { refused: number }) => void, intervalMs: number, now = Date.now): (refusal: ProviderRefusal) => void {
  let last = -Infinity
  let refused = 0
  return refusal => {
    refused++
    if (now() - last < intervalMs) return
    last = now()
    report({ ...refusal, refused })
    refused = 0
  }
}
