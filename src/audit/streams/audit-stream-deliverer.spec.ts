import { createHmac } from 'node:crypto';
import { toAuditEntry } from '../query/audit-entry';
import { backoffMs, buildBatch, type SealedRow, signBatch } from './audit-stream-deliverer.service';

function row(n: number, size = 10): SealedRow {
  return {
    position: String(n),
    id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    occurred_at: new Date(Date.UTC(2026, 10, 26, 12, 0, n)),
    action: 'updated',
    resource_type: 'segment',
    resource_id: '11111111-1111-4111-8111-111111111111',
    resource_name: 'Segment',
    actor_kind: 'system',
    actor_id: null,
    actor_name: 'seed',
    actor_email: null,
    request_id: null,
    changes: [{ field: 'definition', before: 'x'.repeat(size), after: 'y' }],
  };
}

describe('buildBatch', () => {
  it('renders each row as the API entry, one line each, in order, and ends at the last row', () => {
    const rows = [row(1), row(2), row(3)];
    const batch = buildBatch(rows, 1_048_576)!;
    const lines = batch.body.toString('utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual(rows.map((r) => toAuditEntry(r)));
    expect(batch).toMatchObject({ entries: 3, lastSeq: '3', lastEntryId: rows[2].id });
  });

  it('stops before the body passes the byte cap, and sends one larger entry alone', () => {
    const line = buildBatch([row(1, 1000)], Infinity)!.body.length;
    expect(buildBatch([row(1, 1000), row(2, 1000), row(3, 1000)], 2 * line)).toMatchObject({
      entries: 2,
      lastSeq: '2',
    });
    expect(buildBatch([row(1, 5000), row(2)], 1024)).toMatchObject({ entries: 1, lastSeq: '1' });
    expect(buildBatch([], 1024)).toBeUndefined();
  });
});

describe('signBatch', () => {
  it('is sha256= and the hex HMAC-SHA256 of the exact body', () => {
    const body = Buffer.from('{"id":"a"}\n');
    expect(signBatch(body, 'secret-secret-secret')).toBe(
      `sha256=${createHmac('sha256', 'secret-secret-secret').update(body).digest('hex')}`,
    );
  });
});

describe('backoffMs', () => {
  it('doubles from the first delay up to the cap, each wait 50–100 % of it', () => {
    for (let failures = 0; failures < 40; failures++) {
      const ceiling = Math.min(300_000, 1000 * 2 ** failures);
      for (let i = 0; i < 20; i++) {
        const delay = backoffMs(failures, 1000, 300_000);
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });
});
