#!/usr/bin/env node
// Real-peer echo client: npm @mtcute/node through an MTProxy.
//
// Setup once: (cd tests/peers && npm ci --ignore-scripts --no-audit --no-fund)
// Usage:
//   node tests/peers/mtcute_echo.mjs --host 127.0.0.1 --port 4443 \
//       --secret ee0123456789abcdeffedcba9876543210<hex(domain)> --dc 2 \
//       [--sizes 8,512,1048576 | --count 50 [--max-size 65536]] \
//       [--seed 1] [--timeout 30] [--verbose]
//
// Uses mtcute's own MtProxyTcpTransport at transport level, the way
// @mtcute/core's PersistentConnection does, without a TelegramClient or any
// login: transport.connect() (TCP; for an 'ee' secret also mtcute's fake-TLS
// handshake, which verifies the ServerHello HMAC and throws if it is wrong),
// then the transport's packet codec (fake-TLS records over obfuscated2 over
// padded intermediate for 'ee'; padded intermediate for 'dd'; intermediate
// for a bare 16-byte key) driven by @fuman/io FramedReader/FramedWriter.
// The proxy must lead to a fake DC that echoes every byte the client sends;
// each packet is sent, then its echo awaited (no pipelining, so TCP
// backpressure cannot deadlock), and compared.
//
// mtcute quirks this harness accounts for: its padded-intermediate decoder
// returns the payload *with* the 0..15 padding bytes (the echo carries the
// client's own padding), so a padded echo passes when it starts with the sent
// bytes and is at most 15 bytes longer; its intermediate decoder treats a
// frame of length 4 as a transport error, so sizes must be >= 8.
// --dc is the signed DC index mtcute writes into the init (negative = media,
// >= 10000 = test DC).
//
// Output: one JSON line on stdout, {"ok":true,...}; exit 0. On failure
// {"ok":false,"error":...}; exit 1 (handshake rejected, echo mismatch,
// timeout, closed) or 2 (could not connect / bad arguments).
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

import { FramedReader, FramedWriter } from '@fuman/io'
import { MtProxyTcpTransport, NodePlatform } from '@mtcute/node'
import { LogManager, NodeCryptoProvider } from '@mtcute/node/utils.js'

const DEFAULT_SIZES = [8, 12, 16, 60, 64, 124, 252, 256, 504, 508, 512, 1020, 1024, 2048,
  2808, 2812, 2876, 2880, 4096, 8192, 16380, 16384, 65536, 262144, 1048576]

function emit(obj, code) {
  process.stdout.write(JSON.stringify(obj) + '\n', () => process.exit(code))
}

// "--dc -4": node's parseArgs refuses option values that start with '-'.
const argv = process.argv.slice(2).flatMap((x, i, all) =>
  i > 0 && all[i - 1] === '--dc' && /^-\d+$/.test(x) ? [] : x === '--dc' && /^-\d+$/.test(all[i + 1] ?? '') ? [`--dc=${all[i + 1]}`] : [x])
const { values: a } = parseArgs({
  args: argv,
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    secret: { type: 'string' },
    dc: { type: 'string', default: '2' },
    sizes: { type: 'string' },
    count: { type: 'string' },
    'max-size': { type: 'string', default: '65536' },
    seed: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '30' },
    verbose: { type: 'boolean', default: false },
  },
})
const base = {
  client: 'mtcute',
  mtcute_node_version: JSON.parse(readFileSync(new URL('./node_modules/@mtcute/node/package.json', import.meta.url))).version,
}
if (!a.host || !a.port || !a.secret) emit({ ...base, ok: false, error: '--host, --port and --secret are required' }, 2)
else await main()

// Seeded byte stream (SHA-256 in counter mode) for packet contents and sizes.
function drbg(seed) {
  let ctr = 0
  let buf = Buffer.alloc(0)
  return (n) => {
    const parts = [buf]
    let have = buf.length
    while (have < n) {
      const c = Buffer.alloc(8)
      c.writeBigUInt64BE(BigInt(ctr++))
      const d = createHash('sha256').update(`mtcute-echo/${seed}`).update(c).digest()
      parts.push(d)
      have += d.length
    }
    const all = Buffer.concat(parts)
    buf = all.subarray(n)
    return new Uint8Array(all.subarray(0, n))
  }
}

function withTimeout(promise, ms, what) {
  let t
  const timer = new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms) })
  return Promise.race([promise, timer]).finally(() => clearTimeout(t))
}

