/**
 * The handshake udx lacks (transport.ts): a dial resends SYN (a nonce, its stream id) every
 * SYN_INTERVAL_MS until the listener's SYN-ACK (its stream id) comes back from the dialled
 * address; the listener remembers each SYN it answered, so a resent SYN gets the same answer.
 *
 * What a stranger can make us do here: a SYN gets one SYN-ACK of the same size, resent at
 * most SYN_ACKS_PER_HANDSHAKE times; at most NEW_HANDSHAKES_PER_IP_PER_MINUTE new handshakes
 * per source address and MAX_REMEMBERED_HANDSHAKES remembered at once (the caller caps the
 * upgrades pending). A SYN-ACK completes only a dial of ours, from the address it went to.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { AbortError, TimeoutError } from '@libp2p/interface'
import type { UdxSocket } from 'udx-native'
import { PeerBudget } from '../../holepunch/budget.ts'
import type { HostPort } from './addr.ts'
import { encodeDatagram } from './datagrams.ts'

/** SYN resend interval and count: a dial gives up after SYN_INTERVAL_MS x SYN_ATTEMPTS (4.5 s). */
export const SYN_INTERVAL_MS = 100
export const SYN_ATTEMPTS = 45
/** A handshake is remembered this long, so a resent SYN gets the same answer. */
const HANDSHAKE_MEMORY_MS = 10_000
const SYN_ACKS_PER_HANDSHAKE = 10
/** Handshakes remembered at once (each for HANDSHAKE_MEMORY_MS): a flood of SYNs from many addresses cannot grow the table. */
const MAX_REMEMBERED_HANDSHAKES = 1024
const NEW_HANDSHAKES_PER_IP_PER_MINUTE = 30

interface Accepted { streamId: number, acks: number, expires: number }
interface Dialing { resolve: (remoteStreamId: number) => void }

/** What to do with a SYN: answer with `streamId`; `fresh` when it starts a new handshake (connect a stream first). */
export interface SynAnswer { streamId: number, fresh: boolean }

export class Handshakes {
  /** `host:port:nonce` of SYNs we answered. */
  private readonly accepted = new Map<string, Accepted>()
  /** `host:port:nonce` of our dials waiting for a SYN-ACK. */
  private readonly dialing = new Map<string, Dialing>()
  private readonly newHandshakes = new PeerBudget({ limit: NEW_HANDSHAKES_PER_IP_PER_MINUTE, windowMs: 60_000 })

  /**
   * The listener's side: how to answer a SYN from `from`, or undefined to drop it (answered
   * often enough, a cap reached, or `mayAccept` false for a new one). `newStreamId` is
   * called only for a new handshake.
   */
  answer (from: HostPort, nonce: number, mayAccept: boolean, newStreamId: () => number): SynAnswer | undefined {
    const key = `${from.host}:${from.port}:${nonce}`
    const now = Date.now()
    this.forgetOld(now)
    const known = this.accepted.get(key)
    if (known != null) return known.acks++ < SYN_ACKS_PER_HANDSHAKE ? { streamId: known.streamId, fresh: false } : undefined
    if (!mayAccept || this.accepted.size >= MAX_REMEMBERED_HANDSHAKES || !this.newHandshakes.take(from.host)) return undefined
    const streamId = newStreamId()
    this.accepted.set(key, { streamId, acks: 1, expires: now + HANDSHAKE_MEMORY_MS })
    return { streamId, fresh: true }
  }

  /** A SYN-ACK from `from`: completes our dial there with that nonce, if any. */
  onSynAck (from: HostPort, nonce: number, remoteStreamId: number): void {
    this.dialing.get(`${from.host}:${from.port}:${nonce}`)?.resolve(remoteStreamId)
  }

  /** The dialer's side: resends SYN from `socket` until `target` answers; its stream id. */
  async dial (socket: UdxSocket, target: HostPort, streamId: number, signal: AbortSignal): Promise<number> {
    const nonce = randomBytes(4).readUInt32BE()
    const key = `${target.host}:${target.port}:${nonce}`
    const syn = encodeDatagram({ type: 'syn', nonce, streamId })
    const answered = new AbortController()
    try {
      return await new Promise<number>((resolve, reject) => {
        this.dialing.set(key, { resolve })
        const onAbort = (): void => { reject(signal.reason instanceof Error ? signal.reason : new AbortError()) }
        signal.addEventListener('abort', onAbort, { once: true })
        answered.signal.addEventListener('abort', () => { signal.removeEventListener('abort', onAbort) }, { once: true })
        void (async () => {
          for (let i = 0; i < SYN_ATTEMPTS && !signal.aborted && !answered.signal.aborted; i++) {
            socket.trySend(syn, target.port, target.host)
            await delay(SYN_INTERVAL_MS, undefined, { signal: answered.signal }).catch(() => {})
          }
          reject(new TimeoutError(`no udx answer from ${target.host}:${target.port} after ${SYN_ATTEMPTS} SYNs`))
        })()
      })
    } finally {
      answered.abort()
      this.dialing.delete(key)
    }
  }

  private forgetOld (now: number): void {
    for (const [key, a] of this.accepted) {
      if (a.expires > now) break
      this.accepted.delete(key)
    }
  }
}
