/**
 * A TCP connection to each bootstrap, so a bootstrap observes the NAT mapping of our TCP
 * listening port (holepunch/observed.ts): the address a TCP punch offers peers.
 *
 * A node given its bootstrap's QUIC address (`/udp/4001/quic-v1`) has only a QUIC
 * connection to it: identify then tells us where our UDP socket was seen, never our TCP
 * listening port, and every punch round fails for want of a candidate (issue 19). So once
 * identify on such a connection lists the bootstrap's listen addresses, we dial its TCP
 * ones (from our listening port: transport/reuseport-tcp.ts), one at a time until one
 * connects, on a connection of their own.
 *
 * What a bootstrap can make us dial: only its own TCP addresses on the IP we already reach
 * it at (as netcheck), at most MAX_OBSERVER_DIALS per identify, one at a time.
 */
import type { Connection, IdentifyResult } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { DIAL_TIMEOUT_MS } from '../constants.ts'
import type { Swarm } from '../swarm.ts'
import { canReusePort } from '../transport/reuseport-tcp.ts'

/** TCP addresses of one bootstrap tried per identify, one after another. */
export const MAX_OBSERVER_DIALS = 3

export interface TcpObserverInit {
  swarm: Swarm
  /** Whether `peer` is one of our configured bootstraps. */
  isBootstrap: (peer: string) => boolean
  signal: AbortSignal
  /** Tests only: dial even where the platform cannot reuse the listening port. @default canReusePort */
  force?: boolean
}

function isRelayed (connection: Connection): boolean {
  return connection.limits != null || connection.remoteAddr.getComponents().some(c => c.name === 'p2p-circuit')
}

function isTcp (ma: Multiaddr): boolean {
  const [ip, transport, ...rest] = ma.getComponents()
  return (ip?.name === 'ip4' || ip?.name === 'ip6') && transport?.name === 'tcp' && rest.every(c => c.name === 'p2p')
}

/**
 * The addresses among `listed` a bootstrap reached over `connection` may have us dial for a
 * TCP observation: plain TCP on the connection's remote IP.
 */
export function observerAddrs (connection: Connection, listed: Multiaddr[]): Multiaddr[] {
  const ip = connection.remoteAddr.getComponents()[0]?.value
  if (ip == null) return []
  return listed.filter(ma => isTcp(ma) && ma.getComponents()[0]?.value === ip).slice(0, MAX_OBSERVER_DIALS)
}

/** Watches identify; returns a function that stops watching. */
export function watchTcpObservers (init: TcpObserverInit): () => void {
  const { swarm, isBootstrap, signal } = init
  const dialing = new Set<string>()
  const hasTcp = (connection: Connection): boolean => swarm.getConnections(connection.remotePeer)
    .some(c => c.status === 'open' && !isRelayed(c) && isTcp(c.remoteAddr))
  const listening = (): boolean => swarm.services.internals.transportManager.getAddrs().some(isTcp)

  const onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
    const { connection, listenAddrs, peerId } = evt.detail
    const peer = peerId.toString()
    if (signal.aborted || !isBootstrap(peer) || dialing.has(peer) || isRelayed(connection) || isTcp(connection.remoteAddr)) return
    if (hasTcp(connection) || !listening()) return
    const targets = observerAddrs(connection, listenAddrs)
    if (targets.length === 0) return
    dialing.add(peer)
    void (async () => {
      for (const target of targets) {
        if (signal.aborted || hasTcp(connection)) break
        const addr = target.getComponents().some(c => c.name === 'p2p') ? target : target.encapsulate(`/p2p/${peer}`)
        try {
          // force: a second connection beside the QUIC one, which libp2p would reuse otherwise.
          await swarm.dial(addr, { force: true, signal: AbortSignal.any([signal, AbortSignal.timeout(DIAL_TIMEOUT_MS)]) })
          break
        } catch {
          // The next address, if any; the punch offers no TCP mapping until one connects.
        }
      }
    })().finally(() => dialing.delete(peer))
  }

  if (init.force !== true && !canReusePort) return () => {}
  swarm.addEventListener('peer:identify', onIdentify)
  return () => swarm.removeEventListener('peer:identify', onIdentify)
}
