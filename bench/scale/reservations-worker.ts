/**
 * A worker process of the scale bench that holds many light clients (light-client.ts),
 * each with one reservation on the public node. Driven by the parent over IPC:
 *   { type: 'add', relay, from, count, concurrency }  make clients from..from+count-1 and reserve
 *   { type: 'check', relay }                            count the reservations still held
 *   { type: 'stop' }                                    stop every client and exit
 * Client i dials from 127.0.(1 + i / 250).(1 + i % 250): one address per peer.
 */
import { lightClient, type LightClient } from './light-client.ts'

export type WorkerRequest =
  | { type: 'add', relay: string, from: number, count: number, concurrency: number }
  | { type: 'check', relay: string }
  | { type: 'stop' }

export interface AddResult { type: 'added', held: number, failed: number, retries: number, errors: string[] }
export interface CheckResult { type: 'checked', held: number }

/** A refused or timed-out reservation is tried again this often before it counts as failed. */
const ATTEMPTS = 4

export function loopbackAddress (index: number): string {
  return `127.0.${1 + Math.floor(index / 250)}.${1 + index % 250}`
}

const clients: LightClient[] = []

async function addOne (relay: string, index: number, result: AddResult): Promise<void> {
  let lastError = ''
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    let client: LightClient | undefined
    try {
      client = await lightClient(loopbackAddress(index))
      await client.reserve(relay)
      clients.push(client)
      return
    } catch (err) {
      lastError = (err as Error).message
      await Promise.resolve(client?.node.stop()).catch(() => {})
      if (attempt < ATTEMPTS) {
        result.retries++
        // The public node refuses past its pending-connection cap: back off a little.
        await new Promise(resolve => setTimeout(resolve, 200 * attempt))
      }
    }
  }
  result.failed++
  if (result.errors.length < 5) result.errors.push(lastError)
}

async function add (relay: string, from: number, count: number, concurrency: number): Promise<AddResult> {
  const result: AddResult = { type: 'added', held: 0, failed: 0, retries: 0, errors: [] }
  let next = from
  const end = from + count
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, async () => {
    while (next < end) await addOne(relay, next++, result)
  }))
  result.held = clients.filter(c => c.holds(relay)).length
  return result
}

process.on('message', (request: WorkerRequest) => {
  void (async () => {
    switch (request.type) {
      case 'add':
        process.send?.(await add(request.relay, request.from, request.count, request.concurrency))
        break
      case 'check':
        process.send?.({ type: 'checked', held: clients.filter(c => c.holds(request.relay)).length } satisfies CheckResult)
        break
      case 'stop':
        await Promise.all(clients.map(async c => Promise.resolve(c.node.stop()).catch(() => {})))
        process.exit(0)
    }
  })()
})
// The parent gone (a crash, Ctrl-C): nothing to hold the reservations for.
process.on('disconnect', () => process.exit(0))
