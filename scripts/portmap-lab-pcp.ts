// PCP against the lab router (scripts/portmap-lab.sh runs it in the client's namespace, whose
// router's miniupnpd answers NAT-PMP and PCP; the daemon itself prefers NAT-PMP there).
// Maps TCP 4999 with portmap/pcp.ts, prints {"mapped":...}, waits for a line on stdin (the
// lab counts the router's rules meanwhile), deletes it, prints {"deleted":true}.
import { createInterface } from 'node:readline'
import { defaultGateway } from '../packages/node/src/portmap/gateway.ts'
import { pcpClient } from '../packages/node/src/portmap/pcp.ts'

const print = (o: object): void => { process.stdout.write(`${JSON.stringify(o)}\n`) }
try {
  const gateway = await defaultGateway()
  if (gateway == null) throw new Error('no default gateway')
  const client = await pcpClient(gateway, AbortSignal.timeout(3000))
  const request = { protocol: 'tcp' as const, internalPort: 4999, externalPort: 4999, lifetimeS: 600 }
  print({ mapped: await client.map(request, AbortSignal.timeout(3000)) })
  await new Promise(resolve => createInterface({ input: process.stdin }).once('line', resolve))
  await client.unmap(request, AbortSignal.timeout(3000))
  print({ deleted: true })
  process.exit(0)
} catch (err) {
  print({ error: (err as Error).message })
  process.exit(1)
}
