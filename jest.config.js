/**
 * Every test, unit and end-to-end, runs against real PostgreSQL (see test/global-setup.ts).
 * PGlite and the generated Prisma client load WASM through import(), which Jest runs only with
 * --experimental-vm-modules (set by `npm test`); tests themselves compile to CommonJS.
 */
module.exports = {
  moduleFileExtensions: ['js', 'json', 'ts'],
  roots: ['<rootDir>/src', '<rootDir>/test'],
  testRegex: '.*\\.(spec|e2e-spec)\\.ts$',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.jest.json' }] },
  testEnvironment: 'node',
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  maxWorkers: 2,
  testTimeout: 60_000,
};
