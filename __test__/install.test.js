// The install path users take: the tarballs of `npm run package` (dist/; made first when missing
// or older than the files they pack) installed into a new app with cargo and rustc off the PATH.
// A job runs on the installed platform package's addon, `queue-worker --help` prints, a TypeScript
// config without tsx fails with a message naming tsx, and the types spec compiles with --strict
// against the installed declarations. The tarballs carry no Rust sources and no test-only code.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const zlib = require('node:zlib')
const { parseTriple } = require('@napi-rs/cli')

const ROOT = path.join(__dirname, '..')
const { DIST } = require('../scripts/package.js')
const pkg = require('../package.json')
const WIN = process.platform === 'win32'

/** This machine's platform package suffix, as napi names them (linux-x64-gnu, darwin-arm64, …). */
function hostPlatform() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const musl = !process.report.getReport().header.glibcVersionRuntime
    return `linux-${arch}-${musl ? 'musl' : 'gnu'}`
  }
  return platform === 'win32' ? `win32-${arch}-msvc` : `${platform}-${arch}`
}
const PLATFORM = hostPlatform()
const BINARY = `${pkg.napi.binaryName}.${PLATFORM}.node`
const MAIN_TGZ = path.join(DIST, `${pkg.name.replace('@', '').replace('/', '-')}-${pkg.version}.tgz`)
const PLATFORM_TGZ = path.join(DIST, `${pkg.name.replace('@', '').replace('/', '-')}-${PLATFORM}-${pkg.version}.tgz`)

/** The regular files of a .tgz (npm's layout: every path under `package/`), name -> contents. */
function tarFiles(file) {
  const buf = zlib.gunzipSync(fs.readFileSync(file))
  const files = new Map()
  for (let off = 0; off + 512 <= buf.length; ) {
    const h = buf.subarray(off, off + 512)
    if (h.every((b) => b === 0)) break
    const field = (from, to) => h.subarray(from, to).toString('utf8').split('\0')[0]
    const name = [field(345, 500), field(0, 100)].filter(Boolean).join('/')
    const size = parseInt(field(124, 136).trim() || '0', 8)
    if (['0', ''].includes(field(156, 157))) files.set(name.replace(/^package\//, ''), buf.subarray(off + 512, off + 512 + size))
    off += 512 + Math.ceil(size / 512) * 512
  }
  return files
}

/** The newest modification time under `rel` (a file or a directory tree), 0 when absent. */
function newest(rel) {
  const file = path.join(ROOT, rel)
  if (!fs.existsSync(file)) return 0
  const st = fs.statSync(file)
  if (!st.isDirectory()) return st.mtimeMs
  return Math.max(0, ...fs.readdirSync(file).map((f) => newest(path.join(rel, f))))
}

/** dist/ is current when both tarballs exist and neither the files the main one packs (but
 * binding.js/binding.d.ts, which every build rewrites) nor the Rust sources changed since. */
function distIsCurrent() {
  if (!fs.existsSync(MAIN_TGZ) || !fs.existsSync(PLATFORM_TGZ)) return false
  const packedAt = Math.min(fs.statSync(MAIN_TGZ).mtimeMs, fs.statSync(PLATFORM_TGZ).mtimeMs)
  const generated = ['binding.js', 'binding.d.ts']
  const sources = [...tarFiles(MAIN_TGZ).keys()].filter((f) => !generated.includes(f))
  return [...sources, 'src', 'crates', 'Cargo.toml', 'Cargo.lock', 'build.rs'].every((f) => newest(f) <= packedAt)
}

/** The PATH without any directory holding cargo or rustc, node's own directory linked in first. */
function pathWithoutRust(tmp) {
  const exe = (dir, name) => (WIN ? ['.exe', '.cmd', ''] : ['']).some((ext) => fs.existsSync(path.join(dir, name + ext)))
  const rust = (dir) => exe(dir, 'cargo') || exe(dir, 'rustc')
  const dirs = (process.env.PATH || '').split(path.delimiter).filter((d) => d && !rust(d))
  let nodeDir = path.dirname(process.execPath)
  if (rust(nodeDir)) {
    nodeDir = path.join(tmp, 'node-bin')
    fs.mkdirSync(nodeDir)
    fs.symlinkSync(process.execPath, path.join(nodeDir, path.basename(process.execPath)))
  }
  return [nodeDir, ...dirs].join(path.delimiter)
}

/** npm's own script (npm-cli.js), run with this node. */
function npmCli() {
  const onPath = (process.env.PATH || '').split(path.delimiter).map((d) => path.join(d, 'npm')).find((f) => fs.existsSync(f))
  const candidates = [
    process.env.npm_execpath,
    onPath && fs.realpathSync(onPath),
    path.join(path.dirname(process.execPath), 'node_modules', 'npm', 'bin', 'npm-cli.js'),
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'),
  ]
  const cli = candidates.find((c) => c && /npm-cli\.js$/.test(c) && fs.existsSync(c))
  if (!cli) throw new Error(`npm-cli.js not found (looked at ${candidates.filter(Boolean).join(', ')})`)
  return cli
}

function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts })
  if (r.error) throw r.error
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, output: `${r.stdout}${r.stderr}` }
}

