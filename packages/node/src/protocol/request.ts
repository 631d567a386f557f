/**
 * Client side of the tunnel handshake: ask for a service on an open stream, and read the
 * answer. Shared by the tunnel listener and `openTunnelStream` (punchgate connect).
 */
import type { Stream } from '@libp2p/interface'
import { TunnelRejectedError } from '../errors.ts'
import { decodeReply, encodeLengthPrefixed, readFrame, type TunnelRequest } from './handshake.ts'

/**
 * Queues the request on the stream and returns: the client's first bytes may follow it at
 * once (docs/protocol.md), and the server reads them only once it has accepted.
 */
export function sendRequest (stream: Stream, request: TunnelRequest): void {
  stream.send(encodeLengthPrefixed(request))
}

/** Resolves once the server accepted; throws TunnelRejectedError on a refusal, ProtocolError on a bad reply. */
export async function readReply (stream: Stream, service: string, signal: AbortSignal): Promise<void> {
  const reply = decodeReply(await readFrame(stream, signal))
  if (!reply.accepted) throw new TunnelRejectedError(service, reply.reason, reply.message)
}

/** Asks and waits for the answer. */
export async function requestTunnel (stream: Stream, request: TunnelRequest | string, signal: AbortSignal): Promise<void> {
  const asked = typeof request === 'string' ? { service: request } : request
  sendRequest(stream, asked)
  await readReply(stream, asked.service, signal)
}
