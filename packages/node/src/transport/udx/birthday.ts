/**
 * The birthday method against an endpoint-dependent ("symmetric") NAT with a random port
 * allocator (docs/nat-traversal.md "Hard NATs"): the symmetric side opens BIRTHDAY_SOCKETS
 * extra UDP sockets and sends a PROBE from each to the cone side's mapped address, so its NAT
 * holds that many random ports open towards it; the cone side sprays PROBEs from its one udx
 * socket to SPRAY_PROBES random ports of the symmetric side's public IP. A spray probe that
 * lands on one of those ports reaches its socket: that socket wins and the udx connection
 * runs over it (transport.ts `birthdayDial`); every other socket closes at once.
 *
 * Odds per round against a uniform allocator over PORT_RANGE ports (Linux `fully-random`
 * picks in 1024-65535): 1 - (1 - 256/64512)^1024 ~ 98% (`hitChance`).
 *
 * Bounds (what a peer that may punch with us can make us do, per round): open at most
 * BIRTHDAY_SOCKETS sockets for at most the round's deadline, each sending FAN_OUT_SENDS
 * PROBEs to one address; or send at most SPRAY_PROBES PROBEs (14 bytes each) to one IP, paced
 * at SPRAY_PER_SECOND, never to a port below MIN_PORT. The transport runs one fan-out and one
 * spray at a time.
 */
import { randomBytes, randomInt } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import type UDX from 'udx-native'
import type { UdxSocket } from 'udx-native'
import type { HostPort } from './addr.ts'
import { decodeDatagram, encodeDatagram, PROBE_TOKEN_BYTES } from './datagrams.ts'

export const BIRTHDAY_SOCKETS = 256
/** Each fan-out socket sends a PROBE this often, this many times (a lost first one is sent again). */
export const FAN_OUT_INTERVAL_MS = 1_000
export const FAN_OUT_SENDS = 4
export const SPRAY_PROBES = 1024
/**
 * 250 PROBEs/s (5 every 20 ms), 3.5 KB/s: the 1024 probes fit in a 5 s round (4.1 s) and keep
 * a ~98% hit chance per round, while the rate stays far below what trips flood limits on
 * routers (hundreds of new UDP flows per second are ordinary for a DNS-heavy LAN).
 */
export const SPRAY_BATCH = 5
export const SPRAY_BATCH_INTERVAL_MS = 20
export const SPRAY_PER_SECOND = SPRAY_BATCH * 1000 / SPRAY_BATCH_INTERVAL_MS
/** Allocators that randomise pick from 1024 up (Linux: 1024-65535 for a source port >= 1024). */
export const MIN_PORT = 1024
export const PORT_RANGE = 65536 - MIN_PORT

/** Chance that at least one of `probes` distinct random ports is one of `sockets` random mappings. */
export function hitChance (sockets: number, probes: number, range = PORT_RANGE): number {
  return 1 - (1 - sockets / range) ** probes
}

/** `count` distinct ports in MIN_PORT..65535, in random order, none of `except`. */
export function randomPorts (count: number, pick: (min: number, max: number) => number = randomInt, except: ReadonlySet<number> = new Set()): number[] {
  const n = Math.min(count, PORT_RANGE - except.size)
  const ports = new Set<number>()
  while (ports.size < n) {
    const port = pick(MIN_PORT, 65536)
    if (!except.has(port)) ports.add(port)
  }
  return [...ports]
}

/**
 * Port prediction: a NAT that allocates ports in sequence gives the fan-out's sockets the
 * ports right after the last one an observer saw, give or take the flows opened meanwhile.
 * The spray tries those first: PREDICTION_WINDOW ports after each observed port, nearest
 * first, within MIN_PORT..65535, at most SPRAY_PROBES in all. Against a random allocator a
 * predicted port is as likely a hit as any other, so the odds of the round do not change.
 */
export const PREDICTION_WINDOW = 512

