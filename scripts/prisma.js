#!/usr/bin/env node
// Runs the Prisma CLI with PRISMA_SCHEMA_ENGINE_BINARY pointing at an existing file: `generate` runs on
// WASM, but the CLI otherwise tries to download the schema-engine binary, which these machines cannot.
const { spawnSync } = require('node:child_process');

const env = { ...process.env };
env.PRISMA_SCHEMA_ENGINE_BINARY ??= process.execPath;
env.PRISMA_HIDE_UPDATE_MESSAGE ??= '1';
const cli = require.resolve('prisma/build/index.js');
const result = spawnSync(process.execPath, [cli, ...process.argv.slice(2)], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
