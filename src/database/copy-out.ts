import { Client, escapeLiteral } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { Readable } from 'node:stream';
import type { Prisma } from '../generated/prisma/client';

/** The 11-byte signature, 4-byte flags and 4-byte header-extension length of COPY's binary format. */
const BINARY_HEADER = 19;

/**
 * Inlines the parameters of `sql` as SQL literals: COPY takes no bind parameters. Strings go through
 * node-postgres' `escapeLiteral`; dates as ISO text; arrays as ARRAY[…] of the same. Anything else
 * is refused rather than guessed.
 */
export function inlineSql(sql: Prisma.Sql): string {
  const literal = (value: unknown): string => {
    if (typeof value === 'string') return escapeLiteral(value);
    if (typeof value === 'number' && Number.isFinite(value)) return String(value);
    if (typeof value === 'bigint') return String(value);
    if (value instanceof Date) return escapeLiteral(value.toISOString());
    if (Array.isArray(value)) return `ARRAY[${value.map(literal).join(', ')}]`;
    throw new TypeError(`cannot inline a ${typeof value} into COPY`);
  };
  return sql.text.replace(/\$(\d+)/g, (_, n: string) => literal(sql.values[Number(n) - 1]));
}

/**
 * The rows of `COPY … TO STDOUT (FORMAT binary)`, each as its fields' bytes (PostgreSQL's binary
 * representation: a text field is its UTF-8, a uuid its 16 bytes); one array of rows per network
 * read. Binary, because the text and CSV formats escape backslashes, tabs and newlines in values.
 */
async function* binaryRows(stream: Readable): AsyncGenerator<Buffer[][]> {
  let pending: Buffer | undefined;
  let headerRead = false;
  for await (const data of stream as AsyncIterable<Buffer>) {
    const buffer: Buffer = pending ? Buffer.concat([pending, data]) : data;
    let at = 0;
    if (!headerRead) {
      if (buffer.length < BINARY_HEADER) {
        pending = buffer;
        continue;
      }
      at = BINARY_HEADER + buffer.readUInt32BE(BINARY_HEADER - 4);
      headerRead = true;
    }
    const rows: Buffer[][] = [];
    // Each row: a 16-bit field count (-1 ends the data), then per field a 32-bit length (-1 for
    // NULL, read as empty) and its bytes. A row cut by the end of the read waits for the next one.
    rows: while (buffer.length - at >= 2) {
      const count = buffer.readInt16BE(at);
      if (count < 0) break;
      let end = at + 2;
      const fields: Buffer[] = [];
      for (let i = 0; i < count; i++) {
        if (buffer.length - end < 4) break rows;
        const length = buffer.readInt32BE(end);
        const start = end + 4;
        end = start + Math.max(length, 0);
        if (end > buffer.length) break rows;
        fields.push(buffer.subarray(start, end));
      }
      rows.push(fields);
      at = end;
    }
    pending = at < buffer.length ? Buffer.from(buffer.subarray(at)) : undefined;
    if (rows.length > 0) yield rows;
  }
}

/** A connection of its own for one streamed read: plain queries, and COPY rows. */
export interface CopySession {
  client: Client;
  /** Runs `COPY (query) TO STDOUT (FORMAT binary)` and yields its rows as they arrive. */
  copyRows(query: string): AsyncGenerator<Buffer[][]>;
}

/**
 * Runs `work` on a connection of its own to `url`, opened for this call and closed after it: a long
 * export never holds a pool connection. A COPY reads only as fast as the caller takes rows (the
 * server waits on the socket), so memory stays flat. A caller that stops early (a client gone, a
 * stall) ends the generator, which closes the connection under the running COPY: the server notices
 * at its next send and stops.
 */
export async function* withCopySession<T, R>(
  url: string,
  work: (session: CopySession) => AsyncGenerator<T, R>,
): AsyncGenerator<T, R> {
  const client = new Client({ connectionString: url, application_name: 'audit-export' });
  // Errors of the connection reach the caller through the query or the COPY; an unheard one would crash.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return yield* work({
      client,
      copyRows: (query) => {
        const stream = client.query(copyTo(`COPY (${query}) TO STDOUT (FORMAT binary)`));
        // An error after the caller stopped (end() below) has no one left to hear it.
        stream.on('error', () => undefined);
        return binaryRows(stream);
      },
    });
  } finally {
    // With a COPY still running, end() destroys the socket instead of waiting for it.
    await client.end().catch(() => undefined);
  }
}
