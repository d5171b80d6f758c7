// Independent-implementation vectors from npm @mtcute/node (fake TLS, 'ee').
//
// Usage (needs tests/peers/node_modules: `npm ci --ignore-scripts` there):
//   node tests/vectors/gen_mtcute.mjs > tests/vectors/mtcute.json
//
// It drives mtcute's own MtProxyTcpTransport code paths with an in-memory
// connection: _handleConnectFakeTls (ClientHello generation, ServerHello
// HMAC check, client CCS), then the transport's packet codec
// (FakeTlsPacketCodec over ObfuscatedPacketCodec over
// PaddedIntermediatePacketCodec) for the data phase. Only randomness and the
// clock are replaced: the crypto provider's randomFill, Math.random (used for
// the padding length) and Date.now, so the output is reproducible.
// The ServerHello this script answers with is built from protocol.md §5; it
// is recorded because mtcute accepted it. Server->client ciphertext is made
// with a twin of mtcute's own decryptor (same key/IV, captured by wrapping
// createAesCtr), then decoded through mtcute's codec. Field meanings:
// tests/vectors/README.md.
import { createHash, createHmac, createCipheriv } from 'node:crypto'
import { fileURLToPath, pathToFileURL } from 'node:url'
import path from 'node:path'
import { readFileSync } from 'node:fs'

const here = path.dirname(fileURLToPath(import.meta.url))
const peers = path.join(here, '..', 'peers')
// ESM entry points of the packages installed under tests/peers (this file
// lives outside that package, so bare specifiers would not resolve).
const load = (rel) => import(pathToFileURL(path.join(peers, 'node_modules', rel)).href)
const mt = await load('@mtcute/node/index.js')
const mtu = await load('@mtcute/node/utils.js')
const { Bytes } = await load('@fuman/io/index.js')

const SEED = 'mtwarden-mtcute-vectors-v1'
const KEY = '0123456789abcdeffedcba9876543210'
const NOW_MS = 1700000000123 // mocked Date.now(); hello time = floor(NOW_MS/1000)

// SHA-256 counter-mode stream keyed by a label: deterministic "randomness".
class Drbg {
  constructor(label) { this.label = `${SEED}/${label}`; this.ctr = 0; this.buf = Buffer.alloc(0) }
  take(n) {
    while (this.buf.length < n) {
      const c = Buffer.alloc(8); c.writeBigUInt64BE(BigInt(this.ctr++))
      this.buf = Buffer.concat([this.buf, createHash('sha256').update(this.label).update(c).digest()])
    }
    const out = this.buf.subarray(0, n); this.buf = this.buf.subarray(n); return out
  }
}
const payload = (label, n) => new Uint8Array(new Drbg(`payload/${label}/${n}`).take(n))
const hex = (u8) => Buffer.from(u8).toString('hex')

// mtcute's Node crypto provider with deterministic randomness and a spy on
// AES-CTR creation (to twin the decryptor and record the encryptor's input).
class DetCrypto extends mtu.NodeCryptoProvider {
  constructor(drbg) { super(); this.drbg = drbg; this.ctrs = []; this.encInputs = [] }
  randomFill(buf) { buf.set(this.drbg.take(buf.length)) }
  createAesCtr(key, iv, isEncryptor) {
    const inner = super.createAesCtr(key, iv, isEncryptor)
    const rec = { key: Buffer.from(key), iv: Buffer.from(iv), isEncryptor }
    this.ctrs.push(rec)
    const self = this
    return {
      process(data) {
        if (isEncryptor) self.encInputs.push(Buffer.from(data))
        return inner.process(data)
      },
    }
  }
}

// ServerHello ‖ CCS ‖ ApplicationData per protocol.md §5, HMAC'd with K.
function serverHello(clientHello, key, drbg) {
  const clientRandom = clientHello.subarray(11, 43)
  const sidLen = clientHello[43]
  const sid = clientHello.subarray(44, 44 + sidLen)
  const sh = Buffer.concat([
    Buffer.from('160303007a0200007603 03'.replace(/ /g, ''), 'hex'),
    Buffer.alloc(32),
    Buffer.from([sidLen]), sid,
    Buffer.from('1301' + '00' + '002e' + '00330024001d0020', 'hex'),
    drbg.take(32),
    Buffer.from('002b00020304', 'hex'),
  ])
  const appLen = 2500 + (drbg.take(2).readUInt16BE(0) % 1000)
  const app = Buffer.concat([Buffer.from([0x17, 3, 3, appLen >> 8, appLen & 0xff]), drbg.take(appLen)])
  const resp = Buffer.concat([sh, Buffer.from('140303000101', 'hex'), app])
  const mac = createHmac('sha256', key).update(clientRandom).update(resp).digest()
  mac.copy(resp, 11)
  return resp
}

// In-memory duplex: records writes, answers the ClientHello once it arrives.
class MemConn {
  constructor(key, drbg) { this.key = key; this.drbg = drbg; this.writes = []; this.rx = Buffer.alloc(0) }
  async write(b) {
    this.writes.push(Buffer.from(b))
    if (this.writes.length === 1) {
      this.serverHello = serverHello(Buffer.from(b), this.key, this.drbg)
      this.rx = Buffer.concat([this.rx, this.serverHello])
    }
  }
  async read(into) {
    const n = Math.min(into.length, this.rx.length)
    into.set(this.rx.subarray(0, n)); this.rx = this.rx.subarray(n); return n
  }
}

