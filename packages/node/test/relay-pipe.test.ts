/**
 * The circuit relay server joins its two streams with @libp2p/utils' pipe(src, dst, src).
 * Unpatched, that made a second reader on `src` whose queue nobody drained: a relay kept
 * every byte it relayed (538 MB after a 512 MiB transfer in the bench). patches/ fixes
 * it; this test fails if the patch is lost (e.g. by an @libp2p/utils upgrade).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { pipe, streamPair } from '@libp2p/utils'
import type { StreamMessageEvent } from '@libp2p/interface'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const MiB = 1024 * 1024

function arrayBuffersAfterGc (): number {
  gc()
  gc()
  return process.memoryUsage().arrayBuffers
}

describe('a relay joining two streams', () => {
  it('delivers every byte and keeps none of them afterwards', async () => {
    const [client, relayIn] = await streamPair()
    const [relayOut, server] = await streamPair()
    const total = 32 * MiB
    let received = 0
    const done = new Promise<void>(resolve => {
      server.addEventListener('message', (evt: StreamMessageEvent) => {
        received += evt.data.byteLength
        if (received >= total) resolve()
      })
    })
    void pipe(relayIn, relayOut, relayIn).catch(() => {})

    const before = arrayBuffersAfterGc()
    for (let sent = 0; sent < total; sent += MiB) {
      if (!client.send(new Uint8Array(MiB).fill(sent / MiB))) await client.onDrain()
    }
    await done
    const growth = arrayBuffersAfterGc() - before

    assert.equal(received, total)
    assert.ok(growth < 8 * MiB, `the relay still holds ${(growth / MiB).toFixed(1)} MiB after relaying ${total / MiB} MiB`)
    client.abort(new Error('test over'))
    server.abort(new Error('test over'))
  })
})
