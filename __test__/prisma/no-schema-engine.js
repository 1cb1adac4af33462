#!/usr/bin/env node
// Stands in for Prisma's schema engine, which `prisma generate` fetches from
// binaries.prisma.sh (outside the package registries) although generating the Rust-free
// client never runs it. The test's tables are made with node-postgres instead.
console.error('the Prisma schema engine is not installed (only `prisma generate` is used here)')
process.exit(1)