export function predictedPorts (observed: number[], window = PREDICTION_WINDOW): number[] {
  const ports = new Set<number>()
  for (let step = 1; step <= window; step++) {
    for (const port of observed) {
      const next = port + step
      if (next >= MIN_PORT && next <= 65535) ports.add(next)
    }
  }
  return [...ports].slice(0, SPRAY_PROBES)
}

/** The spray's order: the predicted ports, then random ones, `count` distinct ports in all. */
export function sprayOrder (count: number, predicted: number[] = [], pick?: (min: number, max: number) => number): number[] {
  const first = [...new Set(predicted.filter(p => Number.isInteger(p) && p >= MIN_PORT && p <= 65535))].slice(0, count)
  return [...first, ...randomPorts(count - first.length, pick, new Set(first))]
}

function probeDatagram (): Uint8Array {
  return encodeDatagram({ type: 'probe', token: randomBytes(PROBE_TOKEN_BYTES) })
}

/**
 * The cone side: PROBEs from `socket` to `count` ports of `ip`, the `predicted` ones first
 * (`predictedPorts`), then random ones, SPRAY_BATCH every SPRAY_BATCH_INTERVAL_MS, until done
 * or `signal` aborts. Resolves with the number sent.
 */
export async function spray (socket: UdxSocket, ip: string, signal: AbortSignal, count = SPRAY_PROBES, predicted: number[] = []): Promise<number> {
  const datagram = probeDatagram()
  const ports = sprayOrder(Math.min(count, SPRAY_PROBES), predicted)
  let sent = 0
  while (sent < ports.length && !signal.aborted) {
    for (const port of ports.slice(sent, sent + SPRAY_BATCH)) socket.trySend(datagram, port, ip)
    sent = Math.min(sent + SPRAY_BATCH, ports.length)
    if (sent < ports.length) await delay(SPRAY_BATCH_INTERVAL_MS, undefined, { signal }).catch(() => {})
  }
  return sent
}

export interface FanOutInit {
  /** How many sockets; at most BIRTHDAY_SOCKETS. */
  count?: number
  signal: AbortSignal
  /** Every socket opened is added here while open (the transport closes them on stop). */
  open: Set<UdxSocket>
}

/**
 * The symmetric side: opens the sockets, PROBEs `target` from each; resolves with the first
 * socket that hears one of our datagrams from `target` itself (exact IP and port), the others
 * closed. Rejects when `signal` aborts first, all closed.
 */
export async function fanOut (udx: UDX, target: HostPort, init: FanOutInit): Promise<UdxSocket> {
  const count = Math.min(init.count ?? BIRTHDAY_SOCKETS, BIRTHDAY_SOCKETS)
  const { signal, open } = init
  const sockets: UdxSocket[] = []
  const closeAll = (keep?: UdxSocket): void => {
    for (const s of sockets) {
      if (s === keep) continue
      s.removeAllListeners('message')
      open.delete(s)
      void s.close().catch(() => {})
    }
  }
  signal.throwIfAborted()
  return await new Promise<UdxSocket>((resolve, reject) => {
    let settled = false
    const onAbort = (): void => {
      if (settled) return
      settled = true
      closeAll()
      reject(signal.reason instanceof Error ? signal.reason : new Error('birthday fan-out aborted'))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      for (let i = 0; i < count; i++) {
        const socket = udx.createSocket()
        socket.bind(0, '0.0.0.0')
        sockets.push(socket)
        open.add(socket)
        socket.on('message', (message, from) => {
          if (settled || from.host !== target.host || from.port !== target.port || decodeDatagram(message) == null) return
          settled = true
          signal.removeEventListener('abort', onAbort)
          socket.removeAllListeners('message')
          closeAll(socket)
          resolve(socket)
        })
      }
    } catch (err) {
      onAbort()
      reject(err)
      return
    }
    void (async () => {
      const datagram = probeDatagram()
      for (let n = 0; n < FAN_OUT_SENDS && !settled; n++) {
        for (const s of sockets) if (!settled) s.trySend(datagram, target.port, target.host)
        await delay(FAN_OUT_INTERVAL_MS, undefined, { signal }).catch(() => {})
      }
    })()
  })
}
