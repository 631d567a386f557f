/**
 * Client side of the tunnel handshake: ask for a service on an open stream and wait
 * for the answer. Shared by the tunnel listener and `openTunnelStream` (punchgate connect).
 */
import type { Stream } from '@libp2p/interface'
import { TunnelRejectedError } from '../errors.ts'
import { decodeReply, readFrame, writeFrame, type TunnelRequest } from './handshake.ts'

/** Resolves once the server accepted; throws TunnelRejectedError on a refusal, ProtocolError on a bad reply. */
export async function requestTunnel (stream: Stream, request: TunnelRequest | string, signal: AbortSignal): Promise<void> {
  const asked = typeof request === 'string' ? { service: request } : request
  await writeFrame(stream, asked, signal)
  const reply = decodeReply(await readFrame(stream, signal))
  if (!reply.accepted) throw new TunnelRejectedError(asked.service, reply.reason, reply.message)
}
