#!/usr/bin/env node
// A TCP echo server for the walk-through and the e2e test: echoes every byte and
// half-closes when its client does. Usage: node scripts/echo-server.mjs [PORT] [HOST]
import { createServer } from 'node:net'

const port = Number(process.argv[2] ?? 7000)
const host = process.argv[3] ?? '127.0.0.1'
const server = createServer({ allowHalfOpen: true }, socket => {
  socket.on('error', () => socket.destroy())
  socket.pipe(socket)
})
server.listen(port, host, () => {
  console.log(`echo server listening on ${host}:${server.address().port}`)
})
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0))
