/**
 * One punch round's messages on a stream, whichever protocol it negotiated: `/libp2p/dcutr`
 * (protobuf, dcutr-wire.ts) or Punchgate's older `/punchgate/punch/1.0.0` (JSON, wire.ts).
 * Both are varint-length-prefixed frames of at most MAX_FRAME_BYTES (DCUtR's own limit is 4 KiB).
 */
import { lpStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { DCUTR_PROTOCOL, MAX_FRAME_BYTES, PUNCH_PROTOCOL } from '../constants.ts'
import { decodeHolePunch, encodeHolePunch } from './dcutr-wire.ts'
import { decodePunch, encodePunch, type PunchMessage } from './wire.ts'

/** The protocols a round may run on, in the order we ask for them: the standard one first. */
export const PUNCH_PROTOCOLS = [DCUTR_PROTOCOL, PUNCH_PROTOCOL]

export interface RoundWire {
  read: () => Promise<PunchMessage>
  write: (m: PunchMessage) => Promise<void>
}

export function roundWire (stream: Stream, signal: AbortSignal): RoundWire {
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
  if (stream.protocol === PUNCH_PROTOCOL) {
    return {
      // Only Punchgate speaks this protocol.
      read: async () => ({ ...decodePunch((await lp.read({ signal })).subarray()), punchgate: true }),
      write: async m => {
        const { punchgate, ...json } = m
        await lp.write(encodePunch(json), { signal })
      }
    }
  }
  return {
    read: async () => decodeHolePunch((await lp.read({ signal })).subarray()),
    write: async m => { await lp.write(encodeHolePunch(m), { signal }) }
  }
}
