// The GL-S20 documentation's login demo, unchanged in its hashing, run against a server.
// Usage: node login.mjs BASE_URL PASSWORD  → prints {"init":..,"login":..,"info":..} as JSON.
import CryptoJS from 'crypto-js'

const [base, password] = process.argv.slice(2)

async function call(method, path, body, token) {
  const headers = { 'Content-Type': 'application/json' }
  if (token) headers.Token = token
  const response = await fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return response.json()
}

const check = await call('GET', '/ui/check_initialized')
let init = null
if (!check.result.initialized) {
  init = await call('POST', '/ui/set_init', { lang: 'en', password })
}

// Step 1: challenge.
const challenge = await call('GET', '/ui/challenge')
const { salt, nonce } = challenge.result

// Step 2: the documented demo.
const hs256 = CryptoJS.HmacSHA256(password, salt)
const base64 = CryptoJS.enc.Base64.stringify(hs256)
const str = `root:${base64}:${nonce}`
const md5 = CryptoJS.MD5(str).toString()

// Step 3: login, then use the sid as the Token header.
const login = await call('POST', '/ui/login', { username: 'root', hash: md5 })
const info = await call('GET', '/sys/get_info', undefined, login.result && login.result.sid)
const replay = await call('POST', '/ui/login', { username: 'root', hash: md5 })
console.log(JSON.stringify({ alg: challenge.result.alg, init, login, info, replay }))
