/**
 * PCP (RFC 6887) MAP requests to the gateway's port 5351: our own few bytes, as no library
 * on npm we found speaks PCP (@achingbrain/nat-port-mapper does NAT-PMP and UPnP only).
 * IPv4 only, like the rest of port mapping. Each mapping keeps its nonce: a renewal or a
 * deletion must carry the one the mapping was made with.
 */
import { randomBytes } from 'node:crypto'
import { isIPv4 } from 'node:net'
import type { ClientFactory, Lease, MapRequest, MappingClient } from './client.ts'
import type { Gateway } from './gateway.ts'
import { exchange, NAT_PMP_FIRST_RETRY_MS, NAT_PMP_PORT, type ProbeTarget } from './probe.ts'

const VERSION = 2
const OPCODE_ANNOUNCE = 0
const OPCODE_MAP = 1
const RESPONSE = 0x80
const HEADER_BYTES = 24
const MAP_BYTES = 36
const PROTOCOLS = { tcp: 6, udp: 17 } as const

const RESULTS: Record<number, string> = {
  1: 'UNSUPP_VERSION', 2: 'NOT_AUTHORIZED', 3: 'MALFORMED_REQUEST', 4: 'UNSUPP_OPCODE', 5: 'UNSUPP_OPTION',
  6: 'MALFORMED_OPTION', 7: 'NETWORK_FAILURE', 8: 'NO_RESOURCES', 9: 'UNSUPP_PROTOCOL', 10: 'USER_EX_QUOTA',
  11: 'CANNOT_PROVIDE_EXTERNAL', 12: 'ADDRESS_MISMATCH', 13: 'EXCESSIVE_REMOTE_PEERS'
}

/** `a.b.c.d` as PCP's 16-byte address (IPv4-mapped IPv6); all zeros for none. */
function mappedIPv4 (ip?: string): Buffer {
  const out = Buffer.alloc(16)
  if (ip == null || !isIPv4(ip)) return out
  out[10] = 0xff
  out[11] = 0xff
  ip.split('.').forEach((octet, i) => { out[12 + i] = Number(octet) })
  return out
}

