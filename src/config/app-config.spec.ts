import { ConfigError, loadConfig } from './app-config';

describe('loadConfig', () => {
  it('defaults to port 3000 on the embedded database', () => {
    expect(loadConfig({})).toMatchObject({
      port: 3000,
      databaseUrl: undefined,
      pgliteDir: './.data/pglite',
      databasePoolSize: 10,
      nodeEnv: 'development',
    });
  });

  it('reads a PostgreSQL URL and a pool size', () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://u:p@db:5432/app', DATABASE_POOL_SIZE: '25' });
    expect(config).toMatchObject({ databaseUrl: 'postgresql://u:p@db:5432/app', databasePoolSize: 25 });
  });

  it('bounds exports: a 30 s stall cut-off, 2 per workspace and 8 per process by default', () => {
    expect(loadConfig({})).toMatchObject({ exportStallSeconds: 30, exportsPerWorkspace: 2, exportsPerProcess: 8 });
    expect(
      loadConfig({ AUDIT_EXPORT_STALL_SECONDS: '5', AUDIT_EXPORTS_PER_WORKSPACE: '1', AUDIT_EXPORTS_PER_PROCESS: '3' }),
    ).toMatchObject({ exportStallSeconds: 5, exportsPerWorkspace: 1, exportsPerProcess: 3 });
  });

  it.each([
    [
      { AUDIT_EXPORT_STALL_SECONDS: '0' },
      /AUDIT_EXPORT_STALL_SECONDS="0" is invalid: expected a whole number from 1 to 3600/,
    ],
    [{ AUDIT_EXPORTS_PER_WORKSPACE: 'many' }, /AUDIT_EXPORTS_PER_WORKSPACE="many" is invalid/],
    [{ AUDIT_EXPORTS_PER_PROCESS: '-1' }, /AUDIT_EXPORTS_PER_PROCESS="-1" is invalid/],
    [{ PORT: 'eighty' }, /PORT="eighty" is invalid: expected a whole number from 1 to 65535/],
    [{ PORT: '70000' }, /PORT="70000"/],
    [{ DATABASE_POOL_SIZE: '0' }, /DATABASE_POOL_SIZE="0" is invalid/],
    [{ DATABASE_URL: 'mysql://x@y/z' }, /DATABASE_URL has protocol "mysql:": expected postgresql:\/\//],
    [{ DATABASE_URL: 'not a url' }, /DATABASE_URL is not a URL/],
    [{ NODE_ENV: 'staging' }, /NODE_ENV="staging" is invalid: expected one of development, test, production/],
    [{ LOG_LEVEL: 'verbose' }, /LOG_LEVEL="verbose" is invalid: expected one of warn, log, debug/],
    [{ SEED_DEMO: 'yes' }, /SEED_DEMO="yes" is invalid: expected one of true, false/],
  ])('rejects %j naming the variable and what it accepts', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
