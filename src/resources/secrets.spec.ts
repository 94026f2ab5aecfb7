import { MASK, maskSecrets, replaceTextSecrets, restoreSecrets } from './secrets';

/** Milliseconds `run` takes, after one warm-up run. */
function elapsed(run: () => unknown): number {
  run();
  const start = performance.now();
  run();
  return performance.now() - start;
}

/** What one text of a config may cost to mask: a resource is masked on every GET and list showing it. */
const BUDGET_MS = 100;

describe('text secrets, in time linear in the text', () => {
  it('masks a config holding "-----BEGIN " and 9,000 `PRIVATE KEY`s without an END line (99 kB) within 100 ms — it took 400 ms, quadratic in the line', () => {
    const text = `-----BEGIN ${'PRIVATE KEY'.repeat(9_000)}`;
    expect({ ms: elapsed(() => maskSecrets({ cert: text })) < BUDGET_MS, masked: maskSecrets({ cert: text }) }).toEqual(
      {
        ms: true,
        masked: { cert: text },
      },
    );
  });

  it('still masks the body of a key whose BEGIN line repeats PRIVATE KEY', () => {
    const line = `-----BEGIN ${'PRIVATE KEY '.repeat(8_000)}-----`;
    const text = `${line}\nMIIEsecret\n-----END PRIVATE KEY-----`;
    expect({ ms: elapsed(() => replaceTextSecrets(text, () => MASK)) < BUDGET_MS, masked: maskSecrets(text) }).toEqual({
      ms: true,
      masked: `${line}${MASK}-----END PRIVATE KEY-----`,
    });
  });

  it('restores the stored secrets of a PATCHed text of 6,600 masked parameters (`token=******** `, 99 kB) within 100 ms — it took 0.6 s, each one looking through all stored ones', () => {
    const stored = Array.from({ length: 6_600 }, (_, i) => `token=s${i}`).join(' ');
    const incoming = Array.from({ length: 6_600 }, () => `token=${MASK}`).join(' ');
    expect({
      ms: elapsed(() => restoreSecrets({ url: incoming }, { url: stored }, 'config')) < BUDGET_MS,
      restored: restoreSecrets({ url: incoming }, { url: stored }, 'config'),
    }).toEqual({ ms: true, restored: { url: stored } });
  });

  it('masks a header line of 20,000 parameters (`Cookie: a=1; …`, 120 kB) and 20,000 header lines (`token:a\\n…`) within 100 ms each, a header line to its end', () => {
    const cookie = `Cookie: ${'a=1; '.repeat(20_000)}\nHost: h`;
    const lines = 'token:a\n'.repeat(20_000);
    expect({
      ms: [cookie, lines].map((text) => elapsed(() => replaceTextSecrets(text, () => MASK)) < BUDGET_MS),
      masked: [maskSecrets(cookie), maskSecrets(lines)],
    }).toEqual({ ms: [true, true], masked: [`Cookie: ${MASK}\nHost: h`, `token:${MASK}\n`.repeat(20_000)] });
  });
});

describe('header lines', () => {
  it('keeps the stored header line for the line sent back masked, and refuses it on another line', () => {
    const stored = 'Cookie: sid=S; theme=dark\r\nHost: h';
    expect({
      masked: maskSecrets(stored),
      kept: restoreSecrets({ h: `Cookie: ${MASK}\r\nHost: h` }, { h: stored }, 'config'),
      moved: (() => {
        try {
          return restoreSecrets({ h: `Cookie: ${MASK}\r\nHost: evil` }, { h: stored }, 'config');
        } catch (error) {
          return (error as Error).constructor.name;
        }
      })(),
    }).toEqual({
      masked: `Cookie: ${MASK}\r\nHost: h`,
      kept: { h: stored },
      moved: 'BadRequestException',
    });
  });
});