function ipv4Of (bytes: Buffer): string | undefined {
  const mapped = bytes.subarray(0, 10).every(b => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff
  return mapped ? [...bytes.subarray(12, 16)].join('.') : undefined
}

function header (opcode: number, lifetimeS: number, clientIp: string): Buffer {
  const h = Buffer.alloc(HEADER_BYTES)
  h[0] = VERSION
  h[1] = opcode
  h.writeUInt32BE(lifetimeS, 4)
  mappedIPv4(clientIp).copy(h, 8)
  return h
}

export interface PcpMap {
  nonce: Buffer
  protocol: MapRequest['protocol']
  internalPort: number
  externalPort: number
  lifetimeS: number
}

export function encodeMap (clientIp: string, m: PcpMap): Buffer {
  const body = Buffer.alloc(MAP_BYTES)
  m.nonce.copy(body, 0)
  body[12] = PROTOCOLS[m.protocol]
  body.writeUInt16BE(m.internalPort, 16)
  body.writeUInt16BE(m.externalPort, 18)
  // Suggested external address: "any IPv4 address" (::ffff:0.0.0.0).
  mappedIPv4('0.0.0.0').copy(body, 20)
  return Buffer.concat([header(OPCODE_MAP, m.lifetimeS, clientIp), body])
}

export interface PcpMapResponse {
  result: number
  lifetimeS: number
  nonce: Buffer
  protocol: number
  internalPort: number
  externalPort: number
  externalIp?: string
}

/** A MAP response, or undefined when `msg` is not one. */
export function decodeMapResponse (msg: Buffer): PcpMapResponse | undefined {
  if (msg.length < HEADER_BYTES + MAP_BYTES || msg[0] !== VERSION || msg[1] !== (RESPONSE | OPCODE_MAP)) return undefined
  const body = msg.subarray(HEADER_BYTES)
  return {
    result: msg[3] ?? 0,
    lifetimeS: msg.readUInt32BE(4),
    nonce: Buffer.from(body.subarray(0, 12)),
    protocol: body[12] ?? 0,
    internalPort: body.readUInt16BE(16),
    externalPort: body.readUInt16BE(18),
    ...(ipv4Of(body.subarray(20, 36)) != null ? { externalIp: ipv4Of(body.subarray(20, 36)) } : {})
  }
}

function resultError (code: number): Error {
  return new Error(`PCP ${RESULTS[code] ?? `result ${code}`}`)
}

/** The PCP client for one gateway; `target` points it elsewhere in tests. */
/** One request to the gateway's PCP port, retried with backoff; the first answer from the gateway that `accept` takes. */
async function askGateway (gateway: Gateway, target: ProbeTarget, message: Buffer, accept: (msg: Buffer) => boolean, signal: AbortSignal): Promise<Buffer | undefined> {
  return exchange({
    bindIp: gateway.localIp,
    host: target.host ?? gateway.ip,
    port: target.port ?? NAT_PMP_PORT,
    message,
    retryMs: NAT_PMP_FIRST_RETRY_MS,
    backoff: true,
    multicast: false,
    accept: (msg, from) => from === gateway.ip && accept(msg),
    signal
  })
}

/** PCP's ANNOUNCE request (RFC 6887 14.1: it maps nothing), from `clientIp`. */
export function announceRequest (clientIp: string): Buffer {
  return header(OPCODE_ANNOUNCE, 0, clientIp)
}

/**
 * Sends ANNOUNCE to the gateway: a PCP server answers it in version 2; a NAT-PMP-only one
 * answers version 0 (unsupported version). Resolves with that answer, or undefined if none came.
 */
export async function announce (gateway: Gateway, signal: AbortSignal, target: ProbeTarget = {}): Promise<Buffer | undefined> {
  return askGateway(gateway, target, announceRequest(gateway.localIp), msg => msg.length >= 4 && (msg[0] === 0 || msg[0] === VERSION), signal)
}

/** Whether an ANNOUNCE answer is a PCP server's, with success. */
export function announcedPcp (hello: Buffer | undefined): boolean {
  return hello != null && hello.length >= HEADER_BYTES && hello[0] === VERSION && hello[1] === (RESPONSE | OPCODE_ANNOUNCE) && hello[3] === 0
}

export function pcpClientFor (target: ProbeTarget = {}): ClientFactory {
  return async (gateway: Gateway, signal: AbortSignal): Promise<MappingClient> => {
    const ask = async (message: Buffer, accept: (msg: Buffer) => boolean, signal: AbortSignal): Promise<Buffer | undefined> =>
      askGateway(gateway, target, message, accept, signal)
    const hello = await announce(gateway, signal, target)
    if (hello == null) throw new Error('no PCP answer from the gateway')
    if (hello[0] !== VERSION || hello[1] !== (RESPONSE | OPCODE_ANNOUNCE)) throw new Error('the gateway speaks NAT-PMP, not PCP')
    if (hello.length >= HEADER_BYTES && hello[3] !== 0) throw resultError(hello[3] ?? 0)

    const nonces = new Map<string, Buffer>()
    const nonceOf = (r: MapRequest): Buffer => {
      const key = `${r.protocol}/${r.internalPort}`
      let nonce = nonces.get(key)
      if (nonce == null) {
        nonce = randomBytes(12)
        nonces.set(key, nonce)
      }
      return nonce
    }
    const send = async (r: MapRequest, lifetimeS: number, signal: AbortSignal): Promise<PcpMapResponse> => {
      const nonce = nonceOf(r)
      const answer = await ask(encodeMap(gateway.localIp, { nonce, protocol: r.protocol, internalPort: r.internalPort, externalPort: r.externalPort, lifetimeS }), msg => {
        const m = decodeMapResponse(msg)
        return m != null && m.nonce.equals(nonce) && m.internalPort === r.internalPort && m.protocol === PROTOCOLS[r.protocol]
      }, signal)
      if (answer == null) throw new Error(signal.aborted ? 'timed out' : 'no answer')
      const m = decodeMapResponse(answer) as PcpMapResponse
      if (m.result !== 0) throw resultError(m.result)
      return m
    }
    return {
      method: 'pcp',
      map: async (request, signal): Promise<Lease> => {
        const m = await send(request, request.lifetimeS, signal)
        if (m.externalIp == null) throw new Error('PCP answer without an IPv4 external address')
        return { externalIp: m.externalIp, externalPort: m.externalPort, lifetimeS: m.lifetimeS }
      },
      unmap: async (request, signal) => {
        await send(request, 0, signal)
        nonces.delete(`${request.protocol}/${request.internalPort}`)
      },
      close: async () => {}
    }
  }
}

export const pcpClient: ClientFactory = pcpClientFor()
