#!/usr/bin/env node
// A UDP echo server for the walk-through: sends every datagram back to its sender.
// Usage: node scripts/udp-echo-server.mjs [PORT] [HOST]
import { createSocket } from 'node:dgram'
import { isIPv6 } from 'node:net'

const port = Number(process.argv[2] ?? 7053)
const host = process.argv[3] ?? '127.0.0.1'
const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4')
socket.on('message', (msg, from) => socket.send(msg, from.port, from.address))
socket.bind(port, host, () => {
  console.log(`udp echo server listening on ${host}:${socket.address().port}`)
})
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0))