async function main() {
  const secret = a.secret.toLowerCase()
  const dcIndex = Number.parseInt(a.dc, 10)
  const timeoutMs = Number(a.timeout) * 1000
  const rnd = drbg(a.seed)
  let sizes
  if (a.sizes) sizes = a.sizes.split(',').filter(Boolean).map(Number)
  else if (a.count) {
    const max = Math.max(8, Number(a['max-size']))
    sizes = Array.from({ length: Number(a.count) }, () =>
      8 + 4 * (Buffer.from(rnd(4)).readUInt32LE(0) % ((max - 8) / 4 + 1)))
  } else sizes = DEFAULT_SIZES
  if (sizes.some((n) => !Number.isInteger(n) || n < 8 || n % 4 !== 0)) {
    return emit({ ...base, ok: false, error: 'sizes must be multiples of 4 and >= 8 (mtcute reads a 4-byte frame as a transport error)' }, 2)
  }
  // Padded codecs ('dd', and 'ee' which wraps padded intermediate) echo the
  // client's padding back; plain intermediate is exact.
  const padded = secret.startsWith('dd') || secret.startsWith('ee')
  const info = { ...base, secret_kind: secret.startsWith('ee') ? 'fake_tls' : secret.startsWith('dd') ? 'padded' : 'intermediate', dc: dcIndex }

  const crypto = new NodeCryptoProvider()
  await crypto.initialize()
  const log = new LogManager('echo', new NodePlatform())
  log.level = a.verbose ? 5 : 0
  let transport
  try {
    transport = new MtProxyTcpTransport({ host: a.host, port: Number(a.port), secret })
  } catch (e) {
    return emit({ ...info, ok: false, error: `bad secret: ${e.message}` }, 2)
  }
  transport.setup(crypto, log)
  const abs = Math.abs(dcIndex)
  const dc = { id: abs % 10000, ipAddress: a.host, port: Number(a.port), mediaOnly: dcIndex < 0, testMode: abs >= 10000 }

  const t0 = performance.now()
  let conn
  try {
    conn = await withTimeout(transport.connect(dc), timeoutMs, 'connect/handshake')
  } catch (e) {
    // MtSecurityError = the fake-TLS ServerHello failed mtcute's checks.
    const refused = e && (e.code === 'ECONNREFUSED' || e.code === 'EHOSTUNREACH')
    return emit({ ...info, ok: false, error: `connect failed: ${e?.name}: ${e?.message}` }, refused ? 2 : 1)
  }
  const handshakeMs = performance.now() - t0
  const codec = transport.packetCodec(dc)
  codec.setup(crypto, log)
  const reader = new FramedReader(conn, codec)
  const writer = new FramedWriter(conn, codec)
  let total = 0
  try {
    const tag = await codec.tag() // empty for fake TLS: the init rides in the first record
    if (tag.length) await conn.write(tag)
    for (let i = 0; i < sizes.length; i++) {
      const n = sizes[i]
      const data = rnd(n)
      await withTimeout(writer.write(data), timeoutMs, `send packet ${i}`)
      let got
      try {
        got = await withTimeout(reader.read(), timeoutMs, `echo of packet ${i}`)
      } catch (e) {
        return emit({ ...info, ok: false, error: `${e?.name}: ${e?.message}`, packet_index: i, size: n, packets_ok: i }, 1)
      }
      if (got === null) return emit({ ...info, ok: false, error: 'connection closed', packet_index: i, size: n, packets_ok: i }, 1)
      const extra = got.length - n
      const okLen = padded ? extra >= 0 && extra <= 15 : extra === 0
      const prefix = Buffer.from(got.subarray(0, n))
      if (!okLen || !prefix.equals(Buffer.from(data))) {
        let first = 0
        while (first < Math.min(n, got.length) && got[first] === data[first]) first++
        return emit({ ...info, ok: false, error: 'echo mismatch', packet_index: i, size: n, got_size: got.length, first_diff: first, packets_ok: i }, 1)
      }
      total += n
    }
  } catch (e) {
    return emit({ ...info, ok: false, error: `${e?.name}: ${e?.message}` }, 1)
  } finally {
    try { conn.close() } catch {}
  }
  emit({ ...info, ok: true, packets: sizes.length, bytes_each_way: total, max_size: Math.max(...sizes),
    handshake_ms: Math.round(handshakeMs), seconds: Math.round(performance.now() - t0) / 1000 }, 0)
}
