/**
 * Does the gateway speak NAT-PMP, or UPnP-IGD v2? Asked with a few bytes of our own before
 * @achingbrain/nat-port-mapper is loaded (client.ts), so a node on a network whose router
 * answers neither never loads the library (3-4 MB of RSS: docs/nat-traversal.md).
 *
 * Both ask only the gateway: NAT-PMP is sent to it alone; the SSDP search is multicast on
 * the LAN (UPnP has no other way), and only an answer from the gateway whose description
 * URL is on the gateway's address counts.
 */
import { createSocket, type Socket } from 'node:dgram'
import type { Gateway } from './gateway.ts'

export const NAT_PMP_PORT = 5351
export const SSDP_ADDRESS = '239.255.255.250'
export const SSDP_PORT = 1900
export const IGD2 = 'urn:schemas-upnp-org:device:InternetGatewayDevice:2'

/** RFC 6886 3.1: retransmit at 250 ms, doubling (PCP uses it too: its own 3 s would outlast our wait). */
export const NAT_PMP_FIRST_RETRY_MS = 250
const SSDP_RETRY_MS = 500

export interface ProbeTarget {
  /** Where to send; tests point these at a fake router on loopback. */
  host?: string
  port?: number
}

export interface ExchangeOptions {
  bindIp: string
  host: string
  port: number
  message: Buffer
  retryMs: number
  backoff: boolean
  multicast: boolean
  accept: (msg: Buffer, from: string) => boolean
  signal: AbortSignal
}

/**
 * Sends `message` from an ephemeral socket on `bindIp` (again and again, `retryMs` apart,
 * doubling when `backoff`), until `accept` takes an answer (resolves with it) or `signal`
 * ends the wait, or the socket fails (resolves undefined).
 */
export async function exchange (options: ExchangeOptions): Promise<Buffer | undefined> {
  if (options.signal.aborted) return undefined
  const socket: Socket = createSocket('udp4')
  return new Promise<Buffer | undefined>(resolve => {
    let timer: ReturnType<typeof setTimeout> | undefined
    let delay = options.retryMs
    let finished = false
    const done = (answer?: Buffer): void => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      options.signal.removeEventListener('abort', onAbort)
      socket.close()
      resolve(answer)
    }
    const onAbort = (): void => { done() }
    const send = (): void => {
      // A unicast probe's socket is connected: a router that refuses the port (ICMP port
      // unreachable) fails the send at once instead of leaving us to wait for the timeout.
      if (options.multicast) socket.send(options.message, options.port, options.host, () => {})
      else socket.send(options.message, err => { if (err != null) done() })
      timer = setTimeout(send, delay)
      if (options.backoff) delay *= 2
    }
    options.signal.addEventListener('abort', onAbort, { once: true })
    socket.on('error', () => { done() })
    socket.on('message', (msg, rinfo) => { if (options.accept(msg, rinfo.address)) done(msg) })
    socket.bind(0, options.bindIp, () => {
      if (!options.multicast) {
        socket.connect(options.port, options.host, () => { send() })
        return
      }
      try {
        socket.setMulticastInterface(options.bindIp)
      } catch {}
      send()
    })
  })
}

/** Whether the gateway answers NAT-PMP's external address request (version 0, opcode 0). */
export async function answersNatPmp (gateway: Gateway, signal: AbortSignal, target: ProbeTarget = {}): Promise<boolean> {
  return undefined !== await exchange({
    bindIp: gateway.localIp,
    host: target.host ?? gateway.ip,
    port: target.port ?? NAT_PMP_PORT,
    message: Buffer.from([0, 0]),
    retryMs: NAT_PMP_FIRST_RETRY_MS,
    backoff: true,
    multicast: false,
    // Version 0, opcode 128 + 0, result 0 (success), from the gateway itself.
    accept: (msg, from) => from === gateway.ip && msg.length >= 12 && msg[0] === 0 && msg[1] === 128 && msg.readUInt16BE(2) === 0,
    signal
  })
}

/** The LOCATION header of an SSDP answer, if it has one. */
function location (msg: Buffer): URL | undefined {
  const line = msg.toString('latin1').split('\r\n').find(l => /^location:/i.test(l))
  try {
    return line != null ? new URL(line.slice(line.indexOf(':') + 1).trim()) : undefined
  } catch {
    return undefined
  }
}

/** Whether the gateway answers an SSDP search for an IGD v2 with a description on its own address. */
export async function answersSsdp (gateway: Gateway, signal: AbortSignal, target: ProbeTarget = {}): Promise<boolean> {
  const host = target.host ?? SSDP_ADDRESS
  const port = target.port ?? SSDP_PORT
  const message = Buffer.from([
    'M-SEARCH * HTTP/1.1', `HOST: ${SSDP_ADDRESS}:${SSDP_PORT}`, 'MAN: "ssdp:discover"', 'MX: 1', `ST: ${IGD2}`, '', ''
  ].join('\r\n'))
  return undefined !== await exchange({
    bindIp: gateway.localIp,
    host,
    port,
    message,
    retryMs: SSDP_RETRY_MS,
    backoff: false,
    multicast: true,
    accept: (msg, from) => from === gateway.ip && msg.toString('latin1').includes(IGD2) && location(msg)?.hostname === gateway.ip,
    signal
  })
}
