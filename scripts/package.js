'use strict'
// `npm run package`: writes to dist/ the tarballs `npm publish` would send from this machine: the
// main package, with every napi.targets platform package as an optionalDependency at its version
// (as `napi prepublish` sets them), and the platform package of the addon built here (release).
//   node scripts/package.js                     release build for this machine, then pack
//   node scripts/package.js --target <triple>   release build for <triple> (its toolchain set up by the caller)
//   node scripts/package.js --prebuilt          no build: pack the binding.js, binding.d.ts and
//                                               chaaskit-queue.<platform>.node in the root (CI artifacts)
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const DIST = path.join(ROOT, 'dist')
const STAGE = path.join(ROOT, 'target', 'package')

/** `npm pack` of `dir` into dist/: `{ filename, size, unpackedSize, files }` (npm's --json fields). */
function npmPack(dir) {
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', DIST], { cwd: dir, encoding: 'utf8', shell: process.platform === 'win32' })
  const [info] = JSON.parse(out)
  return { filename: info.filename, size: info.size, unpackedSize: info.unpackedSize, files: info.files.map((f) => f.path) }
}

function copyInto(stage, rel, from = ROOT) {
  fs.cpSync(path.join(from, rel), path.join(stage, rel), { recursive: true })
}

async function main(argv) {
  const { readNapiConfig } = require('@napi-rs/cli')
  const { packageJson: pkg, targets, binaryName } = await readNapiConfig(path.join(ROOT, 'package.json'))
  const prebuilt = argv.includes('--prebuilt')
  const t = argv.indexOf('--target')
  const target = t >= 0 ? argv[t + 1] : undefined
  if (t >= 0 && !targets.some((x) => x.triple === target)) {
    throw new Error(`--target ${target} is not in package.json napi.targets (${targets.map((x) => x.triple).join(', ')})`)
  }

  const built = path.join(STAGE, 'build')
  fs.rmSync(STAGE, { recursive: true, force: true })
  fs.mkdirSync(built, { recursive: true })
  fs.mkdirSync(DIST, { recursive: true })
  let from = built
  if (prebuilt) {
    from = ROOT
  } else {
    const args = ['--release', '--output-dir', path.relative(ROOT, built)]
    if (target) args.push('--target', target)
    execFileSync(process.execPath, [path.join(__dirname, 'ensure-built.js'), ...args], { cwd: ROOT, stdio: 'inherit' })
  }

  const packed = []
  // The platform packages: npm/<platform>/ (package.json, README.md) plus the addon.
  const addons = fs.readdirSync(from).filter((f) => f.startsWith(`${binaryName}.`) && f.endsWith('.node'))
  if (addons.length === 0) throw new Error(`no ${binaryName}.<platform>.node in ${from}`)
  for (const addon of addons) {
    const abi = addon.slice(binaryName.length + 1, -'.node'.length)
    if (!targets.some((x) => x.platformArchABI === abi)) throw new Error(`${addon}: ${abi} is not a platform of package.json napi.targets`)
    const stage = path.join(STAGE, 'npm', abi)
    for (const f of ['package.json', 'README.md']) copyInto(stage, f, path.join(ROOT, 'npm', abi))
    copyInto(stage, addon, from)
    const platformPkg = JSON.parse(fs.readFileSync(path.join(stage, 'package.json'), 'utf8'))
    if (platformPkg.version !== pkg.version) {
      throw new Error(`npm/${abi}/package.json has version ${platformPkg.version}, the main package ${pkg.version} (run npm version / napi version)`)
    }
    packed.push(npmPack(stage))
  }

  // The main package: its `files`, binding.js/binding.d.ts of this build, and the optional
  // dependencies napi prepublish would write.
  const stage = path.join(STAGE, 'main')
  for (const f of pkg.files) {
    const generated = f === 'binding.js' || f === 'binding.d.ts'
    copyInto(stage, f, generated ? from : ROOT)
  }
  copyInto(stage, 'README.md')
  const optionalDependencies = {}
  for (const x of targets) optionalDependencies[`${pkg.name}-${x.platformArchABI}`] = pkg.version
  fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify({ ...pkg, optionalDependencies }, null, 2)}\n`)
  packed.unshift(npmPack(stage))

  for (const p of packed) {
    console.log(`dist/${p.filename}: ${(p.size / 1024).toFixed(1)} kB packed, ${(p.unpackedSize / 1024).toFixed(1)} kB unpacked, ${p.files.length} files`)
  }
  return packed
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(`npm run package: ${e.message}`)
    process.exit(1)
  })
}

module.exports = { DIST }