// Data-phase framing toward the client, from protocol.md §4-5: padded
// intermediate (u32 LE length incl. padding), one TLS record per frame.
function s2cFrame(p, pad) {
  const len = Buffer.alloc(4); len.writeUInt32LE(p.length + pad.length)
  return Buffer.concat([len, p, pad])
}
function tlsRecord(body) { return Buffer.concat([Buffer.from([0x17, 3, 3, body.length >> 8, body.length & 0xff]), body]) }

const C2S_SIZES = [8, 100, 4000, 12]   // 4000 spans two records (mtcute caps at 2878)
const S2C_SIZES = [8, 512, 3000]
const S2C_PADS = ['', 'a5', '5a5a5a5a5a5a5a']

async function makeCase(name, domain, dc) {
  const drbg = new Drbg(`case/${name}`)
  const mrnd = new Drbg(`math/${name}`)
  Math.random = () => mrnd.take(4).readUInt32BE(0) / 2 ** 32
  Date.now = () => NOW_MS

  const secret = 'ee' + KEY + Buffer.from(domain).toString('hex')
  const crypto = new DetCrypto(drbg)
  await crypto.initialize()
  const log = new mtu.LogManager('vectors', new mt.NodePlatform())
  log.level = 0
  const transport = new mt.MtProxyTcpTransport({ host: '127.0.0.1', port: 443, secret })
  transport.setup(crypto, log)

  const conn = new MemConn(Buffer.from(KEY, 'hex'), new Drbg(`server/${name}`))
  await transport._handleConnectFakeTls(conn) // throws if the ServerHello HMAC is rejected
  const [hello, ccs] = conn.writes
  if (conn.writes.length !== 2) throw new Error('unexpected handshake writes')

  const dcInfo = { id: Math.abs(dc) % 10000, ipAddress: '127.0.0.1', port: 443,
    mediaOnly: dc < 0, testMode: Math.abs(dc) > 10000 }
  const codec = transport.packetCodec(dcInfo)
  codec.setup(crypto, log)
  const tag = await codec.tag()
  if (tag.length !== 0) throw new Error('fake-TLS codec should defer the init')

  const c2sPayloads = C2S_SIZES.map((n) => payload(name, n))
  const out = Bytes.alloc()
  for (const p of c2sPayloads) await codec.encode(p, out)
  const c2sRecords = Buffer.from(out.result())
  // encInputs[0] is the 64-byte init; the rest are the padded frames.
  const c2sPlain = Buffer.concat(crypto.encInputs.slice(1))

  const dec = crypto.ctrs.find((c) => !c.isEncryptor)
  const twin = createCipheriv('aes-256-ctr', dec.key, dec.iv)
  const s2cPayloads = S2C_SIZES.map((n) => payload(`${name}/s2c`, n))
  const s2cPlainFrames = s2cPayloads.map((p, i) => s2cFrame(Buffer.from(p), Buffer.from(S2C_PADS[i], 'hex')))
  const s2cPlain = Buffer.concat(s2cPlainFrames)
  const s2cCipher = twin.update(s2cPlain)
  const s2cRecords = []
  let off = 0
  for (const f of s2cPlainFrames) { s2cRecords.push(tlsRecord(s2cCipher.subarray(off, off + f.length))); off += f.length }
  const s2c = Buffer.concat(s2cRecords)
  const reader = Bytes.from(new Uint8Array(s2c))
  const decoded = []
  for (;;) {
    const m = await codec.decode(reader, false)
    if (!m) break
    decoded.push(Buffer.from(m))
  }
  s2cPayloads.forEach((p, i) => {
    const want = Buffer.concat([Buffer.from(p), Buffer.from(S2C_PADS[i], 'hex')])
    if (!decoded[i] || !decoded[i].equals(want)) throw new Error(`mtcute decoded s2c frame ${i} differently`)
  })
  if (decoded.length !== s2cPayloads.length) throw new Error('mtcute decoded an extra s2c frame')

  return {
    name, domain, secret, dc,
    date_now_ms: NOW_MS, now: Math.floor(NOW_MS / 1000),
    client_hello: hex(hello),
    client_random: hex(hello.subarray(11, 43)),
    server_hello: hex(conn.serverHello),
    client_ccs: hex(ccs),
    expected_tag: 'dddddddd',
    c2s_payloads: c2sPayloads.map(hex),
    c2s_records: hex(c2sRecords),
    c2s_plain: hex(c2sPlain),
    s2c_payloads: s2cPayloads.map(hex),
    s2c_pads: S2C_PADS,
    s2c_plain: hex(s2cPlain),
    s2c_records: hex(s2c),
  }
}

const longDomain = 'a-rather-long-label-used-to-push-the-sni-length-0123456789abcdef.' +
  'second-label-for-length.cdn-edge.example-hosting.net'
const specs = [
  ['example_com_dc2', 'example.com', 2],
  ['google_media_dc4', 'www.google.com', -4],
  ['googleapis_dc1', 'storage.googleapis.com', 1],
  ['long_domain_test_dc10002', longDomain, 10002],
]
const realNow = Date.now
const realRandom = Math.random
const cases = []
for (const s of specs) cases.push(await makeCase(...s))
Date.now = realNow
Math.random = realRandom

const pkg = JSON.parse(readFileSync(path.join(peers, 'node_modules/@mtcute/node/package.json'), 'utf8'))
process.stdout.write(JSON.stringify({
  generator: 'tests/vectors/gen_mtcute.mjs',
  mtcute_node_version: pkg.version,
  node: process.version,
  key: KEY,
  cases,
}, null, 1) + '\n')