test('dist/ holds the main and this platform\'s tarballs, with only what the runtime needs', { timeout: 40 * 60_000 }, (t) => {
  if (!distIsCurrent()) {
    t.diagnostic('dist/ is missing or older than the sources: npm run package (release build)')
    const r = run(process.execPath, [path.join(ROOT, 'scripts', 'package.js')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    assert.equal(r.code, 0, `npm run package failed:\n${r.stdout}`)
  }
  const forbidden = /(^|\/)(Cargo\.(toml|lock)|build\.rs|package-lock\.json)$|\.rs$|(^|\/)(__test__|tests?|crates|src|bench|examples|target|scripts|npm|docs)\/|\.(test|spec)\.[cm]?[jt]s$/
  for (const tgz of [MAIN_TGZ, PLATFORM_TGZ]) {
    const files = tarFiles(tgz)
    t.diagnostic(`${path.basename(tgz)}: ${(fs.statSync(tgz).size / 1024).toFixed(1)} kB packed, ${([...files.values()].reduce((n, b) => n + b.length, 0) / 1024).toFixed(1)} kB unpacked, ${files.size} files`)
    const bad = [...files.keys()].filter((f) => forbidden.test(f))
    assert.deepEqual(bad, [], `${path.basename(tgz)} carries sources or test-only files`)
  }

  const main = tarFiles(MAIN_TGZ)
  for (const f of ['package.json', 'index.js', 'index.d.ts', 'binding.js', 'otel.js', 'bin/queue-worker.js', 'dashboard/index.js', 'migrations/postgres/0001_scheduler.sql']) {
    assert.ok(main.has(f), `the main tarball has ${f}`)
  }
  assert.deepEqual([...main.keys()].filter((f) => f.endsWith('.node')), [], 'the main tarball carries no addon')
  const manifest = JSON.parse(main.get('package.json').toString('utf8'))
  const expected = {}
  for (const triple of pkg.napi.targets) expected[`${pkg.name}-${parseTriple(triple).platformArchABI}`] = pkg.version
  assert.deepEqual(manifest.optionalDependencies, expected)
  assert.equal(manifest.dependencies, undefined, 'the runtime needs no dependency')
  assert.equal(manifest.peerDependenciesMeta.tsx.optional, true)

  const platform = tarFiles(PLATFORM_TGZ)
  assert.deepEqual([...platform.keys()].sort(), ['README.md', BINARY, 'package.json'].sort())
  const platformManifest = JSON.parse(platform.get('package.json').toString('utf8'))
  assert.equal(platformManifest.name, `${pkg.name}-${PLATFORM}`)
  assert.equal(platformManifest.version, pkg.version)
})

test('installed from the tarballs without Rust: a job runs, the CLI answers, the types compile', { timeout: 10 * 60_000 }, async (t) => {
  assert.ok(fs.existsSync(MAIN_TGZ) && fs.existsSync(PLATFORM_TGZ), 'dist/ has the tarballs (the test above)')
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-install-'))
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }))
  const app = path.join(tmp, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'install-test-app', version: '1.0.0', private: true }))
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'NAPI_RS_NATIVE_LIBRARY_PATH'))
  env.PATH = pathWithoutRust(tmp)
  for (const tool of ['cargo', 'rustc']) {
    const found = env.PATH.split(path.delimiter).find((d) => fs.existsSync(path.join(d, tool)) || fs.existsSync(path.join(d, `${tool}.exe`)))
    assert.equal(found, undefined, `${tool} is off the PATH`)
  }
  const opts = { cwd: app, env }

  // The registry packages come from npm's cache when it has them (CI's `npm ci` filled it).
  const devVersion = (name) => require(path.join(ROOT, 'node_modules', name, 'package.json')).version
  const install = run(process.execPath, [npmCli(), 'install', '--prefer-offline', '--no-audit', '--no-fund', MAIN_TGZ, PLATFORM_TGZ,
    `typescript@${devVersion('typescript')}`, `@types/node@${devVersion('@types/node')}`], opts)
  assert.equal(install.code, 0, install.output)
  const installed = path.join(app, 'node_modules', ...pkg.name.split('/'))
  assert.deepEqual(fs.readdirSync(installed).filter((f) => f.endsWith('.node')), [], 'the main package has no addon of its own')
  assert.equal(fs.existsSync(path.join(app, 'node_modules', 'tsx')), false, 'tsx (an optional peer) is not installed')

  await t.test('a job runs on the platform package\'s addon', () => {
    fs.writeFileSync(path.join(app, 'run.js'), `
const { Worker, createQueueProvider, registerJobHandler } = require(${JSON.stringify(pkg.name)})
;(async () => {
  const provider = await createQueueProvider({ type: 'memory' })
  registerJobHandler('install:add', async (job) => job.payload.a + job.payload.b)
  const worker = new Worker({ provider })
  const done = new Promise((resolve, reject) => {
    worker.on('completed', (job, result) => resolve({ id: job.id, result }))
    worker.on('failed', (job, error) => reject(error))
  })
  const running = worker.start() // resolves once the worker has stopped
  const job = await provider.enqueue('install:add', { a: 2, b: 3 })
  const completed = await done
  await worker.stop()
  await running
  await provider.close()
  const addons = Object.keys(require.cache).filter((f) => f.endsWith('.node'))
  console.log(JSON.stringify({ enqueued: job.id, ...completed, addons }))
})().catch((e) => { console.error(e); process.exit(1) })
`)
    const r = run(process.execPath, ['run.js'], opts)
    assert.equal(r.code, 0, r.output)
    const out = JSON.parse(r.stdout.trim().split('\n').pop())
    assert.equal(out.result, 5)
    assert.equal(out.id, out.enqueued)
    const addon = fs.realpathSync(path.join(app, 'node_modules', `${pkg.name}-${PLATFORM}`, BINARY))
    assert.deepEqual(out.addons.map((f) => fs.realpathSync(f)), [addon])
  })

  await t.test('queue-worker --help', () => {
    const bin = path.join(app, 'node_modules', '.bin', WIN ? 'queue-worker.cmd' : 'queue-worker')
    const r = run(bin, ['--help'], { ...opts, shell: WIN })
    assert.equal(r.code, 0, r.output)
    assert.match(r.stdout, /^Usage: queue-worker \[start\] \[options\]/)
  })

  await t.test('without tsx a JavaScript config loads and a TypeScript one says to install tsx', () => {
    const cli = path.join(installed, 'bin', 'queue-worker.js')
    fs.mkdirSync(path.join(app, 'config'))
    const queue = `{ queue: { enabled: true, providerConfig: { type: 'memory' }, scheduler: { enabled: true, databaseUrl: 'sqlite:queue.db' } } }`
    fs.writeFileSync(path.join(app, 'config', 'app.config.js'), `module.exports = { config: ${queue} }\n`)
    let r = run(process.execPath, [cli, 'migrate', '--config', 'config/app.config.js'], opts)
    assert.equal(r.code, 0, r.output)
    assert.match(r.stdout, /scheduler tables ready/)
    // An enum: TypeScript that Node's own type stripping (22.18+) cannot load either.
    fs.writeFileSync(path.join(app, 'config', 'app.config.ts'), `enum Provider { Memory = 'memory' }\nexport const config = ${queue.replace("'memory'", 'Provider.Memory')}\n`)
    r = run(process.execPath, [cli, 'migrate', '--config', 'config/app.config.ts'], opts)
    assert.notEqual(r.code, 0, r.output)
    assert.match(r.stderr, /app\.config\.ts \(a TypeScript config needs tsx, which is not installed: npm install --save-dev tsx/)
  })

  await t.test('the types spec compiles with --strict against the installed declarations', () => {
    const spec = fs.readFileSync(path.join(__dirname, 'types', 'spec.ts'), 'utf8').replaceAll("from '@chaaskit/server'", `from '${pkg.name}'`)
    fs.writeFileSync(path.join(app, 'spec.ts'), spec)
    const compilerOptions = { target: 'ES2022', module: 'commonjs', moduleResolution: 'node', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] }
    fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['spec.ts'] }))
    const r = run(process.execPath, [path.join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app, '--listFiles'], opts)
    assert.equal(r.code, 0, r.output)
    const dts = fs.realpathSync(path.join(installed, 'index.d.ts'))
    const listed = r.stdout.split('\n').map((l) => l.trim()).filter((f) => f && fs.existsSync(f)).map((f) => fs.realpathSync(f))
    assert.ok(listed.includes(dts), `tsc read the installed index.d.ts:\n${r.stdout}`)
    // The spec's @ts-expect-error lines hold only while the types are live (not `any`).
    assert.ok((spec.match(/@ts-expect-error/g) || []).length >= 5)
  })
})
