import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** What the receiver does with one request: answer with a status after a delay, or never answer. */
export type Answer = { status: number; delayMs?: number } | 'hang';

/** One delivery as the receiver saw it. */
export interface ReceivedRequest {
  path: string;
  startedAt: number;
  endedAt?: number;
  /** The status answered, or 'aborted' when the sender gave up first (a timeout). */
  outcome?: number | 'aborted';
  contentType: string | undefined;
  userAgent: string | undefined;
  signature: string | undefined;
  body: string;
  /** The `id` of each NDJSON line, in order. */
  ids: string[];
  lines: Record<string, unknown>[];
}

/** `sha256=<hex>` of the body with the secret, compared in constant time, as a receiver should. */
export function signatureValid(body: string, secret: string, header: string | undefined): boolean {
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
  const given = Buffer.from(header ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * A local HTTP endpoint for log streams: records every request, answers as `answer` says (by the
 * request's number, from 0), and can be closed (port refused) and reopened on the same port.
 */
export class StreamReceiver {
  readonly requests: ReceivedRequest[] = [];
  answer: (n: number, request: ReceivedRequest) => Answer = () => ({ status: 200 });
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private readonly pending = new Set<NodeJS.Timeout>();

  private constructor(public port: number) {}

  static async start(port = 0): Promise<StreamReceiver> {
    const receiver = new StreamReceiver(port);
    await receiver.open();
    return receiver;
  }

  url(path = '/ingest'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  async open(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** Stops listening and drops every connection: the port refuses until `open()`. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const timer of this.pending) clearTimeout(timer);
    this.pending.clear();
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Entry ids of the requests answered with a 2xx, in the order they were answered. */
  accepted(path?: string): string[] {
    return this.requests
      .filter((r) => typeof r.outcome === 'number' && r.outcome < 300 && (!path || r.path === path))
      .sort((a, b) => (a.endedAt ?? 0) - (b.endedAt ?? 0))
      .flatMap((r) => r.ids);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const lines = body
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      const request: ReceivedRequest = {
        path: req.url ?? '',
        startedAt: Date.now(),
        contentType: req.headers['content-type'],
        userAgent: req.headers['user-agent'],
        signature: req.headers['x-audit-signature'] as string | undefined,
        body,
        ids: lines.map((line) => line.id as string),
        lines,
      };
      const n = this.requests.push(request) - 1;
      res.once('close', () => {
        request.endedAt ??= Date.now();
        request.outcome ??= 'aborted';
      });
      const answer = this.answer(n, request);
      if (answer === 'hang') return;
      const timer = setTimeout(() => {
        this.pending.delete(timer);
        request.outcome = answer.status;
        request.endedAt = Date.now();
        res.writeHead(answer.status, { 'Content-Type': 'text/plain' }).end(String(answer.status));
      }, answer.delayMs ?? 0);
      this.pending.add(timer);
    });
  }
}
