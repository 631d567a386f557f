/**
 * What a public node tells its operator to hand out: the exact `--bootstrap` values others
 * pass to join it, public addresses first, or, with only private and loopback ones, that
 * the node must be started with `--announce` for peers beyond this network.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { isPrivate } from '@libp2p/utils'

export interface BootstrapHint {
  /** `--bootstrap` values, each ending in /p2p/<id>; public ones only when there are any. */
  addrs: string[]
  /** False when every address is private or loopback: peers beyond this network cannot use them. */
  reachable: boolean
  /** With `reachable` false: the `--announce` value to start the node with, `<public ip>` to be filled in. */
  announce?: string
}

/** From the node's announced multiaddrs (circuit addresses are skipped: a public node relays, it is not relayed). */
export function bootstrapHint (announced: string[]): BootstrapHint {
  const own = announced.filter(a => !a.includes('/p2p-circuit') && a.includes('/p2p/'))
  const reachable = own.filter(a => !isPrivate(multiaddr(a)))
  if (reachable.length > 0) return { addrs: reachable, reachable: true }
  const tcp = own.map(a => /\/tcp\/(\d+)/.exec(a)?.[1]).find(port => port != null)
  return {
    addrs: own,
    reachable: false,
    ...(tcp != null ? { announce: `/ip4/<public ip>/tcp/${tcp}` } : {})
  }
}
